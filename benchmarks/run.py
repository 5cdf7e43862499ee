"""The JAX networks against the authors' PyTorch one on the same machine, the cost of the
reflection loop, and the formulations of `ops`. Not part of the test suite.

  PYTHONPATH=. python -m benchmarks.run [--quick] [--out benchmarks/RESULTS.md]
      [--dtype float32 bfloat16] [--large_batch 256] [--peak_tflops T --peak_gbps G]

1. Numerics: this backend's formulation of `ops` (on the CPU: custom VJPs, phases, native
   kernels) against the XLA formulation (plain autodiff), loss and gradients; with bfloat16
   among `--dtype`, also bfloat16 compute against float32 (same weights).
2. The official network (`model_config(variant, arch, official=True)`) in JAX and in PyTorch
   (`benchmarks/torch_official.py`) with the same converted weights and batch, timed
   interleaved, per compute dtype (PyTorch's bfloat16 is `torch.autocast`): train-step
   images/s, inference ms/frame at batch 1 and images/s at a large batch, JAX compile time,
   memory; then the JAX figures against the roofline (`roofline.py`: FLOPs and bytes per
   image from the architecture, as fractions of `--peak_tflops` and `--peak_gbps`, by default
   peaks measured on this device).
3. The paper's CLmser at r reflections (no PyTorch peer, float32): r-scaling against r = 1,
   the scan against an unrolled loop and against the rematerialising scan (`model.remat`),
   compile time, memory.
4. On any backend, the two formulations of `ops` side by side (XLA's convolutions with plain
   autodiff, and the CPU formulation), interleaved: the official network's units and the
   paper CLmser at r = 1. On the CPU also the compiler options (`cpu.compiler`) against XLA's
   defaults, and the native kernels (`clmser_jax.cpu.native`) against XLA's own operations.
`--quick` runs 96 x 96 only with fewer reflections and repeats (a few minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import platform
import sys

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import measure, roofline, runners
from clmser_jax import ops, tasks
from clmser_jax.cpu import compiler as cpu_compiler
from clmser_jax.cpu import memory as cpu_memory
from clmser_jax.config import DTYPES, model_config, task_config
from clmser_jax.models import build_model
from clmser_jax.cpu.native import library
from clmser_jax.official import convert as convert_official

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
  remat: tuple[int, ...] = ()  # r of the rematerialising scan (`model.remat`)
  dtypes: tuple[str, ...] = ("float32",)  # compute dtypes of section 2 (`model.dtype`)
  peak_tflops: float | None = None  # the roofline's peaks; None: measured on this device
  peak_gbps: float | None = None


QUICK = Plan(archs=("stl10",), train_batch={"stl10": 8}, large_batch=32, reflections=(1, 2, 4),
             reflection_batch={"stl10": 8}, unrolled=(1, 2), repeats=3, remat=(2, 4))
FULL = Plan(archs=("stl10", "celeba"), train_batch={"stl10": 8, "celeba": 8}, large_batch=32,
            reflections=(1, 2, 4, 8, 16), reflection_batch={"stl10": 8, "celeba": 2},
            unrolled=(1, 2, 4), repeats=5, remat=(2, 4, 8, 16))
# An accelerator, in the few minutes a lent one gives: 256x256 only, the paper's batch of 16,
# r = 1 and 4 (`benchmarks/accelerator_check.sh`).
GPU = Plan(archs=("celeba",), train_batch={"celeba": 16}, large_batch=256, reflections=(1, 4),
           reflection_batch={"celeba": 16}, unrolled=(1,), repeats=5, remat=(4,))
# The same sections at toy sizes, to prove the script on a CPU (`--size 64`, the CelebA
# network's total stride).
SMOKE = Plan(archs=("celeba",), train_batch={"celeba": 2}, large_batch=4, reflections=(1, 2),
             reflection_batch={"celeba": 2}, unrolled=(), repeats=1)
PLANS = {"quick": QUICK, "full": FULL, "gpu": GPU, "smoke": SMOKE}


def images(batch: int, size: int, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).uniform(0, 1, (batch, size, size, 3)).astype(np.float32)


def mib(value: float | None) -> str:
  return "n/a" if value is None else f"{value:.0f}"


def official_pair(arch: str, dtype: str = "float32"):
  """The official network of `arch` in JAX (computing in `dtype`) and in PyTorch, with the
  same (converted) weights, and its model config."""
  from benchmarks.torch_official import official_generator
  config = model_config("clmser", arch, official=True)
  config.dtype = dtype
  generator = official_generator("clmser", config.channels, config.strides, seed=0)
  arrays = convert_official.state_dict_arrays(generator.state_dict())
  variables = convert_official.to_variables(arrays, "clmser", config)
  return build_model(config), variables, generator, config


def paper_model(arch: str, reflections: int, loop: str = "scan"):
  config = model_config("clmser", arch)
  config.update(reflections=reflections, remat=loop == "remat")
  model = build_model(config).clone(unroll=loop == "unrolled")
  return model, model.init(jax.random.key(0), images(1, SIZES[arch]))


# ------------------------------------------------------------------------------- 1. numerics

def numerics_cases():
  """`(name, model, variables, task)` of the networks the numerics are checked on."""
  return [("official stl10", *official_pair("stl10")[:2], OFFICIAL_TASK),
          ("paper CLmser r=4", *paper_model("stl10", 4), PAPER_TASK)]


def numerics_check() -> list[str]:
  """Loss and gradients in this backend's formulation and in the XLA formulation (plain
  autodiff of XLA's convolutions), relative difference."""
  rows = []
  for name, model, variables, task in numerics_cases():
    x = images(2, 32, seed=1)
    fast = runners.loss_and_grads(model, variables, x, task)
    with ops.formulation("xla"):
      plain = runners.loss_and_grads(model, variables, x, task)
    loss, grads = (runners.relative_difference(f, p) for f, p in zip(fast, plain))
    ok = "ok" if max(loss, grads) <= 1e-5 else "FAILED"
    rows.append(f"| {name} | 2x32x32 | {loss:.1e} | {grads:.1e} | {ok} |")
    print(rows[-1], flush=True)
  return ["| network | batch | loss rel. diff | grad rel. diff (max over leaves) | <= 1e-5 |",
          "|---|---|---|---|---|", *rows]


