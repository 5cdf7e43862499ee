"""What the experiment runner writes to `WORKDIR/results/`: the paper's tables (Tables 4-6)
as Markdown and CSV, sample grids like Figs. 5 and 7, and training-loss curves like Fig. 6.

Everything here is drawn from rows and arrays handed in (final evaluations read from the
runs' `metrics.jsonl`, predictions of the final states); nothing trains or evaluates.
"""
from __future__ import annotations

import os

import numpy as np

from clmser_jax import writers
from clmser_jax.analysis import plots

# Table 7's accuracy, Tables 4-5, then Table 6.
COLUMNS = ("accuracy", "l1", "mse", "psnr", "ssim", "fid", "ms_per_frame")
HEADERS = {"accuracy": "accuracy", "l1": "L1", "mse": "MSE", "psnr": "PSNR", "ssim": "SSIM",
           "fid": "FID", "ms_per_frame": "ms/frame"}
PAPER_ORDER = ("cae", "clmser-n", "clmser-w", "clmser", "unet")  # Figs. 5 and 7, left to right
MIN_TILE = 64  # sample tiles are enlarged (nearest) to at least this width so titles fit


def metric_columns(rows: list[dict]) -> list[str]:
  """The `COLUMNS` some row has: FID only when it was computed, accuracy for DSP (Table 7),
  and no image metrics for a table of classifiers only."""
  return [c for c in COLUMNS if any(c in row for row in rows)]


def cell(row: dict, column: str) -> str:
  """A metric to 4 significant digits, or '-' where the model has none (the CNN's MSE)."""
  return f"{row[column]:.4g}" if column in row else "-"


def markdown_table(rows: list[dict], keys: tuple[str, ...] = (), notes: tuple[str, ...] = ()
                   ) -> str:
  """One line per row: its sweep `keys`, the model's paper name, the metrics (4 significant
  digits); `notes` follow the table as a paragraph."""
  columns = metric_columns(rows)
  header = [*keys, "model", *(HEADERS[c] for c in columns)]
  lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
  for row in rows:
    cells = [str(row[k]) for k in keys] + [plots.LABELS[row["model"]]]
    lines.append("| " + " | ".join(cells + [cell(row, c) for c in columns]) + " |")
  return "\n".join(lines + ([""] + list(notes) if notes else [])) + "\n"


def write_tables(folder: str, name: str, rows: list[dict], keys: tuple[str, ...],
                 notes: tuple[str, ...]) -> str:
  """`folder/name.md` (the table and its notes) and `folder/name.csv` (every field of the
  rows, floats in full); returns the Markdown."""
  os.makedirs(folder, exist_ok=True)
  table = markdown_table(rows, keys, notes)
  with open(os.path.join(folder, f"{name}.md"), "w") as f:
    f.write(table)
  writers.write_csv(os.path.join(folder, f"{name}.csv"), rows)
  return table


def train_losses(workdir: str) -> list[dict]:
  """`{step, loss}` of every `train` line of a run's `metrics.jsonl` (each the mean training
  loss since the previous line)."""
  return [{"step": l["step"], "loss": l["loss"]} for l in writers.read_metrics(workdir, "train")]


def smoothing_window(curves: dict[str, list[dict]], steps: int = 10) -> int:
  """How many logged points span `steps` training steps. Each point is already the mean
  loss since the previous one, so averaging a fixed number of points would lag by that many
  logging intervals (10 points logged every 50 steps: 500 steps)."""
  gaps = [b["step"] - a["step"] for points in curves.values() for a, b in zip(points, points[1:])]
  return max(1, steps // min(gaps)) if gaps else 1


def loss_figure(curves: dict[str, list[dict]], optimizer: str, activation: str, depth: int):
  """Fig. 6: training loss against steps, one curve per variant (`curves[variant]` from
  `train_losses`), drawn by `plots.convergence` as one panel, smoothed over 10 steps."""
  rows = [{"optimizer": optimizer, "activation": activation, "depth": depth, "variant": v,
           **point} for v, points in curves.items() for point in points]
  return plots.convergence(rows, optimizer, [activation], [depth], list(curves),
                           window=smoothing_window(curves))


def enlarge(images: np.ndarray, factor: int) -> np.ndarray:
  """NHWC `images` with every pixel repeated `factor` times along height and width."""
  return np.repeat(np.repeat(np.asarray(images), factor, axis=1), factor, axis=2)


def samples_figure(path: str, predictions: dict[str, np.ndarray], originals: np.ndarray,
                   masked: np.ndarray | None = None) -> None:
  """Figs. 5 and 7: one row per evaluation image; columns the masked input (inpainting
  only; for reconstruction the input is the original), each variant's output in the paper's
  order (CAE, CLmser-n, CLmser-w, CLmser, then U-Net), the original; titled columns."""
  variants = sorted(predictions, key=PAPER_ORDER.index)
  columns = [predictions[v] for v in variants] + [originals]
  titles = [plots.LABELS[v] for v in variants] + ["original"]
  if masked is not None:
    columns, titles = [masked] + columns, ["masked"] + titles
  factor = -(-MIN_TILE // originals.shape[2])
  writers.save_image_grid(path, [enlarge(c, factor) for c in columns], tuple(titles))
