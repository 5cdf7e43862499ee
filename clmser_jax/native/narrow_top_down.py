"""The top-down `U = W^T y` at stride 1 onto a layer of at most 4 channels, as a native XLA:CPU
kernel (`convolutions.cc`): the reconstruction `U_0 = W_1^T H_1` (Eq. 5) of every Table 2
network, 16 channels onto the image's 3.

`U[n, h, w, c] = sum_{a,b,o} y[n, h + p - a, w + p - b, o] W[a, b, c, o]`. XLA:CPU runs it as
a convolution with 3 output channels, a shape its convolution kernels handle poorly; the native
kernel sums over `o` in vector lanes instead, 16 / C pixels at a time. Measured on 2 Xeon
cores (official CelebA layer, 256 x 256, `benchmarks/RESULTS.md`, seventh round): 3.4 -> 0.6 ms
at batch 1, 29 -> 4.9 ms at batch 8.

It applies where the library's conditions hold (`library.usable`), at stride 1 with an odd
kernel, `C <= MAX_CHANNELS` and `O` a multiple of 16; elsewhere `ops.top_down` keeps XLA's
convolutions.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from clmser_jax.native import library

TARGET = "clmser_narrow_top_down"
MAX_CHANNELS = 4  # lower-layer channels C: the kernel keeps (16 / C) x C sums in registers


def applies(y: jax.Array, w: jax.Array, stride: int) -> bool:
  """Whether `narrow_top_down(y, w, ...)` is available and meant for this signal and kernel."""
  k, _, c, o = w.shape
  return (stride == 1 and k % 2 == 1 and c <= MAX_CHANNELS and o % library.LANES == 0
          and library.usable(y, w))


def narrow_top_down(y: jax.Array, w: jax.Array, padding: int) -> jax.Array:
  """`W^T y` (N, H, W, C) float32 of NHWC `y` (N, H, W, O) and HWIO `w` (k, k, C, O) at stride
  1 with `padding = (k - 1) // 2`; see the top. Raises RuntimeError where the library cannot be
  built (`applies` is then False)."""
  out = jax.ShapeDtypeStruct((*y.shape[:3], w.shape[2]), jnp.float32)
  return library.call(TARGET, out, y, w, padding=padding)
