"""Everything that exists only for speed on XLA:CPU, in one room behind one switch.

- `convolutions.py`: the CPU formulation of the DCW pair (`ops.FORMULATIONS`), with the
  native kernels of `native/` (built once per machine: `python -m clmser_jax.cpu.build`).
- `compiler.py`: XLA:CPU options for those convolutions (Eigen, not YNNPACK), passed to the
  jitted steps by `ops.compiler_options()`.
- `memory.py`: freed memory kept for the next step instead of mapped afresh (`setup()`).

`CLMSER_JAX_CPU_KERNELS=0` in the environment switches all of it off: the CPU then computes
the pair as GPUs and TPUs do, with XLA's defaults and glibc's. The command lines call `setup()`
first thing; a notebook or script that wants the same calls it before its first JAX
computation. `docs/cpu.md` says what each part buys, measured.
"""
from __future__ import annotations

import os

SWITCH = "CLMSER_JAX_CPU_KERNELS"


def enabled() -> bool:
  """Whether the CPU-only machinery is on (the default; `CLMSER_JAX_CPU_KERNELS=0` is off)."""
  return os.environ.get(SWITCH, "1") != "0"


def setup() -> None:
  """For a process about to train or infer, before JAX starts its backends: on one CPU
  device, the memory policy (`memory.py`). Nothing when switched off."""
  if enabled():
    # pylint: disable-next=g-import-not-at-top  (it imports jax)
    from clmser_jax.cpu import memory
    memory.reuse_freed_memory()
