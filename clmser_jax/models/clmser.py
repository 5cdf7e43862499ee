"""The CLmser family (Sec. 4.1, Fig. 3, Table 1): one module, two dualities as flags.

| dcw | dpn | model    |
|-----|-----|----------|
| yes | yes | CLmser   |
| no  | yes | CLmser-w |
| yes | no  | CLmser-n |
| no  | no  | CAE      |

With `dcw` each layer owns one kernel `W_i`, applied as `W_i` bottom-up and `W_i^T` top-down;
without it the encoder owns `We_i` and the decoder its own `Wd_i` (same shape, used
transposed). `dpn` and the reflection loop live in `reflections.py`. There are no biases: the
paper's equations have none, nor do the authors' layers.

`norm='batch'`, `fusion='post_mean'`, `output_activation='tanh'` and `kernel_init='xavier'`
give the authors' official network (CMACH508/CLmser `model/*.py`): every `Y_i` and `U_i`
(i >= 1) passes its own BatchNorm (`bn_Y_i`, `bn_U_i`, PyTorch semantics, `norm.py`) before
the ReLU, and paired neurons average after the activation. The default is the paper's.

`dtype` is the compute dtype (mixed precision with `jnp.bfloat16`): the input is cast to it
and every signal and convolution runs in it (`ops` casts the kernels at each use), while the
parameters, their gradients, BatchNorm's statistics and the returned output stay float32.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from clmser_jax.models import init as inits
from clmser_jax.models.activations import ACTIVATIONS
from clmser_jax.models.norm import BatchNorm
from clmser_jax.models.reflections import no_norm, reflect


class CLmser(nn.Module):
  """CNN based Lmser. `__call__(x, train)` maps NHWC images to their reconstruction `g(U_0)`;
  `train` selects BatchNorm's batch statistics (and updates the running averages)."""
  channels: Sequence[int]
  strides: Sequence[int]
  kernel_size: int = 3
  dcw: bool = True
  dpn: bool = True
  reflections: int = 1
  activation: str = "relu"
  output_activation: str = "identity"
  kernel_init: str = "auto"  # 'he' | 'contractive' | 'xavier' | 'auto' (contractive iff dpn)
  contraction_gain: float = 0.9
  norm: str = "none"  # 'none' | 'batch'
  fusion: str = "sum"  # 'sum' | 'post_mean', see `reflections.decoder_neuron`
  unroll: bool = False  # unroll the reflection loop (`reflect`); benchmarks only
  dtype: jax.typing.DTypeLike = jnp.float32  # compute dtype; parameters stay float32

  def _kernel_init(self, stride):
    if self.kernel_init == "xavier":
      return inits.xavier
    contract = self.kernel_init == "contractive" or (self.kernel_init == "auto" and self.dpn)
    return inits.contractive(stride, self.contraction_gain) if contract else inits.he

  def _norm(self, train: bool):
    """The `norm` hook of `reflect`: one BatchNorm per signal and layer, or none."""
    if self.norm == "none":
      return no_norm
    return lambda signal, layer, x: BatchNorm(name=f"bn_{signal}_{layer}")(x, train)

  def _kernels(self, prefix, in_channels):
    c_in = [in_channels, *self.channels[:-1]]
    k = self.kernel_size
    return [self.param(f"{prefix}_{i + 1}", self._kernel_init(s), (k, k, ci, co))
            for i, (ci, co, s) in enumerate(zip(c_in, self.channels, self.strides))]

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if self.dcw:
      encoder = decoder = self._kernels("W", x.shape[-1])
    else:
      encoder, decoder = self._kernels("We", x.shape[-1]), self._kernels("Wd", x.shape[-1])
    u0 = reflect(x.astype(self.dtype), encoder, decoder, self.strides,
                 ACTIVATIONS[self.activation], self.dpn, self.reflections, self._norm(train),
                 self.fusion, self.unroll)
    return ACTIVATIONS[self.output_activation](u0.astype(jnp.float32))
