"""Perception by reflections (Sec. 4.1, Eq. 3-5): the CLmser forward pass as pure functions.

Neurons `H_i` (i = 1..d) receive a bottom-up signal `Y_i = W_i H_{i-1}` and a top-down signal
`U_i = W_{i+1}^T H_{i+1}`. One *reflection* is a bottom-up pass (Eq. 4: `U` held at its
previous value) followed by a top-down pass (Eq. 5: `Y` held at its previous value). The first
bottom-up pass has no top-down signal yet (Eq. 3, `U = 0`), so `H_i = f(Y_i)`. Later
reflections carry `U` through a `lax.scan`, so compile time does not grow with `r`. The
reconstruction is `U_0 = W_1^T H_1`.

`dpn` (duality in paired neurons) decides whether a neuron sums both signals,
`H_i = f(Y_i + U_i)`, which is the skip link encoder->decoder (top-down pass) and the feedback
link decoder->encoder (bottom-up pass); without it the encoder neuron is `f(Y_i)` and the
decoder neuron `f(U_i)`, an autoencoder. `dcw` lives outside this file: the caller passes the
same kernels as `encoder` and `decoder`, or two sets.

An optional label layer `d+1` on top (`LabelLayer`) makes it the supervised Lmser of the
duality in the supervision paradigm (DSP, Sec. 6, Table 7): `reflect` then also returns the
class logits.

Two hooks reproduce the authors' official code (CMACH508/CLmser `model/*.py`), one pass only:
`norm(signal, layer, x)` normalises each signal `Y_i` / `U_i` before the activation (their
conv -> BatchNorm -> ReLU blocks; the default `no_norm` leaves it alone), and `fusion` picks how
a decoder neuron pairs its two signals (`decoder_neuron`).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from clmser_jax import ops

Activation = Callable[[jax.Array], jax.Array]
Norm = Callable[[str, int, jax.Array], jax.Array]  # (signal 'Y' or 'U', layer i, value)
FUSIONS = ("sum", "post_mean")


def no_norm(signal: str, layer: int, x: jax.Array) -> jax.Array:
  """The paper's neurons: signals enter the activation as they are."""
  del signal, layer
  return x


class LabelLayer(NamedTuple):
  """Layer `d+1` of the supervised Lmser (DSP, Table 7): K class neurons `z`, fully connected
  to the flattened top conv layer `H_d`, with the dualities of every other layer.

  `up` (n_d, K) gives the bottom-up signal, the class logits `Y_{d+1} = V flat(H_d)`; `down`
  the top-down one, `U_d = V^T z` (unflattened). With DCW they are one array. The label is fed
  in at the top as the image is at the bottom: `label` (N, K) one-hot is clamped on `z` in the
  *last* top-down pass, the one that reconstructs. Every other `z` is the network's own belief
  `softmax(Y_{d+1})`, as always at evaluation (`label=None`); so the logits of the last
  bottom-up pass never see the label, in training as in evaluation. The label is a vector at
  the top rather than a plane beside the image: the paper says only that both are fed in.

  `H_d` pairs like any neuron: `f(Y_d + U_d)` with DPN. Without DPN the decoder's top neuron
  is `f(U_d)`, so CLmser-n and CAE reconstruct from `z` alone: their code is the class.
  """
  up: jax.Array
  down: jax.Array
  label: jax.Array | None = None

  def bottom_up(self, h: jax.Array) -> jax.Array:
    """`Y_{d+1} = V flat(H_d)`: the class logits, (N, K)."""
    return h.reshape(h.shape[0], -1) @ self.up

  def neurons(self, logits: jax.Array, last) -> jax.Array:
    """`z`: the clamped label in the last top-down pass (`last`), else `softmax(Y_{d+1})`."""
    z = jax.nn.softmax(logits)
    return z if self.label is None else jnp.where(last, self.label, z)

  def top_down(self, z: jax.Array, shape: Sequence[int]) -> jax.Array:
    """`U_d = V^T z`, shaped like `H_d` (`shape`, NHWC)."""
    return (z @ self.down.T).reshape(shape)


