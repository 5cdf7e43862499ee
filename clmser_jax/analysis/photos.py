"""Training batches for the analysis: random crops of colour photographs bundled with
scikit-image (real images, no download), drawn as a pure function of an integer key such as `(seed, stream, step)`."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import skimage.data

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def load_photos() -> list[np.ndarray]:
  """The photographs as float32 RGB arrays in [0, 1]."""
  return [np.asarray(getattr(skimage.data, name)(), np.float32) / 255.0 for name in PHOTOS]


def random_crops(photos, key: Sequence[int], batch_size: int, size: int) -> np.ndarray:
  """`(batch_size, size, size, 3)` crops; the same non-negative `key` gives the same batch."""
  rng = np.random.default_rng(tuple(key))
  batch = np.empty((batch_size, size, size, 3), np.float32)
  for b in range(batch_size):
    photo = photos[rng.integers(len(photos))]
    y, x = (rng.integers(n - size + 1) for n in photo.shape[:2])
    batch[b] = photo[y:y + size, x:x + size]
  return batch
