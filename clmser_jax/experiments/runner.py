"""Trains several models on one experiment config and writes the paper's tables and figures.

  python -m clmser_jax.experiments --config=configs/celeba.py \
      --variants=clmser,clmser-w,clmser-n,cae,unet --workdir=runs/celeba \
      --fid_weights=fid_inception.npz

Each model trains (or resumes; a finished run only reloads its last checkpoint) through
`train_and_evaluate` in `WORKDIR/[FIELD=VALUE/][OPTIMIZER/]VARIANT` (see `sweep`:
`--optimizers=sgd,adam` for Fig. 6, `--sweep=FIELD=v1,v2` for Table 4's sample sizes). Then
`WORKDIR/results/` gets, rebuilt from the runs on every call:
  TABLE.md, TABLE.csv          one row per run: the swept values, the model, L1, MSE, PSNR,
                               SSIM (the last evaluation in its metrics.jsonl), FID (with
                               --fid_weights) and ms/frame (Tables 4-6)
  samples[_GROUP].png          Figs. 5 and 7: the first evaluation images, every model's output
  loss_OPT[_FIELD=VALUE].png   Fig. 6: training loss of every model against steps
and `WORKDIR/results.json` holds every row by run folder.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import pathlib

import jax
import numpy as np
from absl import flags, logging
from ml_collections import config_flags

from clmser_jax import cpu, faults, fid, tasks, train, writers
from clmser_jax.experiments import results, sweep, timing
from clmser_jax.analysis import plots
from clmser_jax.data import load_dataset, pipeline


def final_eval(workdir: str) -> dict[str, float]:
  """The last `eval` line of a run's `metrics.jsonl`: its step and metrics."""
  evals = writers.read_metrics(workdir, "eval")
  if not evals:
    raise faults.InputError(f"{workdir} has no evaluation row in its metrics.jsonl")
  return {k: v for k, v in evals[-1].items() if k != "split"}


def load_inception(path: str) -> dict:
  """The FID Inception's variables from a local `.npz` (`fid.weights`), or `InputError`."""
  try:
    return fid.load_variables(path)
  except (FileNotFoundError, ValueError) as error:
    raise faults.InputError(faults.one_line(str(error))) from None


class FIDScorer:
  """FID of a run's evaluation predictions against its evaluation images (Sec. 5.3,
  Table 5). The images' pool3 statistics are computed once per distinct evaluation set, as
  every model of a table sees the same one."""

  def __init__(self, variables: dict):
    self.variables = variables
    self._references = {}

  def features(self, images: np.ndarray, batch_size: int) -> np.ndarray:
    return fid.pool3_features(images, self.variables, batch_size)

  def score(self, features: np.ndarray, images: np.ndarray, batch_size: int) -> float:
    """FID between the Gaussian of `features` (of predictions) and that of `images`."""
    key = hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest()
    if key not in self._references:
      self._references[key] = fid.gaussian_stats(self.features(images, batch_size))
    return fid.frechet_distance(*fid.gaussian_stats(features), *self._references[key])


def eval_predictions(state, config, dataset, masks):
  """`(batch, prediction)` for every evaluation batch (images in [0, 1]); predictions clipped
  to [0, 1], as `metrics.image_metrics` scores them (and as FID needs them); None for the
  CNN."""
  eval_fn = train.jit_eval_step(config.task, metrics=False)
  for batch in train.eval_batches(config, dataset, masks):
    predicted = eval_fn(state, batch)
    yield tasks.unit_batch(batch), None if predicted is None else np.clip(
        np.asarray(predicted), 0.0, 1.0)


def run_variant(config, workdir: str, timing_batch: int = 1, num_samples: int = 8,
                scorer: FIDScorer | None = None) -> tuple[dict, dict[str, np.ndarray]]:
  """Trains (or resumes) one model and evaluates its final state. Returns its table row
  (the final evaluation of `metrics.jsonl`, the per-frame time, FID with a `scorer`) and
  the first `num_samples` evaluation images: `input` (as shown), `prediction`, `image`."""
  state = train.train_and_evaluate(config, workdir)
  dataset = load_dataset(config)
  masks = train.evaluation_masks(config, workdir, pipeline.workers(config.data.workers))
  inputs, features, images, shown = [], [], [], []
  for batch, predicted in eval_predictions(state, config, dataset, masks):
    inputs.append(np.asarray(tasks.model_input(batch, config.task)))
    if predicted is None:  # a classifier (Table 7's CNN): no image to score or show
      continue
    if scorer:
      features.append(scorer.features(predicted, config.batch_size))
      images.append(batch["image"])
    if len(shown) * config.batch_size < num_samples:
      shown.append({"input": tasks.shown_input(batch, config.task), "prediction": predicted,
                    "image": batch["image"]})
  row = final_eval(workdir)
  if scorer and features:
    row["fid"] = scorer.score(np.concatenate(features), np.concatenate(images),
                              config.batch_size)
  inputs = np.concatenate(inputs)
  row.update(timing.per_frame_ms(state.apply_fn, train.model_variables(state, state.params),
                                 inputs, min(timing_batch, len(inputs))))
  row["eval_images"] = len(inputs)
  samples = {k: np.concatenate([s[k] for s in shown])[:num_samples] for k in shown[0]
             } if shown else {}
  return row, samples


