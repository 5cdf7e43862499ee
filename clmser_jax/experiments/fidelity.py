"""Why DCW loses where the paper says it wins: CLmser against CLmser-w (DCW with DPN) and
CLmser-n against CAE (DCW without), one factor at a time from a base setting, several
seeds, reconstruction and point-mask inpainting (`docs/fidelity.md`).

  python -m clmser_jax.experiments.fidelity --config=configs/fidelity.py --workdir=runs/fidelity

Every cell is one `train_and_evaluate` run in `WORKDIR/TASK/FACTOR/LEVEL/VARIANT/seedN` (a
finished one only reloads, so a rerun rebuilds the tables at once, and an interrupted study
resumes); `WORKDIR/results/` gets `fidelity.md`, `fidelity.csv` (one row per run) and
`fidelity_TASK.png` (the PSNR difference of each pair at each level, with its spread), and
`tied_kernels.md`: what the base setting's reconstruction runs learned of a tied kernel
(`analysis/tied_kernels.py`), at the start and the end of training, over the seeds.

A difference between two variants is called an ordering only when it exceeds their spread,
`|mean_A - mean_B| > std_A + std_B` over the seeds (sample standard deviations), and the
tables' resolution, `RESOLUTION` (two runs stuck at the same constant output differ by
rounding only).
"""
from __future__ import annotations

import dataclasses
import os
import statistics

import jax
import matplotlib
import numpy as np
from absl import flags, logging
from ml_collections import config_flags

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

# pylint: disable=wrong-import-position
from clmser_jax import checkpoint, cli, cpu, data, inference, tasks, train, writers
from clmser_jax.analysis import plots, tied_kernels
from clmser_jax.config import OFFICIAL, ConfigError, task_config
from clmser_jax.experiments import runner, sweep
from clmser_jax.models import VARIANTS, build_model
# pylint: enable=wrong-import-position

# factor -> level -> the fields it changes from the base (`configs/fidelity.py`).
LEVELS = {
    "base": {"base": {}},
    "init": {"contractive gain 0.5": {"model.kernel_init": "contractive",
                                      "model.contraction_gain": 0.5},
             "contractive gain 0.99": {"model.kernel_init": "contractive",
                                       "model.contraction_gain": 0.99},
             "he": {"model.kernel_init": "he"}, "xavier": {"model.kernel_init": "xavier"}},
    "norm": {"batch norm": {"model.norm": "batch"}},
    "fusion": {"post-activation mean": {"model.fusion": "post_mean"}},
    "output": {"sigmoid": {"model.output_activation": "sigmoid"},
               "tanh on pixels in [-1 1]": {"model.output_activation": "tanh",
                                            "task.pixel_range": "symmetric"}},
    "optimizer": {"sgd 0.01": {"optimizer.name": "sgd", "optimizer.learning_rate": 0.01},
                  "sgd 0.02": {"optimizer.name": "sgd", "optimizer.learning_rate": 0.02},
                  "adam 0.01": {"optimizer.learning_rate": 0.01}},
    "table3": {"adam 0.01 at batch 100": {"optimizer.learning_rate": 0.01, "batch_size": 100}},
    "data": {f"{n} training image{'s' * (n > 1)}": {"data.train_images": n} for n in (1, 2, 4)},
    "budget": {"6000 steps": {"num_train_steps": 6000, "eval_every_steps": 6000,
                            "checkpoint_every_steps": 6000}},
    "official": {"the authors' network": {
        **{f"model.{k}": v for k, v in OFFICIAL.items()}, "task.pixel_range": "symmetric"}},
}
RESOLUTION = 0.05  # dB: smaller differences are never orderings
TASKS = {"reconstruct": dict(name="reconstruct"),
         "inpaint": dict(name="inpaint", mask="points", mask_ratio=0.25)}


def _folder(level: str) -> str:
  """A level's folder name: spaces to underscores, the characters orbax cannot restore from
  (`checkpoint.UNRESTORABLE`) dropped."""
  return "".join(c for c in level.replace(" ", "_") if c not in checkpoint.UNRESTORABLE)


@dataclasses.dataclass(frozen=True)
class Cell:
  """One run of the study."""
  task: str
  factor: str
  level: str
  variant: str
  seed: int
  config: object
  workdir: str


def cell_config(base, task: str, changes: dict, variant: str, seed: int):
  """`base` for `task` with `variant`'s model, `changes` applied and `seed`."""
  config = sweep.variant_config(base, variant)
  config.task = task_config(**TASKS[task])
  config.seed = seed
  config.update_from_flattened_dict(changes)
  return config.copy_and_resolve_references()


def _names(text: str) -> list[str]:
  return [name.strip() for name in str(text).split(",") if name.strip()]


