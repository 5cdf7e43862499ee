"""Runs one experiment config for several models and writes the paper's table.

  python -m clmser_jax.experiments --config=configs/celeba.py \
      --variants=clmser,clmser-w,clmser-n,cae,unet --workdir=runs/celeba

Each variant trains (or resumes) in `workdir/VARIANT` through `train_and_evaluate`; the
table of final evaluation metrics (Tables 4-5: L1, MSE, PSNR, SSIM) and per-frame inference
time (Table 6) goes to `workdir/results.md` and `workdir/results.json`.
"""
from __future__ import annotations

import json
import os

import jax
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from clmser_jax import tasks, timing, train
from clmser_jax.config import model_config
from clmser_jax.data import load_dataset

_CONFIG = config_flags.DEFINE_config_file("config", "configs/default.py", "Experiment config.")
_VARIANTS = flags.DEFINE_list("variants", ["clmser", "clmser-w", "clmser-n", "cae", "unet"],
                              "Models to train, by Table 1 name or 'unet'.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/experiment", "One subfolder per variant.")
_TIMING_BATCH = flags.DEFINE_integer("timing_batch", 1, "Batch size of the per-frame timing.")

COLUMNS = ("l1", "mse", "psnr", "ssim", "ms_per_frame")


def final_eval(workdir: str) -> dict[str, float]:
  """The last `eval` line of a run's `metrics.jsonl`."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    evals = [json.loads(line) for line in f if '"split": "eval"' in line]
  return {k: v for k, v in evals[-1].items() if k not in ("step", "split")}


def variant_config(base, variant: str):
  """`base` with the model swapped for `variant`, architecture fields kept."""
  config = base.copy_and_resolve_references()
  arch = {k: base.model[k] for k in ("depth", "channels", "strides", "kernel_size")}
  config.model = model_config(variant)
  config.model.update(arch)
  return config


def run_variant(config, workdir: str, timing_batch: int) -> dict[str, float]:
  state = train.train_and_evaluate(config, workdir)
  dataset = load_dataset(config)
  bank = tasks.mask_bank(config.task, config.image_size, config.seed + 1,
                         config.task.mask_bank_size)
  batch = next(tasks.eval_batches(dataset, bank, len(dataset.eval_images)))
  inputs = np.asarray(tasks.model_input(batch, config.task))
  row = final_eval(workdir)
  row.update(timing.per_frame_ms(state.apply_fn, {"params": state.params}, inputs,
                                 min(timing_batch, len(inputs))))
  return row


def markdown_table(rows: dict[str, dict[str, float]]) -> str:
  lines = ["| model | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
  for name, row in rows.items():
    lines.append(f"| {name} | " + " | ".join(f"{row[c]:.4g}" for c in COLUMNS) + " |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  rows = {}
  for variant in _VARIANTS.value:
    logging.info("training %s", variant)
    rows[variant] = run_variant(variant_config(_CONFIG.value, variant),
                                os.path.join(_WORKDIR.value, variant), _TIMING_BATCH.value)
  if jax.process_index() == 0:
    with open(os.path.join(_WORKDIR.value, "results.json"), "w") as f:
      json.dump(rows, f, indent=2)
    with open(os.path.join(_WORKDIR.value, "results.md"), "w") as f:
      f.write(markdown_table(rows))
  print(markdown_table(rows))


if __name__ == "__main__":
  app.run(main)
