"""The kernel gradient of `ops.bottom_up` as a native XLA:CPU kernel (`kernel_gradient.cc`).

`dW[a, b, i, o] = sum_{n,h,w} x_pad[n, s*h + a, s*w + b, i] g[n, h, w, o]`, the sum that
`ops.weight_gradient` writes with XLA's operations, in one pass over `g` with the partial sums
in vector registers. It is what made XLA:CPU slower than PyTorch's oneDNN in the train step.
Measured on 2 Xeon cores (`benchmarks/RESULTS.md`, sixth round): the official network's 256x256
train step 512 -> 412 ms (1.24x; 1.25-1.27x in probes), the paper CLmser's 1.26-1.51x.

It applies where the work is float32 on a single CPU device, with output channels a multiple
of 16 (`applies`). Elsewhere, and where it cannot be built (`build.library`), or with
`CLMSER_JAX_NATIVE=0` in the environment, `ops.weight_gradient` keeps XLA's products. On more
than one device XLA would have to gather the batch for a call it cannot partition, so sharded
runs keep XLA's products too.
"""
from __future__ import annotations

import contextlib
import functools
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from clmser_jax.native import build

SOURCE = pathlib.Path(__file__).with_suffix(".cc")
TARGET = "clmser_kernel_gradient"
LANES = 16  # floats per vector in the kernel: the output channels must be a multiple
_enabled = [os.environ.get("CLMSER_JAX_NATIVE", "1") != "0"]


@functools.cache
def registered() -> bool:
  """Whether the native kernel is built and registered with XLA:CPU (built at the first call)."""
  lib = build.library(SOURCE)
  if lib is None:
    return False
  jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(lib.ClmserKernelGradient),
                              platform="cpu")
  return True


@contextlib.contextmanager
def disabled():
  """Inside, `applies` is False: functions traced here use XLA's kernels (benchmarks, tests)."""
  previous, _enabled[0] = _enabled[0], False
  try:
    yield
  finally:
    _enabled[0] = previous


def applies(x: jax.Array, g: jax.Array) -> bool:
  """Whether `kernel_gradient(x, g, ...)` is available and meant for these signals."""
  return (_enabled[0] and x.dtype == g.dtype == jnp.float32 and g.shape[-1] % LANES == 0
          and jax.default_backend() == "cpu" and jax.device_count() == 1 and registered())


def kernel_gradient(x: jax.Array, g: jax.Array, stride: int, kernel_size: int,
                    padding: int) -> jax.Array:
  """`dW` (k, k, C, O) float32 of NHWC `x` (N, H, W, C) and `g` (N, OH, OW, O); see the top.
  Raises RuntimeError where the kernel cannot be built (`applies` is then False)."""
  if not registered():
    raise RuntimeError(f"{SOURCE.name} could not be built here (see the logged warning)")
  out = jax.ShapeDtypeStruct((kernel_size, kernel_size, x.shape[-1], g.shape[-1]), jnp.float32)
  return jax.ffi.ffi_call(TARGET, out, vmap_method="sequential")(
      x, g, stride=np.int64(stride), padding=np.int64(padding))
