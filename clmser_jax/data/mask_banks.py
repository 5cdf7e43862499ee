"""The inpainting masks a run draws from (Sec. 5.3): a bank of generated masks, or a folder
of mask files read one at a time.

A generated bank is made once, in parallel (grain worker processes: a dense point mask of
256x256 is a long random walk), and kept in the workdir as `masks/*.npy`, written under a
temporary name and renamed, so a resumed run (or a second variant sharing the workdir's
cache) starts without remaking it and never reads half a file. The bank is uint8, `1` = known
pixel, and depends only on its name: kind, size, ratio, seed and count.
"""
from __future__ import annotations

import functools
import os
import tempfile
from typing import Sequence

import grain
import numpy as np
from absl import logging

from clmser_jax.data import masks, pipeline


def _made(index: int, kind: str, seed: int, size: int, ratio: float) -> np.ndarray:
  return masks.mask_of(kind, seed, index, size, size, ratio).astype(np.uint8)


def generate(kind: str, seed: int, count: int, size: int, ratio: float,
             num_workers: int) -> np.ndarray:
  """Masks `0..count-1` of `masks.mask_of`, `(count, size, size, 1)` uint8, made by
  `num_workers` processes (0: in this one)."""
  made = (grain.MapDataset.range(count)
          .map(functools.partial(_made, kind=kind, seed=seed, size=size, ratio=ratio))
          .to_iter_dataset(grain.ReadOptions(num_threads=0)))
  return np.stack(list(pipeline.in_processes(made, num_workers, prefetch=4)))


def _cached(path: str, shape: tuple[int, ...]) -> np.ndarray | None:
  try:
    bank = np.load(path)
  except (OSError, ValueError, EOFError):
    return None
  return bank if bank.shape == shape and bank.dtype == np.uint8 else None


def _keep(path: str, bank: np.ndarray) -> None:
  """Writes `bank` to `path` atomically (a temporary file, then a rename)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fd, partial = tempfile.mkstemp(suffix=".npy.partial", dir=os.path.dirname(path))
  try:
    with os.fdopen(fd, "wb") as f:
      np.save(f, bank)
    os.replace(partial, path)
  finally:
    if os.path.exists(partial):
      os.remove(partial)


def bank(task, size: int, seed: int, count: int, num_workers: int,
         workdir: str) -> Sequence[np.ndarray] | None:
  """The masks of `task` (None unless it inpaints): a `folder:` of mask files, or `count`
  generated masks of `size x size`, from the workdir's cache when they are there."""
  if task.name != "inpaint":
    return None
  if task.mask.startswith("folder:"):
    return masks.MaskFolder(task.mask.split(":", 1)[1], task.mask_polarity, (size, size))
  shape = (count, size, size, 1)
  path = os.path.join(workdir, "masks",
                      f"{task.mask}-{size}px-ratio{task.mask_ratio}-seed{seed}-{count}.npy")
  found = _cached(path, shape)
  if found is not None:
    return found
  logging.info("making %d %s masks of %dx%d with %d worker(s); kept in %s", count, task.mask,
               size, size, num_workers, path)
  made = generate(task.mask, seed, count, size, task.mask_ratio, num_workers)
  _keep(path, made)
  return made
