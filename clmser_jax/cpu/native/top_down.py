"""The top-down `U = W^T y` (Eq. 5) of a strided layer as a native XLA:CPU kernel
(`convolutions.cc`), onto a multiple of 16 channels (every layer of Table 2's networks above
the first):

  `U[n, j, l, i] = sum_{a,b,o} y[n, t, u, o] W[a, b, i, o]`, over `s t = j + p - a`,
  `s u = l + p - b`

Output pixels of the same column phase `l mod s` share their taps, so a group of them sums
straight from `y`'s rows, with none of the zeros that XLA's transposed convolution inserts into
`y` (or its phase kernels hold, `convolutions.phase_top_down`). Per group the sums of P pixels
by 16 NV channels live in vector registers while the taps and `y`'s channels go by (what it
buys: `docs/cpu.md`).

It applies where the library's conditions hold (`library.usable`), at stride 2 or more, with
`C` a multiple of 16; elsewhere `ops` keeps XLA's convolutions.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from clmser_jax.cpu.native import library

TARGET = "clmser_top_down"


def applies(y: jax.Array, w: jax.Array, stride: int) -> bool:
  """Whether `top_down(y, w, stride, ...)` is available and meant for the NHWC signal `y` and
  the HWIO kernel `w` (k, k, C, O)."""
  return stride >= 2 and w.shape[2] % library.LANES == 0 and library.usable(y, w)


def top_down(y: jax.Array, w: jax.Array, stride: int, padding: int,
             size: Sequence[int]) -> jax.Array:
  """`W^T y` (N, *size, C) float32 of NHWC `y` (N, OH, OW, O) and HWIO `w` (k, k, C, O); see
  the top. Raises RuntimeError where the library cannot be built (`applies` is then False)."""
  out = jax.ShapeDtypeStruct((y.shape[0], *size, w.shape[2]), jnp.float32)
  return library.call(TARGET, out, y, jnp.swapaxes(w, 2, 3), stride=stride, padding=padding)
