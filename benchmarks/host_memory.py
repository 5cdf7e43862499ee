"""`cpu.memory.reuse_freed_memory` on and off: the official network's units, JAX and PyTorch.

The policy is process-wide and must be set before JAX starts, so it cannot be timed
interleaved in one process like the other sections: each setting runs in its own process,
`ON OFF ON OFF ...` alternated over `--rounds`, each process timing JAX and PyTorch
interleaved (PyTorch shares the process's glibc, so the policy applies to it too).

  PYTHONPATH=. python -m benchmarks.host_memory [--arch celeba] [--rounds 2] [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

UNITS = (("train", 8), ("infer", 1), ("infer", 32))


def child(arch: str, reuse: bool, repeats: int) -> dict:
  """Medians in seconds of every unit of `UNITS`, JAX and PyTorch, in this process."""
  from clmser_jax.cpu import memory as host_memory
  applied = host_memory.reuse_freed_memory() if reuse else False
  import optax
  import torch
  from benchmarks import measure, run, runners
  torch.set_num_threads(len(os.sched_getaffinity(0)))
  torch.set_flush_denormal(True)
  model, variables, generator, _ = run.official_pair(arch)
  fns = {}
  for unit, batch in UNITS:
    x = run.images(batch, run.SIZES[arch])
    if unit == "train":
      fns[f"jax {unit} {batch}"] = runners.jax_train(model, variables, x, run.OFFICIAL_TASK,
                                                     optax.amsgrad(1e-3))[0]
      fns[f"torch {unit} {batch}"] = runners.torch_train(generator, x, run.OFFICIAL_TASK)
    else:
      fns[f"jax {unit} {batch}"] = runners.jax_infer(model, variables, x, run.OFFICIAL_TASK)[0]
      fns[f"torch {unit} {batch}"] = runners.torch_infer(generator, x, run.OFFICIAL_TASK)
  return {"applied": applied, **measure.interleaved_medians(fns, repeats)}


def table(runs: dict[bool, list[dict]]) -> list[str]:
  """Markdown rows: per unit and framework, the medians over processes off and on."""
  lines = ["| unit | batch | framework | glibc default | reused | speed-up |", "|" + "---|" * 6]
  for unit, batch in UNITS:
    for framework in ("jax", "torch"):
      key = f"{framework} {unit} {batch}"
      off, on = (statistics.median(r[key] for r in runs[mode]) for mode in (False, True))
      lines.append(f"| {unit} | {batch} | {framework} | {1e3 * off:.1f} ms | {1e3 * on:.1f} ms "
                   f"| {off / on:.2f}x |")
  for unit, batch in UNITS:
    key = f"{unit} {batch}"
    ratios = [statistics.median(r[f"torch {key}"] / r[f"jax {key}"] for r in runs[mode])
              for mode in (False, True)]
    lines.append(f"| {unit} | {batch} | JAX speed-up over PyTorch | {ratios[0]:.2f}x "
                 f"| {ratios[1]:.2f}x | |")
  return lines


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--arch", default="celeba", choices=("stl10", "celeba"))
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--child", choices=("on", "off"), help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    print(json.dumps(child(args.arch, args.child == "on", args.repeats)))
    return
  runs = {False: [], True: []}
  for _ in range(args.rounds):
    for reuse in (True, False):
      command = [sys.executable, "-m", "benchmarks.host_memory", f"--arch={args.arch}",
                 f"--repeats={args.repeats}", f"--child={'on' if reuse else 'off'}"]
      out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
      runs[reuse].append(json.loads(out.splitlines()[-1]))
  if not all(r["applied"] for r in runs[True]):
    print("the policy did not apply here (not glibc, or not one CPU device)")
  print("\n".join(table(runs)))


if __name__ == "__main__":
  main()
