"""Random-access image sources: `source[i]` is image `i` as uint8 RGB, prepared for crops of
`size` (`photos.prepare`), read from its file or record only when it is indexed.

A source is any sequence of such images (a tuple of arrays is one); those here also say
`name(i)`, what a message about image `i` calls it. They hold paths or readers, never pixels,
so they are cheap to pickle into the pipeline's worker processes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from clmser_jax.data import listing, photos, records


class ImageFiles(Sequence[np.ndarray]):
  """Image files (`listing.Paths`), decoded when indexed."""

  def __init__(self, paths: listing.Paths, size: int, resize: int):
    self.paths, self.size, self.resize = paths, size, resize

  def __len__(self) -> int:
    return len(self.paths)

  def __getitem__(self, i: int) -> np.ndarray:
    return photos.load(self.paths[i], self.size, self.resize)

  def name(self, i: int) -> str:
    return self.paths[i]


class Prepared(Sequence[np.ndarray]):
  """The images of a prepared copy (`records.Records`): no decoding, and no resizing when
  `resize` is the one it was prepared at."""

  def __init__(self, folder: str, size: int, resize: int):
    self.folder, self.size, self.resize = folder, size, resize
    self._records = records.Records(folder)

  def __len__(self) -> int:
    return len(self._records)

  def __getitem__(self, i: int) -> np.ndarray:
    return photos.prepare(self._records[i], self.size, self.resize)

  def name(self, i: int) -> str:
    return f"{self.folder} record {i}"


class Subset(Sequence[np.ndarray]):
  """The images of `source` at `index`, in that order."""

  def __init__(self, source: Sequence[np.ndarray], index: np.ndarray):
    self.source, self.index = source, np.asarray(index, np.int64)

  def __len__(self) -> int:
    return len(self.index)

  def __getitem__(self, i: int) -> np.ndarray:
    return self.source[int(self.index[i])]

  def name(self, i: int) -> str:
    return name(self.source, int(self.index[i]))


def name(source: Sequence[np.ndarray], i: int) -> str:
  """What a message calls image `i` of `source`."""
  return source.name(i) if hasattr(source, "name") else f"image {i}"


def hold_out(source: Sequence[np.ndarray], every: int = 10):
  """`(train, test)`: every `every`-th image of `source` (in its order) is a test image, the
  last one when there are fewer than `every`."""
  test = np.arange(len(source)) % every == every - 1
  if not test.any():
    test[-1] = True
  return Subset(source, np.flatnonzero(~test)), Subset(source, np.flatnonzero(test))
