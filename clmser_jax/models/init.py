"""Kernel initialisers: Xavier, the authors' choice and the default (`resolve`); contractive
where paired neurons iterate; He, the fair comparison of the gradient-flow study; LeCun for
the dense label layer of DSP.

With DPN the perception phase is the fixed-point iteration `H = f(A H + B x)` whose coupling
`A` holds `W_i` (bottom-up) and `W_{i+1}^T` (top-down) around every neuron layer (Sec. 3:
the Lmser dynamics converge to an equilibrium [24]). He-scaled kernels have operator norms of
2.2-4.6, so every reflection multiplies activations by ~10-25: r = 8 gives outputs of 1e9 and
r = 16 overflows. `contractive` draws He kernels and rescales each to operator norm
`gain / 2`. A neuron update is then Lipschitz in its two neighbours with constants summing to
`gain < 1` (ReLU and sigmoid are 1-Lipschitz; power iteration estimates the norm from below,
within 1% here, which the margin `1 - gain` absorbs), so each bottom-up and top-down sweep is a
contraction in the max-over-layers norm: the reflections converge to the unique equilibrium and
stay bounded for every r (tests check r = 8 and r = 32).

Xavier kernels (operator norms 1.4-1.8 on Table 2's STL10 network) are not contractive, so
`auto` keeps them for one reflection only, the setting of all the paper's runs (Table 3): the
perception is a single bottom-up and top-down sweep, no iteration, and contractive kernels
only shrink the signal that reaches the upper layers and the error that returns to them
(Eq. 13: both pass every layer below): the top kernel of a tied network starts with a
gradient eight orders below the bottom one's (`docs/fidelity.md`). With paired neurons and
`r > 1` it picks contractive.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from clmser_jax import ops

_POWER_ITERATIONS = 100
_POWER_SIZE = 32  # operator norms of 3x3 convs settle well below 32x32 inputs


def resolve(kernel_init: str, dpn: bool, reflections: int) -> str:
  """The initialiser `kernel_init` names; `auto` is Xavier, or contractive when paired
  neurons iterate (DPN with `reflections > 1`, see the module docstring)."""
  if kernel_init != "auto":
    return kernel_init
  return "contractive" if dpn and reflections > 1 else "xavier"


def he(key, shape, dtype=jnp.float32):
  """He-normal on the bottom-up fan-in `k * k * c_in` (HWIO kernel)."""
  return jax.nn.initializers.he_normal(in_axis=(0, 1, 2), out_axis=3)(key, shape, dtype)


def xavier(key, shape, dtype=jnp.float32):
  """Xavier-uniform, the official code's init (`nn.init.xavier_uniform_` on OIHW): bound
  `sqrt(6 / (fan_in + fan_out))`, fans `k * k * c_in` and `k * k * c_out` as in HWIO."""
  return jax.nn.initializers.glorot_uniform(in_axis=-2, out_axis=-1)(key, shape, dtype)


def dense(key, shape, dtype=jnp.float32):
  """LeCun-normal on the fan-in `shape[0]` of a dense matrix (the label layer `V`, n_d x K).
  Its feedback `V^T z` stays bounded for any number of reflections: `z` lies in the simplex."""
  return jax.nn.initializers.lecun_normal()(key, shape, dtype)


def operator_norm(w: jax.Array, stride: int, size: int = _POWER_SIZE) -> jax.Array:
  """Largest singular value of `x -> W x` on `size x size` inputs, by power iteration on
  `W^T W` (the adjoint pair of `ops` makes this exact up to convergence)."""
  v = jnp.ones((1, size, size, w.shape[2]), w.dtype)

  def step(_, v):
    v = ops.top_down(ops.bottom_up(v, w, stride), w, stride, (size, size))
    return v / jnp.linalg.norm(v)

  v = jax.lax.fori_loop(0, _POWER_ITERATIONS, step, v / jnp.linalg.norm(v))
  return jnp.linalg.norm(ops.bottom_up(v, w, stride))


def contractive(stride: int, gain: float):
  """He-normal kernel rescaled to operator norm `gain / 2` (see module docstring)."""
  def init(key, shape, dtype=jnp.float32):
    w = he(key, shape, dtype)
    return w * (gain / 2) / operator_norm(w, stride)
  return init