def plan(study) -> tuple[list[str], list[tuple[str, str]], dict[str, list[str]]]:
  """`study.tasks`, `study.pairs` ('A:B,C:D') and `study.factors`, comma-separated, as lists,
  and each factor's levels (those `study.levels` names, or all when it names none of them);
  an unknown name or a seed that is not an integer is one `ConfigError` before any run."""
  tasks, factors, levels = _names(study.tasks), _names(study.factors), _names(study.levels)
  pairs = [tuple(pair.split(":")) for pair in _names(study.pairs)]
  for field, names, allowed in (("tasks", tasks, TASKS), ("factors", factors, LEVELS)):
    if not names or set(names) - set(allowed):
      raise ConfigError(f"config.{field}={getattr(study, field)!r} is not allowed: "
                        f"comma-separated names of {tuple(allowed)}")
  if not pairs or any(len(p) != 2 or set(p) - set(VARIANTS) for p in pairs):
    raise ConfigError(f"config.pairs={study.pairs!r} is not allowed: comma-separated pairs "
                      f"A:B of {tuple(VARIANTS)}, e.g. 'clmser:clmser-w,clmser-n:cae'")
  known = [level for factor in factors for level in LEVELS[factor]]
  if set(levels) - set(known):
    raise ConfigError(f"config.levels={study.levels!r} is not allowed: '' (every level) or "
                      f"comma-separated levels of the factors chosen, {tuple(known)}")
  named = {f: [l for l in LEVELS[f] if l in levels] for f in factors}
  seeds = tuple(study.seeds)
  if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
    raise ConfigError(f"config.seeds={study.seeds!r} is not allowed: integers, e.g. 0,1,2")
  return tasks, pairs, {f: named[f] or list(LEVELS[f]) for f in factors}


def cells(study, workdir: str) -> list[Cell]:
  """Every run of `study` (`configs/fidelity.py`), in the order they train."""
  tasks, pairs, levels = plan(study)
  variants = [v for pair in pairs for v in pair]
  found = []
  for task in tasks:
    for factor, chosen in levels.items():
      for level in chosen:
        changes = LEVELS[factor][level]
        for variant in variants:
          for seed in study.seeds:
            folder = os.path.join(workdir, task, factor, _folder(level), variant,
                                  f"seed{seed}")
            found.append(Cell(task, factor, level, variant, seed,
                              cell_config(study.base, task, changes, variant, seed), folder))
  return found


def train_cells(found: list[Cell]) -> list[dict]:
  """Trains (or reloads) every cell; one row each: its coordinates and final evaluation."""
  rows = []
  for n, cell in enumerate(found, 1):
    logging.info("fidelity %d/%d: %s", n, len(found), cell.workdir)
    train.train_and_evaluate(cell.config, cell.workdir)
    final = runner.final_eval(cell.workdir)
    rows.append(dict(task=cell.task, factor=cell.factor, level=cell.level,
                     variant=cell.variant, seed=cell.seed, psnr=final["psnr"],
                     ssim=final["ssim"]))
  return rows


def _stats(values: list[float]) -> tuple[float, float]:
  return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def compare(rows: list[dict], a: str, b: str, metric: str = "psnr") -> dict:
  """`a` against `b` over the seeds of the rows (one task and level): means, spreads, the
  difference, and whether it is an ordering (`|difference| > spread_a + spread_b`)."""
  (mean_a, std_a), (mean_b, std_b) = (
      _stats([r[metric] for r in rows if r["variant"] == v]) for v in (a, b))
  difference = mean_a - mean_b
  ordered = abs(difference) > max(std_a + std_b, RESOLUTION)
  verdict = (f"{plots.LABELS[a]} > {plots.LABELS[b]}" if difference > 0 else
             f"{plots.LABELS[b]} > {plots.LABELS[a]}") if ordered else "tie"
  return dict(mean_a=mean_a, std_a=std_a, mean_b=mean_b, std_b=std_b, difference=difference,
              verdict=verdict)


def _groups(rows):
  """`((task, factor, level), its rows)` in the order the rows first name them."""
  groups = {}
  for r in rows:
    groups.setdefault((r["task"], r["factor"], r["level"]), []).append(r)
  return list(groups.items())


def table(rows: list[dict], pairs) -> str:
  """Markdown: per task and level, each pair's PSNR means +- spreads and the verdict."""
  lines = []
  for task in dict.fromkeys(r["task"] for r in rows):
    header = " | ".join(f"{plots.LABELS[a]} | {plots.LABELS[b]} | {plots.LABELS[a]} - "
                        f"{plots.LABELS[b]}" for a, b in pairs)
    lines += [f"\n**{task}** (PSNR in dB, mean +- standard deviation over "
              f"{len({r['seed'] for r in rows})} seeds)\n",
              f"| factor | level | {header} |", "|---|---|" + "---|" * (3 * len(pairs))]
    for (t, factor, level), members in _groups(rows):
      if t != task:
        continue
      cells_ = []
      for a, b in pairs:
        c = compare(members, a, b)
        cells_ += [f"{c['mean_a']:.2f} +- {c['std_a']:.2f}", f"{c['mean_b']:.2f} +- "
                   f"{c['std_b']:.2f}", f"{c['difference']:+.2f} ({c['verdict']})"]
      lines.append(f"| {factor} | {level} | " + " | ".join(cells_) + " |")
  return "\n".join(lines) + "\n"


