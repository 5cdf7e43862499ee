"""U-Net baseline of Table 4: CLmser's encoder, separate decoder kernels, and the paired
signals *concatenated then convolved* (Sec. 4.1: "in U-Net, the bottom-up signal and top-down
signal are concatenated first and then the neuron values are calculated via a convolution")
instead of DPN's sum. One pass, no feedback. `dtype` is the compute dtype, as in `CLmser`."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from clmser_jax import ops
from clmser_jax.models import init as inits
from clmser_jax.models.activations import ACTIVATIONS
from clmser_jax.models.reflections import bottom_up_pass, layer_sizes


class UNet(nn.Module):
  """`H^d_i = f(F_i * [U_i, H^e_i])` with `U_i = Wd_{i+1}^T H^d_{i+1}`; output `g(U_0)`."""
  channels: Sequence[int]
  strides: Sequence[int]
  kernel_size: int = 3
  activation: str = "relu"
  output_activation: str = "identity"
  dtype: jax.typing.DTypeLike = jnp.float32  # compute dtype; parameters stay float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train  # no BatchNorm: the same in training and evaluation; called like CLmser
    f, k = ACTIVATIONS[self.activation], self.kernel_size
    c_in = [x.shape[-1], *self.channels[:-1]]
    shapes = [(k, k, ci, co) for ci, co in zip(c_in, self.channels)]
    encoder = [self.param(f"We_{i + 1}", inits.he, s) for i, s in enumerate(shapes)]
    decoder = [self.param(f"Wd_{i + 1}", inits.he, s) for i, s in enumerate(shapes)]
    sizes = layer_sizes(x.shape[1:3], k, self.strides)
    _, skips = bottom_up_pass(x.astype(self.dtype), encoder, self.strides, [], f, dpn=False)
    h = skips[-1]
    for i in reversed(range(1, len(encoder))):
      u = ops.top_down(h, decoder[i], self.strides[i], sizes[i])
      fuse = self.param(f"F_{i}", inits.he, (k, k, 2 * u.shape[-1], u.shape[-1]))
      h = f(ops.bottom_up(jnp.concatenate([u, skips[i - 1]], -1), fuse, 1))
    u0 = ops.top_down(h, decoder[0], self.strides[0], sizes[0])
    return ACTIVATIONS[self.output_activation](u0.astype(jnp.float32))
