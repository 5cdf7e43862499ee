"""The native kernels' library (`convolutions.cc`): built and registered with XLA:CPU by
`load` (before anything is traced), and the conditions they share.

A native kernel is used where the work is float32 on a single CPU device, the library is
loaded and it is not switched off (`disabled()` while a function is traced, for side-by-side
measurements and tests); each kernel adds its own conditions on the shapes. On more than one
device XLA would have to gather the batch for a call it cannot partition, so sharded runs
keep XLA's own operations, as do GPUs and TPUs.
"""
from __future__ import annotations

import contextlib
import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from clmser_jax.cpu.native import compile as compile_lib

SOURCE = pathlib.Path(__file__).with_name("convolutions.cc")
HANDLERS = {"clmser_kernel_gradient": "ClmserKernelGradient",  # XLA target: symbol in SOURCE
            "clmser_narrow_bottom_up": "ClmserNarrowBottomUp",
            "clmser_narrow_top_down": "ClmserNarrowTopDown",
            "clmser_top_down": "ClmserTopDown"}
LANES = 16  # floats per vector in the kernels: the channels they sum over are a multiple
_enabled = [True]


@functools.cache
def load() -> bool:
  """Builds the library (once per machine, cached) where needed, loads it and registers its
  kernels with XLA:CPU; whether that worked. Call it before tracing: tracing never builds."""
  lib = compile_lib.library(SOURCE)
  if lib is None:
    return False
  for target, symbol in HANDLERS.items():
    jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
  return True


def loaded() -> bool:
  """Whether `load` has run and worked (never builds)."""
  return load.cache_info().currsize > 0 and load()


@contextlib.contextmanager
def disabled():
  """Inside, `usable` is False: functions traced here use XLA's kernels (benchmarks, tests)."""
  previous, _enabled[0] = _enabled[0], False
  try:
    yield
  finally:
    _enabled[0] = previous


def usable(*arrays: jax.Array) -> bool:
  """Whether a native kernel may take `arrays`: all float32, one CPU device, switched on and
  loaded."""
  return (_enabled[0] and all(a.dtype == jnp.float32 for a in arrays)
          and jax.default_backend() == "cpu" and jax.device_count() == 1 and loaded())


def call(target: str, out: jax.ShapeDtypeStruct, *args: jax.Array, **attrs) -> jax.Array:
  """`target` (a key of `HANDLERS`) on `args`, with integer attributes `attrs`. Raises
  RuntimeError where the library is not loaded (`usable` is then False)."""
  if not loaded():
    raise RuntimeError(f"{SOURCE.name} is not loaded (`load()`; see its logged warning)")
  return jax.ffi.ffi_call(target, out, vmap_method="sequential")(
      *args, **{name: np.int64(value) for name, value in attrs.items()})
