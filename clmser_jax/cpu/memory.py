"""On a one-device CPU run, keep freed memory for the next step instead of mapping it afresh.

XLA:CPU allocates a step's temporaries when the step starts and frees them when it ends
(hundreds of MB for a 256x256 train step). glibc serves blocks this large with a fresh `mmap`
and hands them back with `munmap`, so the kernel faults in and zeroes every page again at each
step. By default JAX runs a step on a helper thread, whose malloc arena holds at most 64 MB,
so glibc has no other choice there.

`reuse_freed_memory` runs single-device computations on the calling thread
(`jax_cpu_enable_async_dispatch=False`) and tells glibc (`mallopt`) to serve large blocks from
the main heap (`M_MMAP_MAX=0`) and to keep up to 2 GiB of freed memory (`M_TRIM_THRESHOLD`).
What it buys, measured: `docs/cpu.md`.

It is process-wide, and it has costs: the process keeps its peak memory instead of returning
it (and the heap can hold a second copy of a step's temporaries), and Python no longer
prepares the next step while one runs. It helps every library in the process. `cpu.setup()`
applies it, on a one-process CPU run; it must come before JAX starts its backends, which is
why the command lines call it first thing.
"""
from __future__ import annotations

import ctypes
import os

import jax
import jax.extend
from absl import logging

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's <malloc.h>
_KEEP_BYTES = 2**31 - 1  # mallopt takes an int


def _mallopt():
  """glibc's `mallopt`, or None where the C library is another (macOS, musl)."""
  try:
    glibc = os.confstr("CS_GNU_LIBC_VERSION")
  except (AttributeError, ValueError, OSError):
    glibc = None
  return ctypes.CDLL(None).mallopt if glibc else None


def reuse_freed_memory() -> bool:
  """Applies the policy above where it helps: glibc, one process and one CPU device (a
  sharded step runs on helper threads whatever the flag). Call it before JAX's first
  computation. Returns whether it did."""
  mallopt = _mallopt()
  if mallopt is None:
    logging.info("host memory: not glibc; freed memory goes back to the system")
    return False
  if jax.distributed.is_initialized():
    return False  # a multi-process job: a lost peer must still raise, not abort
  jax.config.update("jax_cpu_enable_async_dispatch", False)  # before the CPU client exists
  if jax.default_backend() != "cpu":
    return False  # the CPU client only holds host copies here
  if jax.device_count() != 1:  # sharded steps stay on helper threads, where mallopt slows them
    jax.config.update("jax_cpu_enable_async_dispatch", True)
    jax.extend.backend.clear_backends()  # nothing is on them yet: start them as JAX would
    return False
  if not (mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES)):
    logging.warning("host memory: mallopt refused; freed memory goes back to the system")
    return False
  return True
