"""Stand-ins for prepared tensorflow-datasets datasets, without TensorFlow or downloads.

`mock_indexed` is `tfds.testing.mock_data` serving examples that say where they came from:
example i has label `i % num_classes` and an image filled with `i % 256` (a colour image's
second channel holds `i // 256`), so a test can recover the index from any decoded image.
(tfds's own random mock cannot serve a labels-only read: with a decoder given, it encodes its
fake images with TensorFlow.) `write_prepared` writes a real prepared ArrayRecord dataset.
"""
from __future__ import annotations

import contextlib
import io
import pathlib

import numpy as np
import tensorflow_datasets as tfds
from array_record.python import array_record_module
from PIL import Image


def indexed_image(index: int, shape) -> np.ndarray:
  image = np.full(shape, index % 256, np.uint8)
  if shape[2] == 3:
    image[..., 1] = index // 256
  return image


def index_of(image: np.ndarray) -> int:
  """The index `indexed_image` wrote into a colour image (possibly cropped or resized)."""
  return int(round(image[..., 0].mean())) + 256 * int(round(image[..., 1].mean()))


class IndexedSplit:
  """A split of `length` indexed examples; an image read with `tfds.decode.SkipDecoding` is
  undecoded bytes, as from a real ArrayRecord file. `decoded` counts decoded images."""

  def __init__(self, features, length: int, skip_images: bool, decoded: list):
    self.shape = features["image"].shape
    self.num_classes = features["label"].num_classes
    self.length, self.skip_images, self.decoded = length, skip_images, decoded

  def __len__(self):
    return self.length

  def __getitem__(self, i):
    if not 0 <= i < self.length:
      raise IndexError(i)
    if not self.skip_images:
      self.decoded.append(i)
    image = b"png" if self.skip_images else indexed_image(i, self.shape)
    return {"image": image, "label": np.int64(i % self.num_classes)}


@contextlib.contextmanager
def mock_indexed(lengths: dict[str, int]):
  """Within it, `tfds.data_source(NAME, split=S)` is an `IndexedSplit` of `lengths[S]`
  examples shaped like NAME's; yields the list of decoded indices."""
  decoded = []

  def as_data_source(builder, split, decoders=None, **unused):
    skip = isinstance((decoders or {}).get("image"), tfds.decode.SkipDecoding)
    return IndexedSplit(builder.info.features, lengths[split], skip, decoded)

  with tfds.testing.mock_data(policy=tfds.testing.MockPolicy.USE_CODE,
                              as_data_source_fn=as_data_source):
    yield decoded


def _png(image: np.ndarray) -> bytes:
  out = io.BytesIO()
  Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).save(out, "PNG")
  return out.getvalue()


def write_prepared(name: str, data_dir, lengths: dict[str, int],
                   file_format: str = "array_record") -> pathlib.Path:
  """Prepares NAME (image + label features) in `data_dir` as `tfds build` would, with
  `lengths[split]` indexed examples per split, written by hand (no TensorFlow); with another
  `file_format` only the metadata is written. Returns the version directory."""
  builder = tfds.builder(name, data_dir=str(data_dir), file_format=file_format)
  root = pathlib.Path(builder.data_dir)
  root.mkdir(parents=True)
  features = builder.info.features
  serializer = tfds.core.example_serializer.ExampleSerializer(features.get_serialized_info())
  infos = []
  for split, length in lengths.items():
    template = tfds.core.ShardedFileTemplate(
        data_dir=root, template="{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}",
        dataset_name=builder.name, split=split, filetype_suffix=file_format)
    infos.append(tfds.core.SplitInfo(name=split, shard_lengths=[length], num_bytes=0,
                                     filename_template=template))
    if file_format == "array_record":
      writer = array_record_module.ArrayRecordWriter(
          str(template.sharded_filepaths(1)[0]), "group_size:1")
      for i in range(length):
        image = _png(indexed_image(i, features["image"].shape))
        writer.write(serializer.serialize_example(
            {"image": image, "label": i % features["label"].num_classes}))
      writer.close()
  builder.info.set_splits(tfds.core.SplitDict(infos))
  builder.info.write_to_directory(root)
  return root
