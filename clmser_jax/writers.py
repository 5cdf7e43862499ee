"""Where a run's numbers and pictures go: `metrics.jsonl`, TensorBoard events, PNG grids.

Only process 0 writes. On resume, `metrics.jsonl` keeps the lines up to the restored step and
drops the rest, so the file reads as if the run had never been interrupted.
"""
from __future__ import annotations

import json
import os

import jax
import numpy as np
from PIL import Image


class MetricWriter:
  """Appends `{"step", "split", **metrics}` lines and TensorBoard scalars under `workdir`."""

  def __init__(self, workdir: str, resume_step: int):
    self._active = jax.process_index() == 0
    self._path = os.path.join(workdir, "metrics.jsonl")
    if not self._active:
      return
    _truncate_after(self._path, resume_step)
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, split: str, metrics: dict[str, float]) -> None:
    if not self._active:
      return
    with open(self._path, "a") as f:
      f.write(json.dumps({"step": step, "split": split, **metrics}) + "\n")
    for name, value in metrics.items():
      self._tb.add_scalar(f"{split}/{name}", value, step)

  def close(self) -> None:
    if self._active:
      self._tb.close()


def _truncate_after(path: str, step: int) -> None:
  """Keeps the lines up to `step`; a line torn by a kill mid-write ends the file."""
  if not os.path.exists(path):
    return
  kept = []
  with open(path) as f:
    for line in f:
      if not line.endswith("\n") or json.loads(line)["step"] > step:
        break
      kept.append(line)
  with open(path, "w") as f:
    f.writelines(kept)


def save_image_grid(path: str, columns: list[np.ndarray]) -> None:
  """One row per image, one column per NHWC array in `columns` (values in [0, 1])."""
  if jax.process_index() != 0:
    return
  rows = np.concatenate([np.clip(np.asarray(c), 0, 1) for c in columns], axis=2)
  grid = np.concatenate(list(rows), axis=0)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.uint8(grid * 255 + 0.5)).save(path)
