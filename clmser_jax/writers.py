"""Where a run's numbers and pictures go: `metrics.jsonl`, TensorBoard events, CSV, PNG grids.

Only process 0 writes. On resume, `metrics.jsonl` keeps the lines up to the restored step and
drops the rest, so the file reads as if the run had never been interrupted.
"""
from __future__ import annotations

import csv
import json
import os

import jax
import numpy as np
from PIL import Image, ImageDraw, ImageFont

TITLE_HEIGHT = 16  # pixels of the strip that names the columns of a grid


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


def write_csv(path, rows: list[dict]) -> None:
  """`rows` (dicts with the same keys) as CSV, the keys of the first as the header."""
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)


def save_image_grid(path: str, columns: list[np.ndarray], titles: tuple[str, ...] = ()) -> None:
  """One row per image, one column per NHWC array in `columns` (values in [0, 1]); with
  `titles`, a white strip of `TITLE_HEIGHT` pixels on top names each column."""
  if jax.process_index() != 0:
    return
  rows = np.concatenate([np.clip(np.asarray(c), 0, 1) for c in columns], axis=2)
  grid = np.concatenate(list(rows), axis=0)
  image = Image.fromarray(np.uint8(grid * 255 + 0.5))
  if titles:
    image = _with_titles(image, titles, columns[0].shape[2])
  os.makedirs(os.path.dirname(path), exist_ok=True)
  image.save(path)


def _with_titles(grid: Image.Image, titles, tile_width: int) -> Image.Image:
  """`grid` below a strip with each title centred over its `tile_width`-wide column."""
  image = Image.new("RGB", (grid.width, grid.height + TITLE_HEIGHT), "white")
  image.paste(grid, (0, TITLE_HEIGHT))
  draw, font = ImageDraw.Draw(image), ImageFont.load_default()
  for i, title in enumerate(titles):
    left, top, right, bottom = draw.textbbox((0, 0), title, font=font)
    draw.text((i * tile_width + (tile_width - right + left) // 2 - left,
               (TITLE_HEIGHT - bottom + top) // 2 - top), title, fill="black", font=font)
  return image
