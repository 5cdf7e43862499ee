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

`num_classes > 0` adds the label layer `d+1` of the supervised Lmser (DSP, Table 7,
`reflections.LabelLayer`): one matrix `V` (n_d x K) with DCW, `Ve` and `Vd` without; the model
then takes the `label` to clamp while training and returns `(reconstruction, logits)`. `CNN`
is the plain classifier of Table 7: the same encoder and the label layer's bottom-up half.

`norm='batch'`, `fusion='post_mean'`, `output_activation='tanh'` and `kernel_init='xavier'`
give the authors' official network (CMACH508/CLmser `model/*.py`): every `Y_i` and `U_i`
(i >= 1) passes its own BatchNorm (`bn_Y_i`, `bn_U_i`, PyTorch semantics, `norm.py`) before
the ReLU, and paired neurons average after the activation. The default is the paper's.

`dtype` is the compute dtype (mixed precision with `jnp.bfloat16`): the input is cast to it
and every signal and convolution runs in it (`ops` casts the kernels at each use), while the
parameters, their gradients, BatchNorm's statistics and the returned output stay float32.
"""
from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from clmser_jax.models import init as inits
from clmser_jax.models.activations import ACTIVATIONS
from clmser_jax.models.norm import BatchNorm
from clmser_jax.models.reflections import (LabelLayer, bottom_up_pass, layer_sizes, no_norm,
                                           reflect)


class CLmser(nn.Module):
  """CNN based Lmser. `__call__(x, train)` maps NHWC images to their reconstruction `g(U_0)`;
  `train` selects BatchNorm's batch statistics (and updates the running averages). With
  `num_classes`, `__call__(x, train, label)` returns `(g(U_0), Y_{d+1})` and clamps the integer
  `label` (N,) on the label layer when given (training only: evaluation passes none)."""
  channels: Sequence[int]
  strides: Sequence[int]
  kernel_size: int = 3
  dcw: bool = True
  dpn: bool = True
  reflections: int = 1
  activation: str = "relu"
  output_activation: str = "identity"
  kernel_init: str = "auto"  # 'he' | 'contractive' | 'xavier' | 'auto' (`inits.resolve`)
  contraction_gain: float = 0.9
  norm: str = "none"  # 'none' | 'batch'
  fusion: str = "sum"  # 'sum' | 'post_mean', see `reflections.decoder_neuron`
  unroll: bool = False  # unroll the reflection loop (`reflect`); benchmarks only
  remat: bool = False  # recompute each reflection in the backward pass (`reflect`)
  num_classes: int = 0  # > 0: the label layer of DSP (Table 7)
  dtype: jax.typing.DTypeLike = jnp.float32  # compute dtype; parameters stay float32

  def _kernel_init(self, stride):
    name = inits.resolve(self.kernel_init, self.dpn, self.reflections)
    if name == "contractive":
      return inits.contractive(stride, self.contraction_gain)
    return {"xavier": inits.xavier, "he": inits.he}[name]

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

  def _label_matrix(self, name, x):
    """A label-layer matrix (n_d, K) over the flattened `H_d` of input `x`, LeCun-normal:
    the logits start at unit scale."""
    top = layer_sizes(x.shape[1:3], self.kernel_size, self.strides)[-1]
    return self.param(name, inits.dense, (math.prod(top) * self.channels[-1], self.num_classes))

  def _label_layer(self, x, label):
    """The label layer, its matrices cast to the compute dtype as the kernels are."""
    if self.dcw:
      up = down = self._label_matrix("V", x)
    else:
      up, down = self._label_matrix("Ve", x), self._label_matrix("Vd", x)
    clamp = None if label is None else jax.nn.one_hot(label, self.num_classes, dtype=self.dtype)
    return LabelLayer(up.astype(self.dtype), down.astype(self.dtype), clamp)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, label: jax.Array | None = None):
    if self.dcw:
      encoder = decoder = self._kernels("W", x.shape[-1])
    else:
      encoder, decoder = self._kernels("We", x.shape[-1]), self._kernels("Wd", x.shape[-1])
    top = self._label_layer(x, label) if self.num_classes else None
    out = reflect(x.astype(self.dtype), encoder, decoder, self.strides,
                  f=ACTIVATIONS[self.activation], dpn=self.dpn, reflections=self.reflections,
                  norm=self._norm(train), fusion=self.fusion, unroll=self.unroll, top=top,
                  remat=self.remat)
    if top is None:
      return self._output(out)
    return self._output(out[0]), out[1].astype(jnp.float32)

  def _output(self, u0):
    """`g(U_0)` in float32, whatever the compute dtype."""
    return ACTIVATIONS[self.output_activation](u0.astype(jnp.float32))


class CNN(CLmser):
  """The plain CNN of Table 7: CLmser's encoder (`We_i`, initialised as CLmser-n's) and
  the bottom-up half of the label layer (`Ve`), one feed-forward pass (Eq. 3). No decoder, so
  no reconstruction: returns `(None, logits)`. Config validation builds it with `dcw=False`,
  `dpn=False`, one reflection."""

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, label: jax.Array | None = None):
    del label  # a feed-forward classifier never sees the label
    _, hs = bottom_up_pass(x.astype(self.dtype), self._kernels("We", x.shape[-1]),
                           self.strides, [], ACTIVATIONS[self.activation], False,
                           self._norm(train))
    up = self._label_matrix("Ve", x).astype(self.dtype)
    return None, LabelLayer(up, None).bottom_up(hs[-1]).astype(jnp.float32)