def figure(rows: list[dict], pairs, task: str, path: str) -> None:
  """The PSNR difference of each pair at each level, with the spread as error bars."""
  groups = [(k, m) for k, m in _groups(rows) if k[0] == task]
  fig, ax = plt.subplots(figsize=(8, 0.35 * len(groups) + 1.5))
  y = np.arange(len(groups))
  for i, (a, b) in enumerate(pairs):
    stats = [compare(m, a, b) for _, m in groups]
    ax.errorbar([s["difference"] for s in stats], y + 0.2 * i,
                xerr=[s["std_a"] + s["std_b"] for s in stats], fmt="o", capsize=3,
                label=f"{plots.LABELS[a]} - {plots.LABELS[b]}")
  ax.axvline(0, color="grey", lw=0.8)
  ax.set_yticks(y + 0.1, [f"{f}: {l}" for (_, f, l), _ in groups])
  ax.invert_yaxis()
  ax.set_xlabel("PSNR difference (dB); bars: spread_a + spread_b")
  ax.set_title(f"{task}: does DCW help? (positive: the DCW variant wins)")
  ax.legend(loc="best")
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def _start_and_end(config, workdir: str):
  """The parameters a run started from (its seed's initialisation) and ended with."""
  model = build_model(config.model)
  shape = tasks.input_shape(config.task, config.image_size)
  start = train.create_train_state(jax.random.key(config.seed), model,
                                   train.make_optimizer(config.optimizer), shape).params
  return model, {"start": start, "end": inference.load_run(workdir).state.params}


def tied_kernel_rows(found: list[Cell]) -> list[dict]:
  """`tied_kernels.alignment` (no DCW) or `pull` (DCW, on the evaluation crops) of every
  finished reconstruction run of the base setting, at its start and its end."""
  rows = []
  for cell in found:
    if (cell.task, cell.factor) != ("reconstruct", "base"):
      continue
    model, params = _start_and_end(cell.config, cell.workdir)
    images = None
    if model.dcw:
      batches = train.eval_batches(cell.config, data.load_dataset(cell.config), None)
      images = np.concatenate([tasks.unit_batch(b)["image"] for b in batches])
    for when, p in params.items():
      measured = (tied_kernels.pull(model, p, images) if model.dcw else
                  tied_kernels.alignment(p, len(model.channels)))
      rows += [dict(variant=cell.variant, seed=cell.seed, when=when, **r) for r in measured]
  return rows


def tied_kernel_table(rows: list[dict]) -> str:
  """Markdown: per variant, measure and moment, each layer's mean +- spread over the seeds."""
  layers = sorted({r["layer"] for r in rows})
  lines = ["| variant | measure | when | " + " | ".join(f"k={k}" for k in layers) + " |",
           "|---|---|---|" + "---|" * len(layers)]
  for variant in dict.fromkeys(r["variant"] for r in rows):
    mine = [r for r in rows if r["variant"] == variant]
    measures = [m for m in mine[0] if m not in ("variant", "seed", "when", "layer")]
    for measure in measures:
      for when in ("start", "end"):
        values = [_stats([r[measure] for r in mine if r["when"] == when and r["layer"] == k])
                  for k in layers]
        lines.append(f"| {plots.LABELS[variant]} | {measure} | {when} | "
                     + " | ".join(f"{m:.3g} +- {s:.2g}" for m, s in values) + " |")
  return "\n".join(lines) + "\n"


def run_study(study, workdir: str) -> str:
  """Trains every cell, writes `results/` and returns the Markdown tables."""
  found = cells(study, workdir)
  rows = train_cells(found)
  tasks, pairs, _ = plan(study)
  out = os.path.join(workdir, "results")
  os.makedirs(out, exist_ok=True)
  markdown = table(rows, pairs)
  with open(os.path.join(out, "fidelity.md"), "w") as f:
    f.write(markdown)
  writers.write_csv(os.path.join(out, "fidelity.csv"), rows)
  for task in tasks:
    figure(rows, pairs, task, os.path.join(out, f"fidelity_{task}.png"))
  kernel_rows = tied_kernel_rows(found)
  if kernel_rows:
    kernels = tied_kernel_table(kernel_rows)
    with open(os.path.join(out, "tied_kernels.md"), "w") as f:
      f.write(kernels)
    markdown += "\n**tied kernels** (reconstruction, base setting)\n\n" + kernels
  return markdown


def define_flags() -> dict:
  return dict(config=config_flags.DEFINE_config_file("config", "configs/fidelity.py",
                                                     "The study's config."),
              workdir=flags.DEFINE_string("workdir", "runs/fidelity", "One folder per run; "
                                          "results/."))


def main(values: dict) -> None:
  cpu.setup()
  print(run_study(values["config"], values["workdir"]))


if __name__ == "__main__":
  cli.run("clmser_jax.experiments.fidelity", main, define_flags)
