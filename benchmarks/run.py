"""Benchmarks of issue 7: the JAX networks against the authors' PyTorch one on the same
machine, and the cost of the reflection loop. Not part of the test suite.

  PYTHONPATH=. python -m benchmarks.run [--quick] [--out benchmarks/RESULTS.md]

1. Numerics: the fast path (`ops`' custom VJPs) against plain autodiff, loss and gradients.
2. The official network (`model_config(variant, arch, official=True)`) in JAX and in PyTorch
   (`benchmarks/torch_official.py`) with the same converted weights and batch, timed
   interleaved: train-step images/s, inference ms/frame at batch 1 and images/s at a large
   batch, JAX compile time, memory.
3. The paper's CLmser at r reflections (no PyTorch peer): r-scaling against r = 1, the scan
   against an unrolled loop, compile time.
`--quick` runs 96 x 96 only with fewer reflections and repeats (a few minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform

import flax
import jax
import numpy as np
import optax

from benchmarks import measure, runners
from clmser_jax import convert_official
from clmser_jax.config import model_config, task_config
from clmser_jax.models import build_model

SIZES = {"stl10": 96, "celeba": 256}  # Table 2: STL10 d = 5, CelebA d = 7
OFFICIAL_TASK = task_config("reconstruct", pixel_range="symmetric")  # their [-1, 1] input
PAPER_TASK = task_config("reconstruct")


@dataclasses.dataclass(frozen=True)
class Plan:
  """What to measure: architectures, batch sizes, reflections, repeats."""
  archs: tuple[str, ...]
  train_batch: dict
  large_batch: int
  reflections: tuple[int, ...]
  reflection_batch: dict
  unrolled: tuple[int, ...]
  repeats: int


QUICK = Plan(archs=("stl10",), train_batch={"stl10": 8}, large_batch=32, reflections=(1, 2, 4),
             reflection_batch={"stl10": 8}, unrolled=(1, 2), repeats=3)
FULL = Plan(archs=("stl10", "celeba"), train_batch={"stl10": 8, "celeba": 8}, large_batch=32,
            reflections=(1, 2, 4, 8, 16), reflection_batch={"stl10": 8, "celeba": 2},
            unrolled=(1, 2, 4), repeats=5)


def images(batch: int, size: int, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).uniform(0, 1, (batch, size, size, 3)).astype(np.float32)


def mib(value: float | None) -> str:
  return "n/a" if value is None else f"{value:.0f}"


def official_pair(arch: str):
  """The official network of `arch` in JAX and in PyTorch, with the same (converted)
  weights."""
  from benchmarks.torch_official import official_generator
  config = model_config("clmser", arch, official=True)
  generator = official_generator("clmser", config.channels, config.strides, seed=0)
  arrays = convert_official.state_dict_arrays(generator.state_dict())
  return build_model(config), convert_official.to_variables(arrays, "clmser", config), generator


def paper_model(arch: str, reflections: int, unroll: bool = False):
  config = model_config("clmser", arch)
  config.reflections = reflections
  model = build_model(config).clone(unroll=unroll)
  return model, model.init(jax.random.key(0), images(1, SIZES[arch]))


# ------------------------------------------------------------------------------- 1. numerics

def numerics_check() -> list[str]:
  """Loss and gradients of the fast path and of plain autodiff, relative difference."""
  rows = []
  cases = [("official stl10", *official_pair("stl10")[:2], OFFICIAL_TASK),
           ("paper CLmser r=4", *paper_model("stl10", 4), PAPER_TASK)]
  for name, model, variables, task in cases:
    x = images(2, 32, seed=1)
    fast = runners.loss_and_grads(model, variables, x, task)
    with runners.plain_autodiff():
      plain = runners.loss_and_grads(model, variables, x, task)
    loss, grads = (runners.relative_difference(f, p) for f, p in zip(fast, plain))
    ok = "ok" if max(loss, grads) <= 1e-5 else "FAILED"
    rows.append(f"| {name} | 2x32x32 | {loss:.1e} | {grads:.1e} | {ok} |")
    print(rows[-1], flush=True)
  return ["| network | batch | loss rel. diff | grad rel. diff (max over leaves) | <= 1e-5 |",
          "|---|---|---|---|---|", *rows]


# ------------------------------------------------------------------- 2. official vs PyTorch

def official_vs_torch(arch: str, plan: Plan) -> list[str]:
  """Train images/s, inference at batch 1 and at `plan.large_batch`: JAX, PyTorch, ratio."""
  model, variables, generator = official_pair(arch)
  size, batches = SIZES[arch], (plan.train_batch[arch], 1, plan.large_batch)
  kinds = ("train", "infer 1", "infer large")
  x = {kind: images(b, size) for kind, b in zip(kinds, batches)}
  built = {"train": runners.jax_train(model, variables, x["train"], OFFICIAL_TASK,
                                      optax.amsgrad(1e-3))}
  built.update({k: runners.jax_infer(model, variables, x[k], OFFICIAL_TASK) for k in kinds[1:]})
  fns = {("jax", kind): b[0] for kind, b in built.items()}
  fns[("torch", "train")] = runners.torch_train(generator, x["train"], OFFICIAL_TASK)
  fns.update({("torch", k): runners.torch_infer(generator, x[k], OFFICIAL_TASK)
              for k in kinds[1:]})
  rss = {key: measure.first_call(fn) for key, fn in fns.items()}
  t = measure.interleaved_medians(fns, plan.repeats)
  rows = []
  for kind, batch in zip(kinds, batches):
    jax_s, torch_s = t[("jax", kind)], t[("torch", kind)]
    figure = ((f"{1e3 * jax_s:.1f} ms/frame", f"{1e3 * torch_s:.1f} ms/frame") if batch == 1
              else (f"{batch / jax_s:.2f} img/s", f"{batch / torch_s:.2f} img/s"))
    _, compile_s, xla_mib = built[kind]
    rows.append(f"| {arch} {size}x{size} | {kind} | {batch} | {figure[0]} | {figure[1]} | "
                f"**{torch_s / jax_s:.2f}x** | {compile_s:.2f} s | {mib(xla_mib)} | "
                f"{rss[('jax', kind)]:.0f} / {rss[('torch', kind)]:.0f} |")
    print(rows[-1], flush=True)
  return rows


# ------------------------------------------------------------------ 3. reflections (r-scaling)

def reflection_scaling(arch: str, plan: Plan) -> list[str]:
  """Paper CLmser at each r (scan) and, for `plan.unrolled`, unrolled: train step and
  inference at `plan.reflection_batch`, against r = 1 and against the scan."""
  size, batch = SIZES[arch], plan.reflection_batch[arch]
  x = images(batch, size)
  variants = [(r, False) for r in plan.reflections] + [(r, True) for r in plan.unrolled]
  built = {}
  for r, unroll in variants:
    model, variables = paper_model(arch, r, unroll)
    built[(r, unroll, "train")] = runners.jax_train(model, variables, x, PAPER_TASK,
                                                    optax.adam(1e-3))
    built[(r, unroll, "infer")] = runners.jax_infer(model, variables, x, PAPER_TASK)
  fns = {key: b[0] for key, b in built.items()}
  rss = {key: measure.first_call(fn) for key, fn in fns.items()}
  t = measure.interleaved_medians(fns, plan.repeats)
  rows = []
  for r, unroll in variants:
    cells = []
    for kind in ("train", "infer"):
      key, base = (r, unroll, kind), (1, False, kind)
      scan = t[(r, False, kind)] / t[key] if unroll else None
      cells.append(f"{1e3 * t[key]:.1f} ms | {t[key] / (r * t[base]):.2f} | "
                   + (f"{scan:.2f}" if unroll else "-") + f" | {built[key][1]:.2f} s | "
                   f"{built[key][1] / built[base][1]:.2f}")
    rows.append(f"| {arch} {size}x{size} | {batch} | {r} | {'unrolled' if unroll else 'scan'} "
                f"| {' | '.join(cells)} | {mib(built[(r, unroll, 'train')][2])} / "
                f"{rss[(r, unroll, 'train')]:.0f} |")
    print(rows[-1], flush=True)
  return rows


# ----------------------------------------------------------------------------------- report

def machine() -> list[str]:
  """Date, CPU, thread counts and library versions, for the results' header."""
  import torch
  with open("/proc/cpuinfo") as f:
    model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                 platform.processor())
  return [f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
          f"- machine: {model}, nproc {len(os.sched_getaffinity(0))}, "
          f"JAX devices {jax.devices()}",
          f"- threads: torch {torch.get_num_threads()} (set to nproc); XLA:CPU uses all cores; "
          "both flush denormals; a 0.1 s pause before every timed call",
          f"- versions: python {platform.python_version()}, jax {jax.__version__}, flax "
          f"{flax.__version__}, optax {optax.__version__}, torch {torch.__version__}",
          f"- load average (1/5/15 min) at start: {measure.load_average()}"]


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true", help="96 x 96 only, r <= 4, fewer repeats")
  parser.add_argument("--out", help="also write the results as markdown to this file")
  return parser.parse_args(argv)


