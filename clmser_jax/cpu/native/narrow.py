"""The convolutions between the image and the first layer as native XLA:CPU kernels
(`convolutions.cc`): `Y_1 = W_1 x` (Eq. 3-4) and the reconstruction `U_0 = W_1^T H_1` (Eq. 5),
at stride 1 between at most 4 channels and a multiple of 16 (every Table 2 network: 3 and 16).

  bottom_up: `Y[n, h, w, o] = sum_{a,b,c} x[n, h + a - p, w + b - p, c] W[a, b, c, o]`
  top_down:  `U[n, h, w, c] = sum_{a,b,o} y[n, h + p - a, w + p - b, o] W[a, b, c, o]`

XLA:CPU's convolution kernels handle 3 input or 3 output channels poorly. `bottom_up` keeps 16
output channels of 8 pixels in vector registers and broadcasts `x`; `top_down` sums over `o` in
vector lanes, 16 / C pixels at a time (what it buys: `docs/cpu.md`).

They apply where the library's conditions hold (`library.usable`), at stride 1 with an odd
kernel (`k = 2 p + 1`, the output the size of the input), `C <= MAX_CHANNELS` and `O` a
multiple of 16; elsewhere `ops` keeps XLA's convolutions.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from clmser_jax.cpu.native import library

BOTTOM_UP, TOP_DOWN = "clmser_narrow_bottom_up", "clmser_narrow_top_down"
MAX_CHANNELS = 4  # C: `top_down` keeps (16 / C) x C sums in registers


def applies(signal: jax.Array, w: jax.Array, stride: int) -> bool:
  """Whether `bottom_up(signal, w, ...)` (or `top_down`) is available and meant for this
  signal and HWIO kernel `w` (k, k, C, O)."""
  k, _, c, o = w.shape
  return (stride == 1 and k % 2 == 1 and c <= MAX_CHANNELS and o % library.LANES == 0
          and library.usable(signal, w))


def bottom_up(x: jax.Array, w: jax.Array, padding: int) -> jax.Array:
  """`W x` (N, H, W, O) float32 of NHWC `x` (N, H, W, C) and HWIO `w` (k, k, C, O) at stride 1
  with `padding = (k - 1) // 2`; see the top. Raises RuntimeError where the library cannot be
  built (`applies` is then False)."""
  out = jax.ShapeDtypeStruct((*x.shape[:3], w.shape[3]), jnp.float32)
  return library.call(BOTTOM_UP, out, x, w, padding=padding)


def top_down(y: jax.Array, w: jax.Array, padding: int) -> jax.Array:
  """`W^T y` (N, H, W, C) float32 of NHWC `y` (N, H, W, O) and HWIO `w` (k, k, C, O) at stride
  1 with `padding = (k - 1) // 2`; see the top. Raises RuntimeError where the library cannot be
  built (`applies` is then False)."""
  out = jax.ShapeDtypeStruct((*y.shape[:3], w.shape[2]), jnp.float32)
  return library.call(TOP_DOWN, out, y, w, padding=padding)
