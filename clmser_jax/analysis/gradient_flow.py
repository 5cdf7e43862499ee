"""Gradient-flow study: per-layer gradient terms at initialisation and along training, and
the convergence curves of Fig. 6, written to `--workdir` as CSV, JSON, Markdown and PNG.

  python -m clmser_jax.analysis.gradient_flow --config=configs/gradient_flow.py --workdir=DIR
"""
from __future__ import annotations

import json
import pathlib

from absl import logging

from clmser_jax.analysis import cli, plots, study
from clmser_jax.config import KERNEL_INITS, OPTIMIZERS, ConfigError
from clmser_jax.data import load_dataset
from clmser_jax.models import VARIANTS
from clmser_jax.models.activations import ACTIVATIONS
from clmser_jax.writers import write_csv

def _field(config, dotted: str):
  for part in dotted.split("."):
    config = config[part]
  return config


def validate(config) -> None:
  """Checks the fields the study reads; raises `ConfigError` naming the first bad one."""
  subsets = {"variants": VARIANTS, "init.activations": ACTIVATIONS,
             "train.activations": ACTIVATIONS, "init.kernel_inits": KERNEL_INITS,
             "train.optimizers": OPTIMIZERS}
  for field, options in subsets.items():
    values = tuple(_field(config, field))
    if not values or any(v not in options for v in values):
      raise ConfigError(f"config.{field}={values!r}: a non-empty subset of {tuple(options)}")
  if config.train.kernel_init not in KERNEL_INITS:
    raise ConfigError(f"config.train.kernel_init={config.train.kernel_init!r}: one of "
                      f"{KERNEL_INITS}")
  for field in ("init.depths", "train.depths", "table_depths"):
    values = tuple(_field(config, field))
    if not values or any(not isinstance(d, int) or d < 1 for d in values):
      raise ConfigError(f"config.{field}={values!r}: positive integers")
  for field in ("image_size", "batch_size", "kernel_size", "width", "max_width", "min_size",
                "init.num_seeds", "train.num_steps", "train.norm_every"):
    value = _field(config, field)
    if not isinstance(value, int) or value < 1:
      raise ConfigError(f"config.{field}={value!r}: a positive integer")
  if not set(config.table_depths) <= set(config.init.depths):
    raise ConfigError(f"config.table_depths={tuple(config.table_depths)!r} must be among "
                      f"config.init.depths={tuple(config.init.depths)!r}")


def init_table(rows, config) -> str:
  """Markdown: ||dJ/dW_k|| of the encoder-side kernel per layer at init, per variant."""
  lines = []
  for init in config.init.kernel_inits:
    for act in config.init.activations:
      for depth in config.table_depths:
        lines += [f"\n**kernel_init={init}, {act}, d={depth}**\n",
                  "| variant | " + " | ".join(f"k={k}" for k in range(1, depth + 1)) + " |",
                  "|---" * (depth + 1) + "|"]
        for v in config.variants:
          sel = plots.encoder_side([r for r in rows if (r["kernel_init"], r["activation"],
                                                         r["depth"], r["variant"]) ==
                                    (init, act, depth, v)])
          lines.append(f"| {plots.LABELS[v]} | " +
                       " | ".join(f"{r['total']:.1e}" for r in sel) + " |")
  return "\n".join(lines) + "\n"


def run(config, workdir: str) -> None:
  """The whole study; every output lands in `workdir`."""
  validate(config)
  out = pathlib.Path(workdir)
  out.mkdir(parents=True, exist_ok=True)
  dataset = load_dataset(config)
  variants = tuple(config.variants)

  logging.info("gradient terms at initialisation")
  norms = study.init_norms(config, dataset)
  write_csv(out / "init_norms.csv", norms)
  (out / "init_table.md").write_text(init_table(norms, config))
  c = config.init
  for init in c.kernel_inits:
    plots.init_norms(norms, init, c.activations, c.depths, variants).savefig(
        out / f"init_norms_{init}.png", dpi=80)
    for act in c.activations:
      for depth in config.table_depths:
        plots.term_shares(norms, init, act, depth, variants).savefig(
            out / f"term_shares_{init}_{act}_d{depth}.png", dpi=80)

  logging.info("training runs")
  losses, train_norms = study.training_runs(config, dataset)
  write_csv(out / "training_loss.csv", losses)
  write_csv(out / "training_norms.csv", train_norms)
  t = config.train
  for opt in t.optimizers:
    plots.convergence(losses, opt, t.activations, t.depths, variants).savefig(
        out / f"convergence_{opt}.png", dpi=80)
    plots.training_norms(train_norms, opt, t.activations, t.depths, variants).savefig(
        out / f"training_norms_{opt}.png", dpi=80)
  last = {}  # run -> its last loss row; a diverged run ends before num_steps
  for r in losses:
    last[f"{r['optimizer']}/{r['activation']}/d{r['depth']}/{r['variant']}"] = r
  (out / "summary.json").write_text(json.dumps({
      "config": config.to_dict(),
      "final_loss": {run: r["loss"] for run, r in last.items() if r["step"] == t.num_steps},
      "diverged_at_step": {run: r["step"] for run, r in last.items()
                           if r["step"] < t.num_steps}}, indent=1))
  plots.plt.close("all")


if __name__ == "__main__":
  cli.run_with_config("clmser_jax.analysis.gradient_flow", run, "configs/gradient_flow.py")
