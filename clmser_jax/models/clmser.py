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
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from clmser_jax.models import init as inits
from clmser_jax.models.activations import ACTIVATIONS
from clmser_jax.models.reflections import reflect


class CLmser(nn.Module):
  """CNN based Lmser. `__call__(x)` maps NHWC images to their reconstruction `g(U_0)`."""
  channels: Sequence[int]
  strides: Sequence[int]
  kernel_size: int = 3
  dcw: bool = True
  dpn: bool = True
  reflections: int = 1
  activation: str = "relu"
  output_activation: str = "identity"
  kernel_init: str = "auto"  # 'he' | 'contractive' | 'auto' (contractive iff dpn)
  contraction_gain: float = 0.9

  def _kernel_init(self, stride):
    contract = self.kernel_init == "contractive" or (self.kernel_init == "auto" and self.dpn)
    return inits.contractive(stride, self.contraction_gain) if contract else inits.he

  def _kernels(self, prefix, in_channels):
    c_in = [in_channels, *self.channels[:-1]]
    k = self.kernel_size
    return [self.param(f"{prefix}_{i + 1}", self._kernel_init(s), (k, k, ci, co))
            for i, (ci, co, s) in enumerate(zip(c_in, self.channels, self.strides))]

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.dcw:
      encoder = decoder = self._kernels("W", x.shape[-1])
    else:
      encoder, decoder = self._kernels("We", x.shape[-1]), self._kernels("Wd", x.shape[-1])
    u0 = reflect(x, encoder, decoder, self.strides, ACTIVATIONS[self.activation],
                 self.dpn, self.reflections)
    return ACTIVATIONS[self.output_activation](u0)