def layer_sizes(size: Sequence[int], kernel_size: int, strides: Sequence[int]):
  """Spatial `(H, W)` of `H_0 = x, H_1, ..., H_d` for an input of spatial `size`."""
  sizes = [tuple(size)]
  for s in strides:
    sizes.append(tuple(ops.output_size(n, kernel_size, s) for n in sizes[-1]))
  return sizes


def bottom_up_pass(x, encoder, strides, u, f: Activation, dpn: bool, norm: Norm = no_norm,
                   y1=None):
  """Eq. 3-4: `Y_i = W_i H_{i-1}`, `H_i = f(Y_i + U_i)` for i = 1..d, bottom to top.

  `u` holds `U_1..U_{d-1}` from the previous top-down pass, or nothing before the first
  one (Eq. 3); the top layer has no top-down input. `y1`, where given, is `Y_1` computed
  already (`W_1 x` after `norm`). Returns `(Y_1..Y_d, H_1..H_d)`, `Y` after `norm`.
  """
  h, ys, hs = x, [], []
  for i, (w, s) in enumerate(zip(encoder, strides)):
    y = y1 if i == 0 and y1 is not None else norm("Y", i + 1, ops.bottom_up(h, w, s))
    h = f(y + u[i]) if dpn and i < len(u) else f(y)
    ys.append(y)
    hs.append(h)
  return ys, hs


def decoder_neuron(layer: int, y, h, u, f: Activation, dpn: bool, fusion: str):
  """`H_i` of a top-down pass from `Y_i` (with `h = f(Y_i)` its bottom-up value) and `U_i`.

  Without DPN, `f(U_i)`. With DPN, `fusion='sum'` is the paper's paired neuron `f(Y_i + U_i)`
  (Eq. 5); `fusion='post_mean'` is the official code's `0.5 f(U_i) + 0.5 f(Y_i)`, averaged
  after the activation, and only for `i >= 2`: their decoder hands `f(U_1)` to the output
  block unpaired (`UpBlocks[i]` takes `0.5 x + 0.5 features[i + 1]`; `OutBlock` takes `x`).
  """
  if not dpn:
    return f(u)
  if fusion == "sum":
    return f(y + u)
  return 0.5 * f(u) + 0.5 * h if layer >= 2 else f(u)


def top_down_pass(ys, hs, decoder, strides, sizes, f: Activation, dpn: bool,
                  norm: Norm = no_norm, fusion: str = "sum", u_top=None):
  """Eq. 5: `U_i = W_{i+1}^T H_{i+1}`, `H_i = f(Y_i + U_i)` for i = d-1..2, then `U_1`; top to
  bottom.

  Starts from the top neuron `H_d` of the bottom-up pass, or, given `u_top` (`U_d` from a
  label layer above, DSP), from `H_d` paired with it like any other neuron (i = d..2).
  Returns `U_1..U_{d-1}[, U_d]`, the new top-down signals (after `norm`). The pass stops at
  `U_1`: its bottom neuron `H_1` is `bottom_neuron`'s to compute, where it is needed.
  """
  h, us = hs[-1], []
  top = len(decoder) if u_top is not None else len(decoder) - 1
  for i in range(top, 0, -1):
    u = u_top if i == len(decoder) else ops.top_down(h, decoder[i], strides[i], sizes[i])
    us.append(norm("U", i, u))
    if i > 1:
      h = decoder_neuron(i, ys[i - 1], hs[i - 1], us[-1], f, dpn, fusion)
  return us[::-1]