def table_notes(runs: list[sweep.Run], rows: list[dict], timing_batch: int) -> tuple[str, ...]:
  """What the columns measure, and why FID is missing when it is."""
  n = rows[0]["eval_images"]
  composite = " (inpainting composites)" if runs[0].config.task.name == "inpaint" else ""
  if any("fid" in row for row in rows):
    fid_note = (f"FID: pool3 statistics of each model's {n} evaluation predictions{composite} "
                f"against the {n} evaluation images (biased upwards below 2048 per set).")
  else:
    fid_note = ("FID: not computed, no Inception weights given: `--fid_weights=FILE.npz`, "
                "made once by `python -m clmser_jax.fid.convert` (docs/tasks.md, FID).")
  accuracy = "accuracy (Table 7, no label fed), " if any("accuracy" in r for r in rows) else ""
  return (f"{accuracy}L1, MSE, PSNR, SSIM: the last evaluation in each run's metrics.jsonl, "
          f"over {n} evaluation images{composite}.", fid_note,
          f"ms/frame: inference time per image in batches of {timing_batch} on "
          f"{jax.devices()[0].device_kind}, median of 5 repeats, compile excluded (Table 6).")


def write_samples(folder: str, runs: list[sweep.Run], samples: list[dict]) -> None:
  """One grid per group of runs (per swept value and optimizer): Figs. 5 and 7."""
  for group, members in itertools.groupby(zip(runs, samples), key=lambda m: m[0].group):
    members = [(run, shown) for run, shown in members if shown]  # the CNN shows no image
    if not members:
      continue
    run, first = members[0]
    results.samples_figure(
        os.path.join(folder, "samples" + "".join(f"_{g}" for g in group) + ".png"),
        {r.variant: s["prediction"] for r, s in members}, first["image"],
        first["input"] if run.config.task.name == "inpaint" else None)


def loss_curves(runs: list[sweep.Run]) -> dict[str, tuple[str, object, dict[str, list]]]:
  """Fig. 6's figures: `{file name: (optimizer, model config, {variant: train losses})}`,
  one per optimizer (and swept value), the losses from each run's `metrics.jsonl`."""
  figures = {}
  for run in runs:
    opt = run.config.optimizer.name
    suffix = "".join(f"_{k}={v}" for k, v in run.keys.items() if k != "optimizer")
    _, _, curves = figures.setdefault(f"loss_{opt}{suffix}.png", (opt, run.config.model, {}))
    curves[run.variant] = results.train_losses(run.workdir)
  return figures


def write_loss_curves(folder: str, runs: list[sweep.Run]) -> None:
  for name, (opt, model, curves) in loss_curves(runs).items():
    figure = results.loss_figure(curves, opt, model.activation, model.depth)
    figure.savefig(os.path.join(folder, name), dpi=80)
    plots.plt.close(figure)


def run_experiment(base, variants, workdir: str, table: str, optimizers=(),
                   sweep_spec: str | None = None, fid_weights: str | None = None,
                   timing_batch: int = 1, num_samples: int = 8) -> str:
  """Trains every run of `sweep.plan`, then writes `WORKDIR/results/` and `results.json`;
  returns the Markdown table."""
  runs = sweep.plan(base, variants, workdir, optimizers, sweep_spec)
  scorer = FIDScorer(load_inception(fid_weights)) if fid_weights else None
  rows, samples = [], []
  for run in runs:
    logging.info("training %s in %s", run.variant, run.workdir)
    row, shown = run_variant(run.config, run.workdir, timing_batch, num_samples, scorer)
    rows.append({**run.keys, "model": run.variant, **row})
    samples.append(shown)
  folder = os.path.join(workdir, "results")
  markdown = results.write_tables(folder, table, rows, tuple(runs[0].keys),
                                  table_notes(runs, rows, timing_batch))
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump({os.path.relpath(r.workdir, workdir): row for r, row in zip(runs, rows)}, f,
              indent=2)
  write_samples(folder, runs, samples)
  write_loss_curves(folder, runs)
  return markdown


def default_table(config_filename: str) -> str:
  """`configs/celeba.py:clmser-w,tiny` -> `celeba`."""
  return pathlib.Path(config_filename.split(":")[0]).stem


def define_flags() -> dict:
  """The command line, defined when it runs (importing this module defines no flags)."""
  return dict(
      config=config_flags.DEFINE_config_file("config", "configs/default.py",
                                             "Experiment config."),
      variants=flags.DEFINE_list("variants", ["clmser", "clmser-w", "clmser-n", "cae", "unet"],
                                 "Models to train, by Table 1 name or 'unet'."),
      workdir=flags.DEFINE_string("workdir", "runs/experiment",
                                  "One subfolder per run; results/."),
      table=flags.DEFINE_string("table", None, "Name of the table files in WORKDIR/results/ "
                                "(table4 -> table4.md, table4.csv); default: the config file's "
                                "name."),
      optimizers=flags.DEFINE_list("optimizers", [], "Train every variant with each optimizer, "
                                   "NAME or NAME:LR (sgd,adam for Fig. 6); default: the "
                                   "config's optimizer only."),
      sweep=flags.DEFINE_string("sweep", None, "FIELD=v1,v2,...: train every variant for each "
                                "value of one config field (per_class=400,100,10 for Table 4)."),
      fid_weights=flags.DEFINE_string("fid_weights", None, "Local FID Inception weights (.npz "
                                      "from clmser_jax.fid.convert); without them the table "
                                      "has no FID."),
      timing_batch=flags.DEFINE_integer("timing_batch", 1, "Batch size of the per-frame "
                                        "timing.", lower_bound=1),
      samples=flags.DEFINE_integer("samples", 8, "Evaluation images (rows) in samples.png.",
                                   lower_bound=1))


def main(values: dict) -> None:
  table = values["table"] or default_table(config_flags.get_config_filename(
      flags.FLAGS["config"]))
  cpu.setup()
  print(run_experiment(values["config"], values["variants"], values["workdir"], table,
                       values["optimizers"], values["sweep"], values["fid_weights"],
                       values["timing_batch"], values["samples"]))
