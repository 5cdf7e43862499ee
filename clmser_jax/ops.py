"""The shared-kernel pair of DCW: bottom-up `W x` and top-down `W^T y` on one kernel.

A layer of CLmser owns one kernel `W_i` (HWIO, shape `(k, k, c_{i-1}, c_i)`). The encoder
applies it as a strided convolution, `Y_i = W_i H_{i-1}` (Eq. 3-4); the decoder applies its
exact adjoint, `U_{i-1} = W_i^T H_i` (Eq. 5), on the *same* array. Padding is PyTorch-style
`(k - 1) // 2` on each side, and the top-down output is sized to the bottom-up input, so `W^T`
is the adjoint of `W` for every stride and every (even or odd) size: `<W x, y> == <x, W^T y>`.
On narrow layers `W^T` is computed phase by phase (`_top_down`): per output phase, a
strided transposed convolution is a stride-1 convolution of `y` with the taps that reach that
phase, which skips the zeros a dilated `lax.conv_transpose` inserts into `y` (XLA:CPU also
hands such convolutions to a faster library). On one CPU device, in float32, native kernels
take over: `W` and `W^T` from and onto the image's few channels at stride 1 (`native.narrow`),
and the strided `W^T` onto a multiple of 16 channels (`native.top_down`, phase by phase too).

Both carry custom VJPs built from the pair itself and `weight_gradient` (on one CPU device a
native kernel, `native.kernel_gradient`; else a forward convolution, or per-tap matrix products
when strided): XLA:CPU's autodiff of a strided `conv_transpose` weight gradient is 30-80x
slower, and inside the reflection loop autodiff's weight gradients fall into slow layouts.

Mixed precision: a convolution runs in the dtype of its signal (`x` or `y`), the kernel cast
to it at each use, so float32 kernels serve a bfloat16 network. The kernel gradient sums over
batch and space in float32 and comes back in the kernel's own dtype: the gradients of the
`2 r` uses of a shared kernel then add up in float32, not in bfloat16.
"""
from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from clmser_jax.native import kernel_gradient, narrow
from clmser_jax.native import top_down as native_top_down

_DIMS = ("NHWC", "HWIO", "NHWC")
MAX_PHASE_CHANNELS = 128  # `_top_down`'s choice, see there


def conv_padding(kernel_size: int) -> int:
  """Symmetric zero padding of every layer: `(k - 1) // 2` (3x3 kernels pad by 1)."""
  return (kernel_size - 1) // 2


def output_size(size: int, kernel_size: int, stride: int) -> int:
  """Spatial size of `W x` for an input of `size` pixels."""
  return (size + 2 * conv_padding(kernel_size) - kernel_size) // stride + 1


def _bottom_up(x, w, stride):
  """`W x` as XLA's convolution (differentiable by JAX: the benchmarks' plain reference)."""
  p = conv_padding(w.shape[0])
  return lax.conv_general_dilated(
      x, w.astype(x.dtype), (stride, stride), ((p, p), (p, p)), dimension_numbers=_DIMS)


def _fast_bottom_up(x, w, stride):
  """`W x` as `bottom_up` and the VJPs compute it: from a few channels at stride 1 (the image)
  on one CPU device a native kernel (`native.narrow`), else XLA's convolution."""
  if narrow.applies(x, w, stride):
    return narrow.bottom_up(x, w, conv_padding(w.shape[0]))
  return _bottom_up(x, w, stride)