def bottom_neuron(y1, us, f: Activation, dpn: bool, fusion: str = "sum"):
  """`H_1` of a top-down pass (Eq. 5 at i = 1): `Y_1` paired with `U_1 = us[0]`, or `f(Y_1)`
  where no signal comes down (d = 1 without a label layer).

  With the input clamped, `Y_1 = W_1 x` is the same in every pass, so this is also `H_1` of
  the next bottom-up pass (Eq. 4 at i = 1 pairs the same `Y_1` and `U_1`): `reflect` computes
  it once per reflection, in the bottom-up pass, and the last top-down pass's once, for the
  reconstruction.
  """
  return decoder_neuron(1, y1, None, us[0], f, dpn, fusion) if us else f(y1)


def reconstruction(h1, decoder, strides, sizes):
  """`U_0 = W_1^T H_1` (Eq. 5 at i = 0): the top-down signal to the input layer, before the
  output activation (never normalised)."""
  return ops.top_down(h1, decoder[0], strides[0], sizes[0])


def reflect(x, encoder, decoder, strides, *, f: Activation, dpn: bool, reflections: int,
            norm: Norm = no_norm, fusion: str = "sum", unroll: bool = False,
            top: LabelLayer | None = None, remat: bool = False):
  """Eq. 3-5: the first bottom-up pass (Eq. 3, `U = 0`) and top-down pass, then
  `reflections - 1` further reflections (Eq. 4 then Eq. 5) as one `lax.scan`.

  Returns `U_0`, the top-down signal to the input layer after the last reflection; with a
  label layer `top` (DSP), `(U_0, Y_{d+1})`: also the logits of the last bottom-up pass. The
  loop carries only `U` (and the logits): each reflection computes `H_1` once, in its
  bottom-up pass, which is also the previous top-down pass's last neuron (`bottom_neuron`).
  The last reflection's `H_1` and `U_0 = W_1^T H_1`, the only ones read, are computed once,
  after the loop. A `norm` that holds state (BatchNorm) and `fusion='post_mean'` are for one
  pass (config validation). `unroll` unrolls the scan (the same numbers; the benchmarks'
  reference for the loop).

  `remat` (r > 1) trades time for memory in training: all r reflections run in the scan, from
  `U = 0` (`f(Y_i + 0) = f(Y_i)`, the same numbers), and each keeps only its carry for the
  backward pass, which recomputes the reflection's activations (`jax.checkpoint`). The train
  step's memory then grows by one carry per reflection, not by all its activations.
  """
  sizes = layer_sizes(x.shape[1:3], encoder[0].shape[0], strides)
  # `H_0 = x` is clamped: `Y_1 = W_1 x` is the same in every reflection, computed once (and
  # its kernel gradient taken once, of the summed cotangents).
  y1 = norm("Y", 1, ops.bottom_up(x, encoder[0], strides[0]))

  def one_reflection(u, last):
    ys, hs = bottom_up_pass(x, encoder, strides, u, f, dpn, norm, y1)
    if top is None:
      return top_down_pass(ys, hs, decoder, strides, sizes, f, dpn, norm, fusion), None
    logits = top.bottom_up(hs[-1])
    u_top = top.top_down(top.neurons(logits, last), hs[-1].shape)
    return top_down_pass(ys, hs, decoder, strides, sizes, f, dpn, norm, fusion, u_top), logits

  def body(carry, t):
    return one_reflection(carry[0], t == reflections - 1), None

  if remat and reflections > 1:
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                         jax.eval_shape(one_reflection, [], False))
    state, _ = jax.lax.scan(jax.checkpoint(body, prevent_cse=False), zeros,
                            jnp.arange(reflections), unroll=unroll)
  else:
    state = one_reflection([], reflections == 1)
    if reflections > 1:
      state, _ = jax.lax.scan(body, state, jnp.arange(1, reflections), unroll=unroll)
  us, logits = state
  u0 = reconstruction(bottom_neuron(y1, us, f, dpn, fusion), decoder, strides, sizes)
  return u0 if top is None else (u0, logits)
