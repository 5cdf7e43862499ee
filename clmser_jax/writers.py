"""Where a run's numbers and pictures go: `metrics.jsonl`, TensorBoard events, CSV, PNG grids.

Only process 0 writes. A row of `metrics.jsonl` is one `write` of one line, flushed; a line
that a crash or a full disk left torn or garbled is skipped by every reader (`read_metrics`)
with a warning, never an error. On resume the file keeps the rows up to the restored step and
drops the rest (rewritten atomically: a temporary file, then a rename), so it reads as if the
run had never been interrupted.
"""
from __future__ import annotations

import csv
import json
import os
import tempfile

import jax
import numpy as np
from absl import logging
from PIL import Image, ImageDraw, ImageFont

TITLE_HEIGHT = 16  # pixels of the strip that names the columns of a grid
METRICS = "metrics.jsonl"


def _rows(path: str) -> tuple[list[tuple[str, dict]], int]:
  """`(line, row)` of every well-formed line of `path` (none when it does not exist), and
  how many lines were not."""
  if not os.path.exists(path):
    return [], 0
  rows, bad = [], 0
  with open(path, errors="replace") as f:
    for line in f:
      try:
        row = json.loads(line) if line.endswith("\n") else None
      except ValueError:
        row = None
      if isinstance(row, dict) and isinstance(row.get("step"), int) and "split" in row:
        rows.append((line, row))
      else:
        bad += 1
  return rows, bad


def read_metrics(workdir: str, split: str | None = None) -> list[dict]:
  """The rows of a run's `metrics.jsonl` (of one `split`: 'train' or 'eval'), skipping
  lines that are not whole rows."""
  path = os.path.join(workdir, METRICS)
  rows, bad = _rows(path)
  if bad:
    logging.warning("%s: skipped %d line(s) that are not whole rows", path, bad)
  return [row for _, row in rows if split is None or row["split"] == split]


class MetricWriter:
  """Appends `{"step", "split", **metrics}` lines and TensorBoard scalars under `workdir`."""

  def __init__(self, workdir: str, resume_step: int):
    self._active = jax.process_index() == 0
    self._path = os.path.join(workdir, METRICS)
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
  """Keeps the well-formed rows up to `step`, rewriting the file atomically."""
  rows, bad = _rows(path)
  if not rows and not bad:
    return
  if bad:
    logging.warning("%s: dropped %d line(s) that are not whole rows", path, bad)
  fd, partial = tempfile.mkstemp(suffix=".partial", dir=os.path.dirname(path))
  try:
    with os.fdopen(fd, "w") as f:
      f.writelines(line for line, row in rows if row["step"] <= step)
    os.replace(partial, path)
  finally:
    if os.path.exists(partial):
      os.remove(partial)


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