def report(plan: Plan, command: str) -> str:
  """Every section, measured now, as markdown."""
  lines = ["# Benchmarks (issue 7)", "", f"`{command}`", "", *machine(), "",
           "## Numerics: fast path vs plain autodiff", "", *numerics_check(), "",
           "## Official network: JAX vs the authors' PyTorch (same weights, same batch)", "",
           "| network | measure | batch | JAX | PyTorch | JAX speed-up | JAX compile | XLA MiB "
           "| peak RSS rise MiB JAX / torch |", "|---|---|---|---|---|---|---|---|---|"]
  for arch in plan.archs:
    lines += official_vs_torch(arch, plan)
  lines += ["", "## Paper CLmser: cost of r reflections (JAX only; no PyTorch peer)", "",
            "| network | batch | r | loop | train step | / (r x r=1) | scan / unrolled | "
            "compile | / r=1 | infer | / (r x r=1) | scan / unrolled | compile | / r=1 | "
            "train XLA MiB / RSS rise |", "|" + "---|" * 15]
  for arch in plan.archs:
    lines += reflection_scaling(arch, plan)
  lines += ["", f"- load average at end: {measure.load_average()}"]
  return "\n".join(lines) + "\n"


def main(argv=None):
  import torch
  args = parse_args(argv)
  torch.set_num_threads(len(os.sched_getaffinity(0)))  # as many threads as XLA:CPU uses
  # XLA:CPU flushes denormals; unflushed, AMSGrad's tiny second moments make PyTorch's
  # steps (and later forward passes) up to 15x slower, a baseline not worth beating.
  torch.set_flush_denormal(True)
  text = report(QUICK if args.quick else FULL,
                "python -m benchmarks.run" + (" --quick" if args.quick else ""))
  print(text)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text)


if __name__ == "__main__":
  main()