def precision_check() -> list[str]:
  """bfloat16 compute against float32 with the same weights: the output in evaluation mode,
  the loss, and the gradients in training mode (cosine of all of them, worst leaf)."""
  rows = []
  for name, model, variables, task in numerics_cases():
    x = images(2, 32, seed=1)
    half = model.clone(dtype=jnp.bfloat16)
    inputs = tasks.model_input({"image": x}, task)
    out32, out16 = (jax.jit(m.apply)(variables, inputs) for m in (model, half))
    (loss32, grads32), (loss16, grads16) = (runners.loss_and_grads(m, variables, x, task)
                                            for m in (model, half))
    rows.append(f"| {name} | 2x32x32 | {runners.relative_difference(out16, out32):.1e} | "
                f"{runners.relative_difference(loss16, loss32):.1e} | "
                f"{runners.cosine(grads16, grads32):.5f} | "
                f"{runners.relative_difference(grads16, grads32):.1e} |")
    print(rows[-1], flush=True)
  return ["| network | batch | output rel. diff | loss rel. diff | grad cosine | "
          "grad rel. diff (max over leaves) |", "|---|---|---|---|---|---|", *rows]


# ------------------------------------------------------------------- 2. official vs PyTorch

def official_vs_torch(arch: str, plan: Plan, dtype: str = "float32"):
  """Train images/s, inference at batch 1 and at `plan.large_batch`: JAX, PyTorch, ratio, all
  computing in `dtype`. Returns these rows and the JAX units' roofline rows."""
  model, variables, generator, config = official_pair(arch, dtype)
  size, batches = SIZES[arch], (plan.train_batch[arch], 1, plan.large_batch)
  kinds = ("train", "infer 1", "infer large")
  x = {kind: images(b, size) for kind, b in zip(kinds, batches)}
  built = {"train": runners.jax_train(model, variables, x["train"], OFFICIAL_TASK,
                                      optax.amsgrad(1e-3))}
  built.update({k: runners.jax_infer(model, variables, x[k], OFFICIAL_TASK) for k in kinds[1:]})
  fns = {("jax", kind): b[0] for kind, b in built.items()}
  fns[("torch", "train")] = runners.torch_train(generator, x["train"], OFFICIAL_TASK, dtype)
  fns.update({("torch", k): runners.torch_infer(generator, x[k], OFFICIAL_TASK, dtype)
              for k in kinds[1:]})
  rss = {key: measure.first_call(fn) for key, fn in fns.items()}
  t = measure.interleaved_medians(fns, plan.repeats)
  rows, roof = [], []
  num_params = sum(p.size for p in jax.tree.leaves(variables["params"]))
  for kind, batch in zip(kinds, batches):
    jax_s, torch_s = t[("jax", kind)], t[("torch", kind)]
    figure = ((f"{1e3 * jax_s:.1f} ms/frame", f"{1e3 * torch_s:.1f} ms/frame") if batch == 1
              else (f"{batch / jax_s:.2f} img/s", f"{batch / torch_s:.2f} img/s"))
    _, compile_s, xla_mib = built[kind]
    rows.append(f"| {arch} {size}x{size} | {kind} | {dtype} | {batch} | {figure[0]} | "
                f"{figure[1]} | **{torch_s / jax_s:.2f}x** | {compile_s:.2f} s | "
                f"{mib(xla_mib)} | {rss[('jax', kind)]:.0f} / {rss[('torch', kind)]:.0f} |")
    roof.append(f"| {arch} {size}x{size} | {kind} | {dtype} | {batch} | " + roofline_cells(
        config, size, batch, dtype, kind == "train", num_params, jax_s / batch,
        roofline_peaks(plan, dtype)))
    print(rows[-1], roof[-1], sep="\n", flush=True)
  return rows, roof


