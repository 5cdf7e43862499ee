"""The shared-kernel pair of DCW: bottom-up `W x` and top-down `W^T y` on one kernel.

A layer of CLmser owns one kernel `W_i` (HWIO, shape `(k, k, c_{i-1}, c_i)`). The encoder
applies it as a strided convolution, `Y_i = W_i H_{i-1}` (Eq. 3-4); the decoder applies its
exact adjoint, `U_{i-1} = W_i^T H_i` (Eq. 5), on the *same* array. Padding is PyTorch-style
`(k - 1) // 2` on each side, and the top-down output is sized to the bottom-up input, so `W^T`
is the adjoint of `W` for every stride and every (even or odd) size: `<W x, y> == <x, W^T y>`.

Mixed precision: a convolution runs in the dtype of its signal (`x` or `y`), the kernel cast
to it at each use, so float32 kernels serve a bfloat16 network; the kernel gradient sums in
float32 and comes back in the kernel's own dtype, so the gradients of the `2 r` uses of a
shared kernel add up in float32.

Each backend computes the pair in the formulation it runs fastest (`FORMULATIONS`):

| backend | formulation | why |
|---|---|---|
| GPU, TPU | `xla`: `lax.conv_general_dilated` and `lax.conv_transpose`, JAX's autodiff | cuDNN and the TPU compiler have native strided transposed convolutions and filter gradients (`benchmarks/run.py` measures both formulations on the backend at hand) |
| CPU | `cpu` (`clmser_jax/cpu/convolutions.py`): phase-by-phase `W^T`, per-tap kernel gradients, native kernels, and VJPs built from the pair itself | XLA:CPU's strided transposed convolution and its autodiff kernel gradient are many times slower (`docs/cpu.md`) |

`CLMSER_JAX_CPU_KERNELS=0` makes the CPU use `xla` too; `formulation(name)` forces one while
functions are traced (benchmarks, tests).
"""
from __future__ import annotations

import contextlib
import functools
from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from clmser_jax import cpu
from clmser_jax.cpu import compiler as cpu_compiler
from clmser_jax.cpu import convolutions as cpu_convolutions

_DIMS = ("NHWC", "HWIO", "NHWC")
FORMULATIONS = {"cpu": "cpu", "gpu": "xla", "tpu": "xla"}  # the table above
_forced = [None]


def conv_padding(kernel_size: int) -> int:
  """Symmetric zero padding of every layer: `(k - 1) // 2` (3x3 kernels pad by 1)."""
  return (kernel_size - 1) // 2


def output_size(size: int, kernel_size: int, stride: int) -> int:
  """Spatial size of `W x` for an input of `size` pixels."""
  return (size + 2 * conv_padding(kernel_size) - kernel_size) // stride + 1


def xla_bottom_up(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
  """`W x` as XLA's convolution."""
  p = conv_padding(w.shape[0])
  return lax.conv_general_dilated(
      x, w.astype(x.dtype), (stride, stride), ((p, p), (p, p)), dimension_numbers=_DIMS)


def _transpose_padding(size: int, out: int, kernel_size: int, stride: int):
  """Padding of the dilated `y` that makes `conv_transpose` the exact adjoint."""
  p = conv_padding(kernel_size)
  lo = kernel_size - 1 - p
  # Rows of `x` that the strided conv never read get a zero gradient: pad them back.
  extra = size - ((out - 1) * stride - 2 * p + kernel_size)
  return (lo, lo + extra)


def xla_top_down(y: jax.Array, w: jax.Array, stride: int, size: Sequence[int]) -> jax.Array:
  """`W^T y` as XLA's transposed convolution (a convolution of the stride-dilated `y`)."""
  k = w.shape[0]
  pads = [_transpose_padding(n, o, k, stride) for n, o in zip(size, y.shape[1:3])]
  return lax.conv_transpose(y, w.astype(y.dtype), (stride, stride), pads,
                            dimension_numbers=_DIMS, transpose_kernel=True)


def xla_weight_gradient(x: jax.Array, g: jax.Array, stride: int,
                        kernel_size: int) -> jax.Array:
  """`d<g, W x>/dW` as one forward convolution.

  `dW[a, b, i, o] = sum_{n,h,w} x_pad[n, s*h + a, s*w + b, i] g[n, h, w, o]`: the padded
  input, batch and channel axes swapped, convolved with `g` as the kernel, dilated by the
  stride. The sums accumulate in float32 (also for bfloat16 `x` and `g`), and so does the
  result.
  """
  p = conv_padding(kernel_size)
  lhs = jnp.transpose(jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0))), (3, 1, 2, 0))
  rhs = jnp.transpose(g, (1, 2, 0, 3))
  out = lax.conv_general_dilated(lhs, rhs, (1, 1), "VALID", rhs_dilation=(stride, stride),
                                 dimension_numbers=_DIMS, preferred_element_type=jnp.float32)
  return jnp.transpose(out[:, :kernel_size, :kernel_size], (1, 2, 0, 3))


