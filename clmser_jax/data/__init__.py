"""Input pipeline: a fixed evaluation set and training batches that are a pure function of
the step, so a resumed run sees exactly the batches an uninterrupted one would."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import numpy as np

from clmser_jax.data import digits, photos, tfds_sources


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Training images (uint8 HWC, any size >= image_size, random access) and fixed evaluation
  images; labelled datasets also carry one class per image.

  `train` is any sequence with `len` and indexing (a tuple of arrays, or a lazy source that
  decodes on access). `flip` turns on random horizontal flips (photographs, not digits).
  """
  train: Sequence[np.ndarray]
  eval_images: np.ndarray  # (N, S, S, 3) float32 in [0, 1]
  image_size: int
  train_labels: np.ndarray | None = None  # (len(train),) int32
  eval_labels: np.ndarray | None = None  # (N,) int32
  num_classes: int = 0
  flip: bool = True

  def train_batch(self, rng: jax.Array, batch_size: int,
                  rows: slice = slice(None)) -> dict[str, np.ndarray]:
    """`{'image'}` (and `'label'` when labelled): random crops, with random horizontal flips
    when `flip`, float32 in [0, 1], drawn with the step's key.

    `rows` picks part of the batch: the draws are made for all `batch_size` rows, so a
    process that builds only its own rows gets exactly those rows of the whole batch.
    """
    k_image, k_y, k_x, k_flip = jax.random.split(rng, 4)
    index = np.asarray(jax.random.randint(k_image, (batch_size,), 0, len(self.train)))[rows]
    u_y, u_x = (np.asarray(jax.random.uniform(k, (batch_size,)))[rows] for k in (k_y, k_x))
    flip = np.asarray(jax.random.bernoulli(k_flip, 0.5, (batch_size,)))[rows] & self.flip
    s = self.image_size
    images = np.empty((len(index), s, s, 3), np.float32)
    for b, (i, fy, fx, fl) in enumerate(zip(index, u_y, u_x, flip)):
      image = self.train[i]
      y = int(fy * (image.shape[0] - s + 1))
      x = int(fx * (image.shape[1] - s + 1))
      crop = image[y:y + s, x:x + s]
      images[b] = crop[:, ::-1] if fl else crop
    batch = {"image": images / 255.0}
    if self.train_labels is not None:
      batch["label"] = self.train_labels[index].astype(np.int32)
    return batch


def load_dataset(config) -> Dataset:
  """The dataset named by `config.dataset`: 'embedded', 'digits', 'folder:/path' or
  'tfds:NAME' (a prepared tensorflow-datasets dataset in `config.data_dir`, read lazily)."""
  size = config.image_size
  if config.dataset.startswith("tfds:"):
    return Dataset(image_size=size, **tfds_sources.load(
        config.dataset.split(":", 1)[1], config.data_dir, config.per_class, size,
        config.resize, config.num_eval_images))
  if config.dataset == "digits":
    (train, train_labels), (test, test_labels) = digits.embedded_digits(size)
    n = min(config.num_eval_images, len(test))
    return Dataset(tuple(train), test[:n].astype(np.float32) / 255.0, size, train_labels,
                   test_labels[:n], digits.NUM_CLASSES, flip=False)
  if config.dataset == "embedded":
    train, test = photos.embedded_photos(size, config.resize)
  else:
    train, test = photos.folder_photos(config.dataset.split(":", 1)[1], size, config.resize)
  return Dataset(tuple(train), photos.tiles(test, size, config.num_eval_images), size)