def roofline_peaks(plan: Plan, dtype: str) -> roofline.Peaks:
  """The peaks given in `plan`, each measured on this device in `dtype` where not given."""
  if plan.peak_tflops is not None and plan.peak_gbps is not None:
    return roofline.Peaks(plan.peak_tflops, plan.peak_gbps)
  measured = roofline.measured_peaks(dtype)
  return roofline.Peaks(plan.peak_tflops or measured.tflops, plan.peak_gbps or measured.gbps)


def peaks_line(plan: Plan, dtype: str) -> str:
  """The peaks of the roofline table in `dtype`, and where they come from."""
  peaks = roofline_peaks(plan, dtype)
  n, mib = roofline.peak_sizes()
  measured = (f"measured on this device: a {n} x {n} matrix product, an in-place elementwise "
              f"pass over {mib} MiB")
  given = [name for name, value in (("FLOP/s", plan.peak_tflops), ("GB/s", plan.peak_gbps))
           if value is not None]
  source = "; ".join(([f"{' and '.join(given)} given"] if given else [])
                     + ([measured] if len(given) < 2 else []))
  return f"- peaks in {dtype}: {peaks.tflops:.3g} TFLOP/s, {peaks.gbps:.3g} GB/s ({source})"


def roofline_cells(config, size: int, batch: int, dtype: str, train: bool, num_params: int,
                   seconds_per_image: float, peaks: roofline.Peaks) -> str:
  """GFLOP and MB per image (`roofline.py`), their ratio, and the achieved TFLOP/s and GB/s
  as fractions of `peaks`."""
  flops = roofline.flops_per_image(config, (size, size), train)
  traffic = roofline.bytes_per_image(config, (size, size), batch, jnp.dtype(dtype).itemsize,
                                     train, num_params)
  tflops, gbps = flops / seconds_per_image / 1e12, traffic / seconds_per_image / 1e9
  return (f"{flops / 1e9:.3f} | {traffic / 1e6:.2f} | {flops / traffic:.0f} | {tflops:.4f} | "
          f"{100 * tflops / peaks.tflops:.1f}% | {gbps:.1f} | {100 * gbps / peaks.gbps:.1f}% |")


# ------------------------------------------------------------------ 3. reflections (r-scaling)