def _phase_taps(kernel_size: int, stride: int):
  """Which kernel tap feeds which output phase of `W^T` along one axis, and the padding.

  `W^T y` at output row `j = s t + r` sums `y[t + e] W[a]` over the taps `a = (r + p) - s e`
  in `[0, k)`. As one correlation of `y` (padded by `lo` rows in front) with a kernel of
  `length` rows, tap `a` sits at row `e + lo` of phase `r`. Returns `(index, lo)`: `index`
  (length, s) holds the tap at each row and phase, `k` where there is none (a zero tap).
  """
  p = conv_padding(kernel_size)
  offsets = {(r, (r + p - a) // stride): a for r in range(stride) for a in range(kernel_size)
             if (r + p - a) % stride == 0}
  lo = max(-e for _, e in offsets)
  length = lo + max(e for _, e in offsets) + 1
  index = np.full((length, stride), kernel_size)
  for (r, e), a in offsets.items():
    index[e + lo, r] = a
  return index, lo


def _transpose_padding(size: int, out: int, kernel_size: int, stride: int):
  """Padding of the dilated `y` that makes `conv_transpose` the exact adjoint."""
  p = conv_padding(kernel_size)
  lo = kernel_size - 1 - p
  # Rows of `x` that the strided conv never read get a zero gradient: pad them back.
  extra = size - ((out - 1) * stride - 2 * p + kernel_size)
  return (lo, lo + extra)


def _dilated_top_down(y, w, stride, size):
  """`W^T y` as XLA's transposed convolution (a convolution of the stride-dilated `y`)."""
  k = w.shape[0]
  pads = [_transpose_padding(n, o, k, stride) for n, o in zip(size, y.shape[1:3])]
  return lax.conv_transpose(
      y, w.astype(y.dtype), (stride, stride), pads, dimension_numbers=_DIMS, transpose_kernel=True)


def _phase_top_down(y, w, stride, size):
  """`W^T y` as one stride-1 convolution of `y` whose output channels are the `s x s` output
  phases, then interleaved. The kernel holds every phase's taps, zeros where a phase has none
  (k = 3, s = 2: a 2 x 2 kernel for each of 4 phases, 16 taps of which 9 are non-zero)."""
  k, c = w.shape[0], w.shape[2]
  index, lo = _phase_taps(k, stride)
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


def _top_down(y, w, stride, size):
  """`W^T y`, phase by phase where the phases have at most `MAX_PHASE_CHANNELS` channels
  (`s^2 c` for a lower layer of `c` channels), else as XLA's transposed convolution. Measured
  on XLA:CPU (official CelebA layers, batch 1-32): the phases are 1.5-2.4x faster with 64
  channels, 1-2.4x with 128, and 0.5-1.0x with 256 or more. On one CPU device, in float32, a
  native kernel instead: at stride 1 onto a few channels (the reconstruction `U_0`,
  `native.narrow`), and strided onto a multiple of 16 channels (`native.top_down`)."""
  if narrow.applies(y, w, stride):
    return narrow.top_down(y, w, conv_padding(w.shape[0]))
  if native_top_down.applies(y, w, stride):
    return native_top_down.top_down(y, w, stride, conv_padding(w.shape[0]), size)
  if stride == 1 or stride * stride * w.shape[2] > MAX_PHASE_CHANNELS:
    return _dilated_top_down(y, w, stride, size)
  return _phase_top_down(y, w, stride, size)


def _strided_taps(x: jax.Array, out_size: Sequence[int], stride: int, kernel_size: int):
  """The `k * k` strided views `x_pad[:, s*h + a, s*w + b]` (h, w over the output) that
  kernel tap `(a, b)` of `bottom_up` reads, in row-major tap order."""
  p = conv_padding(kernel_size)
  x_pad = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  h, w = out_size
  return [x_pad[:, a:a + stride * (h - 1) + 1:stride, b:b + stride * (w - 1) + 1:stride]
          for a in range(kernel_size) for b in range(kernel_size)]


def weight_gradient(x: jax.Array, g: jax.Array, stride: int, kernel_size: int) -> jax.Array:
  """`d<g, W x>/dW`: the kernel gradient of `bottom_up`, without autodiff.

  `dW[a, b, i, o] = sum_{n,h,w} x_pad[n, s*h + a, s*w + b, i] g[n, h, w, o]`. At stride 1 it
  is one canonical forward convolution (the padded input, batch and channel axes swapped, with
  `g` as the kernel); at larger strides one matrix product per kernel tap, which XLA:CPU runs
  3-5x faster than the stride-dilated convolution. Either way it stays in a fast layout, also
  inside the reflection loop. The sums accumulate in float32 (also for bfloat16 `x` and `g`),
  and so does the result. On a single CPU device, in float32, the sum is one native kernel
  instead (`native.kernel_gradient`, where it applies and builds).
  """
  if kernel_gradient.applies(x, g):
    return kernel_gradient.kernel_gradient(x, g, stride, kernel_size, conv_padding(kernel_size))
  if stride > 1:
    g2 = g.reshape(-1, g.shape[-1])
    taps = [lax.dot_general(t.reshape(-1, x.shape[-1]), g2, (((0,), (0,)), ((), ())),
                            preferred_element_type=jnp.float32)
            for t in _strided_taps(x, g.shape[1:3], stride, kernel_size)]
    return jnp.stack(taps).reshape(kernel_size, kernel_size, x.shape[-1], g.shape[-1])
  p = conv_padding(kernel_size)
  lhs = jnp.transpose(jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0))), (3, 1, 2, 0))
  rhs = jnp.transpose(g, (1, 2, 0, 3))
  out = lax.conv_general_dilated(lhs, rhs, (1, 1), "VALID", dimension_numbers=_DIMS,
                                 preferred_element_type=jnp.float32)
  return jnp.transpose(out[:, :kernel_size, :kernel_size], (1, 2, 0, 3))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def bottom_up(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
  """`Y = W x`: strided convolution of NHWC `x` with HWIO kernel `w` (Eq. 3-4)."""
  return _fast_bottom_up(x, w, stride)


def _bottom_up_fwd(x, w, stride):
  return _fast_bottom_up(x, w, stride), (x, w)


def _bottom_up_bwd(stride, res, g):
  x, w = res
  dw = weight_gradient(x, g, stride, w.shape[0]).astype(w.dtype)
  return top_down(g, w, stride, x.shape[1:3]), dw


bottom_up.defvjp(_bottom_up_fwd, _bottom_up_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def top_down(y: jax.Array, w: jax.Array, stride: int, size: Sequence[int]) -> jax.Array:
  """`U = W^T y`: the exact adjoint of `bottom_up(., w, stride)` (Eq. 5).

  Args:
    y: NHWC signal of the upper layer.
    w: the layer's HWIO kernel, the same array `bottom_up` uses (DCW).
    stride: the layer's stride.
    size: `(H, W)` of the lower layer, i.e. of the `x` in `y = W x`.
  """
  return _top_down(y, w, stride, tuple(size))


def _top_down_fwd(y, w, stride, size):
  return _top_down(y, w, stride, tuple(size)), (y, w)


def _top_down_bwd(stride, size, res, g):
  # U = W^T y is linear in y and in w, and <g, W^T y> = <W g, y>: both gradients are
  # forward convolutions, `W g` and the kernel gradient of `W g` at cotangent y.
  y, w = res
  return _fast_bottom_up(g, w, stride), weight_gradient(g, y, stride, w.shape[0]).astype(
      w.dtype)


top_down.defvjp(_top_down_fwd, _top_down_bwd)
