"""The CPU formulation of the DCW pair (`ops.FORMULATIONS`): where XLA:CPU's own operations
are slow, faster forms of the same sums. Each function returns None where it has nothing
better, and `ops` then uses XLA's operation.

- `W^T y` at stride > 1, phase by phase (`phase_top_down`): per output phase, a strided
  transposed convolution is a stride-1 convolution of `y` with the taps that reach that
  phase, which skips the zeros a dilated `lax.conv_transpose` inserts into `y` (and XLA:CPU
  hands such convolutions to a faster library). Used where the phases have at most
  `MAX_PHASE_CHANNELS` channels (`s^2 c` for a lower layer of `c` channels): measured on
  XLA:CPU, beyond that XLA's transposed convolution wins (`benchmarks/RESULTS.md`).
- The kernel gradient at stride > 1 as one matrix product per kernel tap (`tap_products`),
  which XLA:CPU runs faster than the stride-dilated convolution; it also stays in a fast
  layout inside the reflection loop.
- On one CPU device, in float32, once `prepare` has loaded them: native kernels
  (`native/`), `W` and `W^T` from and onto the image's few channels at stride 1
  (`native.narrow`), the strided `W^T` onto a multiple of 16 channels (`native.top_down`) and
  the kernel gradient (`native.kernel_gradient`).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from clmser_jax.cpu.native import kernel_gradient, library, narrow
from clmser_jax.cpu.native import top_down as native_top_down

_DIMS = ("NHWC", "HWIO", "NHWC")
MAX_PHASE_CHANNELS = 128  # the phase form of `W^T` up to this many channels, see the top


def prepare() -> None:
  """Loads the native kernels (built once per machine), before anything is traced."""
  library.load()


def phase_taps(kernel_size: int, stride: int, padding: int):
  """Which kernel tap feeds which output phase of `W^T` along one axis, and the padding.

  `W^T y` at output row `j = s t + r` sums `y[t + e] W[a]` over the taps `a = (r + p) - s e`
  in `[0, k)`. As one correlation of `y` (padded by `lo` rows in front) with a kernel of
  `length` rows, tap `a` sits at row `e + lo` of phase `r`. Returns `(index, lo)`: `index`
  (length, s) holds the tap at each row and phase, `k` where there is none (a zero tap).
  """
  p = padding
  offsets = {(r, (r + p - a) // stride): a for r in range(stride) for a in range(kernel_size)
             if (r + p - a) % stride == 0}
  lo = max(-e for _, e in offsets)
  length = lo + max(e for _, e in offsets) + 1
  index = np.full((length, stride), kernel_size)
  for (r, e), a in offsets.items():
    index[e + lo, r] = a
  return index, lo


def phase_top_down(y: jax.Array, w: jax.Array, stride: int, padding: int,
                   size: Sequence[int]) -> jax.Array:
  """`W^T y` as one stride-1 convolution of `y` whose output channels are the `s x s` output
  phases, then interleaved. The kernel holds every phase's taps, zeros where a phase has none
  (k = 3, s = 2: a 2 x 2 kernel for each of 4 phases, 16 taps of which 9 are non-zero)."""
  k, c = w.shape[0], w.shape[2]
  index, lo = phase_taps(k, stride, padding)
  length = index.shape[0]
  w_pad = jnp.pad(jnp.swapaxes(w, 2, 3).astype(y.dtype), ((0, 1), (0, 1), (0, 0), (0, 0)))
  kernel = w_pad[index[:, :, None, None], index[None, None]]  # (E, s, E, s, O, C)
  kernel = kernel.transpose(0, 2, 4, 1, 3, 5).reshape(length, length, -1, stride * stride * c)
  phases = [-(-n // stride) for n in size]  # output positions per phase
  pads = [(lo, t + length - 1 - lo - m) for t, m in zip(phases, y.shape[1:3])]
  u = lax.conv_general_dilated(y, kernel, (1, 1), pads, dimension_numbers=_DIMS)
  u = u.reshape(y.shape[0], *phases, stride, stride, c).transpose(0, 1, 3, 2, 4, 5)
  u = u.reshape(y.shape[0], phases[0] * stride, phases[1] * stride, c)
  return u[:, :size[0], :size[1]]


def _strided_taps(x: jax.Array, out_size: Sequence[int], stride: int, kernel_size: int,
                  padding: int):
  """The `k * k` strided views `x_pad[:, s*h + a, s*w + b]` (h, w over the output) that
  kernel tap `(a, b)` of `W x` reads, in row-major tap order."""
  p = padding
  x_pad = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  h, w = out_size
  return [x_pad[:, a:a + stride * (h - 1) + 1:stride, b:b + stride * (w - 1) + 1:stride]
          for a in range(kernel_size) for b in range(kernel_size)]


def tap_products(x: jax.Array, g: jax.Array, stride: int, kernel_size: int,
                 padding: int) -> jax.Array:
  """`dW[a, b, i, o] = sum_{n,h,w} x_pad[n, s*h + a, s*w + b, i] g[n, h, w, o]` as one
  matrix product per tap, summed in float32."""
  g2 = g.reshape(-1, g.shape[-1])
  taps = [lax.dot_general(t.reshape(-1, x.shape[-1]), g2, (((0,), (0,)), ((), ())),
                          preferred_element_type=jnp.float32)
          for t in _strided_taps(x, g.shape[1:3], stride, kernel_size, padding)]
  return jnp.stack(taps).reshape(kernel_size, kernel_size, x.shape[-1], g.shape[-1])


def bottom_up(x: jax.Array, w: jax.Array, stride: int, padding: int) -> jax.Array | None:
  """`W x` from a few channels at stride 1 (the image) as a native kernel; None elsewhere."""
  if narrow.applies(x, w, stride):
    return narrow.bottom_up(x, w, padding)
  return None


def top_down(y: jax.Array, w: jax.Array, stride: int, padding: int,
             size: Sequence[int]) -> jax.Array | None:
  """`W^T y`: native onto a few channels at stride 1 or onto a multiple of 16 channels when
  strided; else phase by phase where the phases are narrow enough; None elsewhere."""
  if narrow.applies(y, w, stride):
    return narrow.top_down(y, w, padding)
  if native_top_down.applies(y, w, stride):
    return native_top_down.top_down(y, w, stride, padding, size)
  if stride == 1 or stride * stride * w.shape[2] > MAX_PHASE_CHANNELS:
    return None
  return phase_top_down(y, w, stride, padding, size)


def weight_gradient(x: jax.Array, g: jax.Array, stride: int, kernel_size: int,
                    padding: int) -> jax.Array | None:
  """`d<g, W x>/dW` in float32: native where it applies, per-tap products when strided, None
  at stride 1 (XLA's forward convolution is fast there)."""
  if kernel_gradient.applies(x, g):
    return kernel_gradient.kernel_gradient(x, g, stride, kernel_size, padding)
  if stride > 1:
    return tap_products(x, g, stride, kernel_size, padding)
  return None