def reflection_scaling(arch: str, plan: Plan) -> list[str]:
  """Paper CLmser at each r (scan) and, for `plan.unrolled` and `plan.remat`, unrolled and
  rematerialising: train step and inference at `plan.reflection_batch`, against the scan at
  r = 1 and against the scan at the same r."""
  size, batch = SIZES[arch], plan.reflection_batch[arch]
  x = images(batch, size)
  variants = ([(r, "scan") for r in plan.reflections] + [(r, "unrolled") for r in plan.unrolled]
              + [(r, "remat") for r in plan.remat])
  built = {}
  for r, loop in variants:
    model, variables = paper_model(arch, r, loop)
    built[(r, loop, "train")] = runners.jax_train(model, variables, x, PAPER_TASK,
                                                  optax.adam(1e-3))
    built[(r, loop, "infer")] = runners.jax_infer(model, variables, x, PAPER_TASK)
  fns = {key: b[0] for key, b in built.items()}
  rss = {key: measure.first_call(fn) for key, fn in fns.items()}
  t = measure.interleaved_medians(fns, plan.repeats)
  rows = []
  for r, loop in variants:
    cells = []
    for kind in ("train", "infer"):
      key, base, scan = (r, loop, kind), (1, "scan", kind), (r, "scan", kind)
      against_scan = f"{t[scan] / t[key]:.2f}" if loop != "scan" and scan in t else "-"
      cells.append(f"{1e3 * t[key]:.1f} ms | {t[key] / (r * t[base]):.2f} | {against_scan} | "
                   f"{built[key][1]:.2f} s | {built[key][1] / built[base][1]:.2f}")
    rows.append(f"| {arch} {size}x{size} | {batch} | {r} | {loop} | {' | '.join(cells)} | "
                f"{mib(built[(r, loop, 'train')][2])} / {rss[(r, loop, 'train')]:.0f} |")
    print(rows[-1], flush=True)
  return rows


def _units(arch: str, plan: Plan):
  """Builders `(jit, batch) -> runners' (fn, compile_s, mib)` of the official network's three
  units and the paper CLmser's train step and inference at r = 1, keyed (model, unit, batch)."""
  size = SIZES[arch]
  official, official_vars, _, _ = official_pair(arch)
  paper, paper_vars = paper_model(arch, 1)
  units = {
      ("official", "train", plan.train_batch[arch]): lambda jit, b: runners.jax_train(
          official, official_vars, images(b, size), OFFICIAL_TASK, optax.amsgrad(1e-3), jit),
      ("official", "infer", 1): lambda jit, b: runners.jax_infer(
          official, official_vars, images(b, size), OFFICIAL_TASK, jit),
      ("official", "infer", plan.large_batch): lambda jit, b: runners.jax_infer(
          official, official_vars, images(b, size), OFFICIAL_TASK, jit),
      ("paper r=1", "train", plan.reflection_batch[arch]): lambda jit, b: runners.jax_train(
          paper, paper_vars, images(b, size), PAPER_TASK, optax.adam(1e-3), jit),
      ("paper r=1", "infer", plan.reflection_batch[arch]): lambda jit, b: runners.jax_infer(
          paper, paper_vars, images(b, size), PAPER_TASK, jit),
  }
  return units


def side_by_side(arch: str, plan: Plan, units, variants) -> list[str]:
  """Rows of `units` (`_units`) built two ways, `variants` = {name: (jit, context)} with the
  baseline first, timed interleaved in this process: both times, the speed-up of the second,
  both compile times."""
  built = {}
  for unit, build in units.items():
    for name, (jit, context) in variants.items():
      with context():
        built[(unit, name)] = build(jit, unit[2])
  t = measure.interleaved_medians({key: b[0] for key, b in built.items()}, plan.repeats)
  rows = []
  for unit in units:
    base_s, new_s = (t[(unit, name)] for name in variants)
    base_c, new_c = (built[(unit, name)][1] for name in variants)
    rows.append(f"| {arch} {SIZES[arch]}x{SIZES[arch]} | {unit[0]} | {unit[1]} | {unit[2]} | "
                f"{1e3 * base_s:.1f} ms | {1e3 * new_s:.1f} ms | **{base_s / new_s:.2f}x** | "
                f"{base_c:.2f} s | {new_c:.2f} s |")
    print(rows[-1], flush=True)
  return rows


