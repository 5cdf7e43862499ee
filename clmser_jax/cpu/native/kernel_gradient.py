"""The kernel gradient of `ops.bottom_up` as a native XLA:CPU kernel (`convolutions.cc`).

`dW[a, b, i, o] = sum_{n,h,w} x_pad[n, s*h + a, s*w + b, i] g[n, h, w, o]`, the sum that
`ops.xla_weight_gradient` and `convolutions.tap_products` write with XLA's operations, in one
pass over `g` with the partial sums in vector registers. XLA:CPU's own forms of this sum were
the train step's largest cost (what it buys: `docs/cpu.md`).

It applies where the library's conditions hold (`library.usable`) and the output channels are
a multiple of 16; elsewhere `ops.weight_gradient` keeps XLA's products.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from clmser_jax.cpu.native import library

TARGET = "clmser_kernel_gradient"


def applies(x: jax.Array, g: jax.Array) -> bool:
  """Whether `kernel_gradient(x, g, ...)` is available and meant for these signals."""
  return g.shape[-1] % library.LANES == 0 and library.usable(x, g)


def kernel_gradient(x: jax.Array, g: jax.Array, stride: int, kernel_size: int,
                    padding: int) -> jax.Array:
  """`dW` (k, k, C, O) float32 of NHWC `x` (N, H, W, C) and `g` (N, OH, OW, O); see the top.
  Raises RuntimeError where the library cannot be built (`applies` is then False)."""
  out = jax.ShapeDtypeStruct((kernel_size, kernel_size, x.shape[-1], g.shape[-1]), jnp.float32)
  return library.call(TARGET, out, x, g, stride=stride, padding=padding)