@contextlib.contextmanager
def formulation(name: str):
  """Inside, functions are traced with formulation `name` ('xla' or 'cpu') on any backend."""
  previous, _forced[0] = _forced[0], name
  try:
    yield
  finally:
    _forced[0] = previous


def current_formulation() -> str:
  """The formulation functions traced now use (`FORMULATIONS`, `formulation`)."""
  if _forced[0] is not None:
    return _forced[0]
  name = FORMULATIONS.get(jax.default_backend(), "xla")
  return name if name != "cpu" or cpu.enabled() else "xla"


def prepare() -> None:
  """Readies the current formulation's kernels before anything is traced: on the CPU, loads
  the native kernels (building them once per machine when `python -m clmser_jax.cpu.build`
  has not). Tracing never builds anything; traced before this, the CPU formulation uses
  XLA's operations where the native kernels would have served."""
  if current_formulation() == "cpu":
    cpu_convolutions.prepare()


def compiler_options() -> dict[str, str] | None:
  """The XLA options the current formulation's convolutions want (`jax.jit(...,
  compiler_options=...)`): on the CPU formulation `cpu.compiler.options()`, else None."""
  return cpu_compiler.options() if current_formulation() == "cpu" else None


def weight_gradient(x: jax.Array, g: jax.Array, stride: int, kernel_size: int) -> jax.Array:
  """`d<g, W x>/dW`, in float32, in the current formulation."""
  if current_formulation() == "cpu":
    found = cpu_convolutions.weight_gradient(x, g, stride, kernel_size,
                                             conv_padding(kernel_size))
    if found is not None:
      return found
  return xla_weight_gradient(x, g, stride, kernel_size)


def _cpu_bottom_up(x, w, stride):
  found = cpu_convolutions.bottom_up(x, w, stride, conv_padding(w.shape[0]))
  return xla_bottom_up(x, w, stride) if found is None else found


def _cpu_top_down(y, w, stride, size):
  found = cpu_convolutions.top_down(y, w, stride, conv_padding(w.shape[0]), size)
  return xla_top_down(y, w, stride, size) if found is None else found


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _paired_bottom_up(x, w, stride):
  return _cpu_bottom_up(x, w, stride)


def _paired_bottom_up_fwd(x, w, stride):
  return _cpu_bottom_up(x, w, stride), (x, w)


def _paired_bottom_up_bwd(stride, res, g):
  x, w = res
  dw = weight_gradient(x, g, stride, w.shape[0]).astype(w.dtype)
  return _paired_top_down(g, w, stride, x.shape[1:3]), dw


_paired_bottom_up.defvjp(_paired_bottom_up_fwd, _paired_bottom_up_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _paired_top_down(y, w, stride, size):
  return _cpu_top_down(y, w, stride, tuple(size))


def _paired_top_down_fwd(y, w, stride, size):
  return _cpu_top_down(y, w, stride, tuple(size)), (y, w)


def _paired_top_down_bwd(stride, size, res, g):
  # U = W^T y is linear in y and in w, and <g, W^T y> = <W g, y>: both gradients are
  # forward convolutions, `W g` and the kernel gradient of `W g` at cotangent y.
  y, w = res
  return _cpu_bottom_up(g, w, stride), weight_gradient(g, y, stride, w.shape[0]).astype(
      w.dtype)


_paired_top_down.defvjp(_paired_top_down_fwd, _paired_top_down_bwd)


def bottom_up(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
  """`Y = W x`: strided convolution of NHWC `x` with HWIO kernel `w` (Eq. 3-4)."""
  if current_formulation() == "cpu":
    return _paired_bottom_up(x, w, stride)
  return xla_bottom_up(x, w, stride)


def top_down(y: jax.Array, w: jax.Array, stride: int, size: Sequence[int]) -> jax.Array:
  """`U = W^T y`: the exact adjoint of `bottom_up(., w, stride)` (Eq. 5).

  Args:
    y: NHWC signal of the upper layer.
    w: the layer's HWIO kernel, the same array `bottom_up` uses (DCW).
    stride: the layer's stride.
    size: `(H, W)` of the lower layer, i.e. of the `x` in `y = W x`.
  """
  if current_formulation() == "cpu":
    return _paired_top_down(y, w, stride, tuple(size))
  return xla_top_down(y, w, stride, tuple(size))