def formulations(arch: str, plan: Plan) -> list[str]:
  """Every unit of `_units` in the XLA formulation (`lax.conv` / `lax.conv_transpose`, plain
  autodiff) against the CPU formulation (phases, per-tap kernel gradients, native kernels on
  the CPU, custom VJPs), on whatever backend this runs (`ops.FORMULATIONS`)."""
  return side_by_side(arch, plan, _units(arch, plan), {
      "xla": (runners.trainer_jit, lambda: ops.formulation("xla")),
      "cpu": (runners.trainer_jit, lambda: ops.formulation("cpu"))})


def compiler_options(arch: str, plan: Plan) -> list[str]:
  """The CPU formulation's compiler options against `jax.jit` with XLA's defaults, every unit
  of `_units`."""
  return side_by_side(arch, plan, _units(arch, plan), {
      "defaults": (jax.jit, contextlib.nullcontext),
      "cpu options": (runners.trainer_jit, contextlib.nullcontext)})


def native_kernels(arch: str, plan: Plan) -> list[str]:
  """Every unit of `_units` with the native kernels (`clmser_jax.cpu.native`) against XLA's
  own operations (both with the compiler options)."""
  return side_by_side(arch, plan, _units(arch, plan), {
      "xla": (runners.trainer_jit, library.disabled),
      "native": (runners.trainer_jit, contextlib.nullcontext)})


# ----------------------------------------------------------------------------------- report

def machine(reused_memory: bool = False) -> list[str]:
  """Date, CPU, thread counts, memory policy and library versions, for the results' header."""
  import torch
  with open("/proc/cpuinfo") as f:
    model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                 platform.processor())
  return [f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
          f"- machine: {model}, nproc {len(os.sched_getaffinity(0))}, "
          f"JAX devices {jax.devices()}",
          f"- threads: torch {torch.get_num_threads()} (set to nproc); XLA:CPU uses all cores; "
          "both flush denormals; before every timed call a 0.1 s pause, then 0.1 s of untimed "
          "calls of the same unit (timed hot)",
          "- host memory: " + ("`clmser_jax.cpu.memory`'s reuse policy, process-wide (both "
                               "frameworks)" if reused_memory else "glibc's defaults"),
          f"- versions: python {platform.python_version()}, jax {jax.__version__}, flax "
          f"{flax.__version__}, optax {optax.__version__}, torch {torch.__version__}",
          f"- load average (1/5/15 min) at start: {measure.load_average()}"]


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true", help="96 x 96 only, r <= 4, fewer repeats")
  parser.add_argument("--plan", choices=sorted(PLANS), default=None,
                      help="what to measure: quick (= --quick), full (default), gpu (256x256, "
                      "batch 16, r = 1 and 4), smoke (toy sizes, with --size 64)")
  parser.add_argument("--size", type=int, help="image side of every architecture (smoke runs)")
  parser.add_argument("--compiles", type=int, default=runners.COMPILES,
                      help="compilations per compile time (their median)")
  parser.add_argument("--out", help="also write the results as markdown to this file")
  parser.add_argument("--dtype", nargs="+", choices=DTYPES, default=["float32"],
                      help="compute dtypes of the official network's figures (model.dtype); "
                      "bfloat16 also reports its accuracy against float32")
  parser.add_argument("--large_batch", type=int,
                      help="the large inference batch (default: the plan's, 32)")
  parser.add_argument("--peak_tflops", type=float,
                      help="the roofline's FLOP/s peak in TFLOP/s (default: measured on this "
                      "device, a matrix product in each dtype)")
  parser.add_argument("--peak_gbps", type=float,
                      help="the roofline's memory bandwidth in GB/s (default: measured on this "
                      "device, an in-place elementwise pass)")
  parser.add_argument("--reuse_host_memory", action="store_true",
                      help="apply clmser_jax.cpu.memory's policy (the command lines' default) "
                      "to the whole process, so to both frameworks")
  return parser.parse_args(argv)


def plan_from_args(args: argparse.Namespace) -> Plan:
  base = PLANS[args.plan or ("quick" if args.quick else "full")]
  plan = dataclasses.replace(base, dtypes=tuple(args.dtype), peak_tflops=args.peak_tflops,
                             peak_gbps=args.peak_gbps)
  return dataclasses.replace(plan, large_batch=args.large_batch or plan.large_batch)


