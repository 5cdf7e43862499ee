"""tensorflow-datasets images read without TensorFlow: `tfds.data_source` (ArrayRecord random
access) wrapped in a source that decodes an image only when it is indexed, so even
Places365's 1.8M training images are never all in memory.

Every image becomes uint8 RGB (grey is repeated into three channels) prepared like a folder
image (`photos.prepare`): resized when `config.resize` is set, and upscaled (bicubic) when its
shorter side is below `image_size`, e.g. MNIST's 28x28 to 32x32 (upscaling rather than
LeNet-style zero padding keeps the digit filling the frame, as for the embedded digits).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import importlib

import numpy as np

from clmser_jax.data import photos, splits
from clmser_jax.faults import InputError, one_line

def _tfds():
  """tensorflow-datasets, imported when a `tfds:` dataset is used (it is heavy, and nothing
  else needs it)."""
  return importlib.import_module("tensorflow_datasets")


@dataclasses.dataclass(frozen=True)
class Source:
  """Where one tfds dataset's training and evaluation images come from.

  `eval_split` None: every `splits.HOLD_OUT_EVERY`-th image of each class of the training
  split is held out for evaluation instead (STL10, Sec. 5). `per_class`: training images in
  the smallest class, the most `config.per_class` may ask for; 0 = unlabelled (labels are not
  read: Places365's would cost reading its whole 1.8M-record split once at start, and its
  experiments, Sec. 5.3 and Table 8, do not use them).
  """
  train_split: str
  eval_split: str | None
  per_class: int
  flip: bool


SOURCES = {
    "stl10": Source("train", None, 400, flip=True),
    "mnist": Source("train", "test", 5421, flip=False),
    "fashion_mnist": Source("train", "test", 6000, flip=False),
    "cifar10": Source("train", "test", 5000, flip=True),
    # Sec. 5: Places2 is tested on images of its test split (tfds stores splits shuffled, so
    # the first ones are a fixed random choice); CelebA-HQ is split 27,000 / 3,000.
    "places365_small": Source("train", "test", 0, flip=True),
    "celeb_a_hq": Source("train[:27000]", "train[27000:]", 0, flip=True),
}


def base_name(name: str) -> str:
  """'celeb_a_hq/256:2.0.0' -> 'celeb_a_hq': the key into `SOURCES`."""
  return name.split("/")[0].split(":")[0]


def _not_prepared(name: str, data_dir: str) -> str:
  """One line: where the dataset was looked for and how to prepare it there."""
  builder = _tfds().builder(name, data_dir=data_dir or None)
  root = builder.data_dir_root
  build = (f"`tfds build {name} --data_dir={root} --file_format=array_record` (preparing "
           "needs TensorFlow; training reads the records without it)")
  if builder.is_prepared():
    return (f"tfds dataset {name!r} in {builder.data_dir} is stored as "
            f"{builder.info.file_format.value}, which has no random access; rebuild it as "
            f"ArrayRecord with {build}")
  where = f"tfds dataset {name!r} is not prepared in {root} (looked for {builder.data_dir})"
  if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
    return (f"{where}; it needs a manual download into {root}/downloads/manual "
            f"({one_line(builder.MANUAL_DOWNLOAD_INSTRUCTIONS, 160)}), then {build}; or read "
            "the images from a folder with --config.dataset=folder:/path/to/images")
  return (f"{where}; prepare it once with {build}, or point --config.data_dir (or "
          "$TFDS_DATA_DIR) at the directory that holds it")


def open_split(name: str, split: str, data_dir: str, decoders=None):
  """The prepared split as a random-access sequence of example dicts; never downloads.

  tfds raises `FileNotFoundError` for a dataset that is not prepared and its own
  `NotImplementedError` for one stored as TFRecord (no random access): both become one line
  saying how to prepare it."""
  try:
    return _tfds().data_source(name, split=split, data_dir=data_dir or None, download=False,
                            decoders=decoders)
  except (NotImplementedError, FileNotFoundError) as error:
    raise InputError(_not_prepared(name, data_dir)) from error


def read_labels(name: str, split: str, data_dir: str,
                index: np.ndarray | None = None) -> np.ndarray:
  """The `label` of every example (or of those at `index`) as int32, read with image decoding
  skipped: each record is parsed, its image bytes are never decoded."""
  source = open_split(name, split, data_dir, {"image": _tfds().decode.SkipDecoding()})
  index = np.arange(len(source)) if index is None else index
  return np.fromiter((source[int(i)]["label"] for i in index), np.int32, len(index))


def num_classes(name: str, data_dir: str) -> int:
  """The number of classes of the `label` feature, from the dataset's metadata."""
  return _tfds().builder(name, data_dir=data_dir or None).info.features["label"].num_classes


def rgb(image: np.ndarray) -> np.ndarray:
  """A decoded tfds image (H, W, 1 or 3) as uint8 RGB."""
  return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


@dataclasses.dataclass(frozen=True)
class Decoded:
  """Examples of a tfds split, their image decoded and prepared when indexed (lazy)."""
  source: Sequence
  index: np.ndarray
  size: int
  resize: int
  dataset: str

  def __len__(self) -> int:
    return len(self.index)

  def __getitem__(self, i: int) -> np.ndarray:
    example = self.source[int(self.index[i])]
    return photos.prepare(rgb(example["image"]), self.size, self.resize)

  def name(self, i: int) -> str:
    return f"{self.dataset} example {int(self.index[i])}"


def load(name: str, data_dir: str, per_class: int, size: int, resize: int,
         num_eval: int) -> dict:
  """`Dataset` fields for `tfds:NAME`: the training images (the first `per_class` of each
  class when it is set) and the first `num_eval` evaluation images, both decoded only when
  read, and labels for the labelled datasets."""
  spec = SOURCES[base_name(name)]
  train = open_split(name, spec.train_split, data_dir)
  train_index = np.arange(len(train))
  labels = read_labels(name, spec.train_split, data_dir) if spec.per_class else None
  if spec.eval_split is None:
    train_index, eval_index = splits.hold_out_per_class(labels)
    evaluation = train
  else:
    evaluation = open_split(name, spec.eval_split, data_dir)
    eval_index = np.arange(len(evaluation))
  if per_class:
    train_index = train_index[splits.first_per_class(labels[train_index], per_class)]
  eval_index = eval_index[:num_eval]
  if not len(eval_index):
    raise InputError(f"tfds dataset {name!r} has no evaluation images")
  fields = dict(train=Decoded(train, train_index, size, resize, name),
                eval=Decoded(evaluation, eval_index, size, resize, name), flip=spec.flip)
  if spec.per_class:
    eval_labels = (labels[eval_index] if spec.eval_split is None
                   else read_labels(name, spec.eval_split, data_dir, eval_index))
    fields.update(train_labels=labels[train_index], eval_labels=eval_labels,
                  num_classes=num_classes(name, data_dir))
  return fields
