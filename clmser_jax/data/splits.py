"""Per-class subsets of a labelled split: the paper's 4:1 division of the STL10 training
images (Sec. 5) and STL10-n, the first n training images of each class (Table 4)."""
from __future__ import annotations

import numpy as np

from clmser_jax.faults import InputError

HOLD_OUT_EVERY = 5  # every 5th image of each class held out: the 4:1 split of Sec. 5


def class_rank(labels: np.ndarray) -> np.ndarray:
  """For each image, how many earlier images (in index order) share its class."""
  rank = np.empty(len(labels), np.int64)
  for label in np.unique(labels):
    members = np.flatnonzero(labels == label)
    rank[members] = np.arange(len(members))
  return rank


def hold_out_per_class(labels: np.ndarray,
                       every: int = HOLD_OUT_EVERY) -> tuple[np.ndarray, np.ndarray]:
  """`(train, test)` indices: in index order, every `every`-th image of each class is a test
  image, so each class is divided (every - 1):1 (STL10: 400 and 100 of 500)."""
  test = class_rank(labels) % every == every - 1
  return np.flatnonzero(~test), np.flatnonzero(test)


def first_per_class(labels: np.ndarray, n: int) -> np.ndarray:
  """Indices of the first `n` images of each class, in index order (STL10-n, Table 4)."""
  counts = np.bincount(labels)
  if counts[counts > 0].min() < n:
    short = int(np.flatnonzero((counts > 0) & (counts < n))[0])
    raise InputError(f"per_class={n}: class {short} has only {counts[short]} training images")
  return np.flatnonzero(class_rank(labels) < n)