def report(plan: Plan, command: str, reused_memory: bool = False) -> str:
  """Every section, measured now, as markdown."""
  lines = ["# Benchmarks", "", f"`{command}`", "", *machine(reused_memory), "",
           f"## Numerics: the {ops.current_formulation()} formulation vs the XLA formulation "
           "(plain autodiff)", "", *numerics_check(), ""]
  if "bfloat16" in plan.dtypes:
    lines += ["## Numerics: bfloat16 compute vs float32 (same weights)", "",
              *precision_check(), ""]
  lines += ["## Official network: JAX vs the authors' PyTorch (same weights, same batch)", "",
            "| network | measure | dtype | batch | JAX | PyTorch | JAX speed-up | JAX compile "
            "| XLA MiB | peak RSS rise MiB JAX / torch |", "|" + "---|" * 10]
  roof = []
  for arch in plan.archs:
    for dtype in plan.dtypes:
      rows, roof_rows = official_vs_torch(arch, plan, dtype)
      lines, roof = lines + rows, roof + roof_rows
  lines += ["", "## Official network in JAX against the roofline", "",
            *[peaks_line(plan, dtype) for dtype in plan.dtypes], "",
            "| network | measure | dtype | batch | GFLOP/image | MB/image | FLOP/byte | "
            "TFLOP/s | of peak | GB/s | of peak |", "|" + "---|" * 11, *roof]
  lines += ["", "## Paper CLmser: cost of r reflections (JAX only; no PyTorch peer)", "",
            "| network | batch | r | loop | train step | / (r x r=1) | scan / this | "
            "compile | / r=1 | infer | / (r x r=1) | scan / this | compile | / r=1 | "
            "train XLA MiB / RSS rise |", "|" + "---|" * 15]
  for arch in plan.archs:
    lines += reflection_scaling(arch, plan)
  lines += ["", f"## Formulations of `ops` on {jax.default_backend()}: XLA's against the CPU "
            "formulation (JAX only, interleaved)", "",
            "| network | model | unit | batch | xla | cpu | cpu speed-up | compile xla | "
            "compile cpu |", "|" + "---|" * 9]
  for arch in plan.archs:
    lines += formulations(arch, plan)
  if cpu_compiler.options() is not None:
    lines += ["", "## XLA:CPU options: `cpu.compiler.CPU_OPTIONS` against XLA's defaults (JAX "
              "only, interleaved)", "", f"`CPU_OPTIONS` = `{cpu_compiler.CPU_OPTIONS}`", "",
              "| network | model | unit | batch | defaults | options | speed-up | "
              "compile defaults | compile options |", "|" + "---|" * 9]
    for arch in plan.archs:
      lines += compiler_options(arch, plan)
  if jax.default_backend() == "cpu" and library.loaded():
    lines += ["", "## Native kernels: `clmser_jax.cpu.native` against XLA's own operations "
              "(JAX only, interleaved)", "",
              "| network | model | unit | batch | XLA's | native | speed-up | "
              "compile XLA's | compile native |", "|" + "---|" * 9]
    for arch in plan.archs:
      lines += native_kernels(arch, plan)
  lines += ["", f"- load average at end: {measure.load_average()}"]
  return "\n".join(lines) + "\n"


def main(argv=None):
  import torch
  args = parse_args(argv)
  torch.set_num_threads(len(os.sched_getaffinity(0)))  # as many threads as XLA:CPU uses
  # XLA:CPU flushes denormals; unflushed, AMSGrad's tiny second moments make PyTorch's
  # steps (and later forward passes) up to 15x slower, a baseline not worth beating.
  torch.set_flush_denormal(True)
  command = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
  reused = args.reuse_host_memory and cpu_memory.reuse_freed_memory()  # before JAX starts
  if args.size:
    SIZES.update({arch: args.size for arch in SIZES})
  runners.COMPILES = args.compiles
  ops.prepare()
  text = report(plan_from_args(args), command.strip(), reused)
  print(text)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text)


if __name__ == "__main__":
  main()
