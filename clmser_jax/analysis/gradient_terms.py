"""The Eq. 1 gradient of a CLmser-family model split exactly into the paper's terms (Eq. 10,
13, 15).

A kernel `W_k` enters the perception of Eq. 3-5 through up to four *uses*. By the chain rule
the tied gradient is the sum of the partial derivatives through each use, so giving every use
its own copy of the parameters and differentiating each copy splits it exactly:

| use      | where the kernel acts                               | paper term               |
|----------|-----------------------------------------------------|--------------------------|
| encoder  | `Y_k = W_k H_{k-1}` read by the bottom-up chain      | Eq. 10 (encoder); the    |
|          | `H_k = f(Y_k + U_k)`                                 | `du_k/dW_k` of Eq. 13, 15 |
| skip     | the same `Y_k` read by the top-down fusion (DPN)     | `dy_k/dW_k` of Eq. 14-15 |
| decoder  | `U_{k-1} = W_k^T H_k` read by the top-down chain,    | Eq. 10 (decoder); first  |
|          | or the output `U_0`                                  | term of Eq. 13, 15       |
| feedback | the same `U_{k-1}` read by the next bottom-up pass   | beyond the paper's one   |
|          | (DPN, r > 1)                                         | reflection               |

A term holds every path that starts with its use, whatever the path crosses later (the
`du_k/dW_k` factor of Eq. 13 and 15 likewise runs up the encoder and down the decoder).
With DCW the four terms all land on `W_k`. Without DCW, `We_k` gets the encoder and skip
terms and `Wd_k` the decoder and feedback terms; the other two are zero because the
perception never reads those copies, and without DPN the skip and feedback terms are zero
because `bottom_up_pass` and `top_down_pass` never read `Y` and `U` across.
"""
from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp

from clmser_jax import ops
from clmser_jax.metrics import reconstruction_loss
from clmser_jax.models.activations import ACTIVATIONS
from clmser_jax.models.clmser import CLmser
from clmser_jax.models.reflections import (bottom_neuron, bottom_up_pass, layer_sizes,
                                           reconstruction, top_down_pass)

USES = ("encoder", "skip", "decoder", "feedback")
Params = Mapping[str, jax.Array]


def kernels(model: CLmser, params: Params, side: str) -> list[jax.Array]:
  """`W_1..W_d` (DCW) or the encoder `We_k` (`side='e'`) / decoder `Wd_k` (`side='d'`)."""
  prefix = "W" if model.dcw else f"W{side}"
  return [params[f"{prefix}_{k}"] for k in range(1, len(model.channels) + 1)]


def untied_reflect(x: jax.Array, uses: Mapping[str, Params], model: CLmser) -> jax.Array:
  """Eq. 3-5 like `reflections.reflect`, each use of a kernel read from its own copy.

  `uses` maps every name of `USES` to a parameter dict; with four equal dicts this is the
  model's own forward pass. Returns `g(U_0)` after `model.reflections` reflections.
  """
  f = ACTIVATIONS[model.activation]
  strides = model.strides
  encoder, skip = kernels(model, uses["encoder"], "e"), kernels(model, uses["skip"], "e")
  decoder, feedback = kernels(model, uses["decoder"], "d"), kernels(model, uses["feedback"], "d")
  sizes = layer_sizes(x.shape[1:3], model.kernel_size, strides)

  def one_reflection(carry, _):
    ys, hs = bottom_up_pass(x, encoder, strides, carry[0], f, model.dpn)
    ys_skip = [ops.bottom_up(h, w, s) for h, w, s in zip([x, *hs[:-1]], skip, strides)]
    us = top_down_pass(ys_skip, hs, decoder, strides, sizes, f, model.dpn)
    h1 = bottom_neuron(ys_skip[0], us, f, model.dpn)
    # Decoder neurons H_2..H_d as the top-down pass made them, to re-emit U_1..U_{d-1}.
    fused = [f(y + u) if model.dpn else f(u) for y, u in zip(ys_skip[1:], us[1:])]
    us_feedback = [ops.top_down(h, w, s, n) for h, w, s, n in
                   zip([*fused, hs[-1]], feedback[1:], strides[1:], sizes[1:])]
    return (us_feedback, h1), None

  u = [jnp.zeros((x.shape[0], *n, c), x.dtype) for n, c in zip(sizes[1:], model.channels[:-1])]
  h1 = jnp.zeros(x.shape[:3] + (model.channels[0],), x.dtype)
  (_, h1), _ = jax.lax.scan(one_reflection, (u, h1), length=model.reflections)
  return ACTIVATIONS[model.output_activation](reconstruction(h1, decoder, strides, sizes))


def gradient_terms(model: CLmser, params: Params, x: jax.Array):
  """`(J, {use: dJ/d(copy of params read by that use)})`: Eq. 1 and its split; the four
  terms sum to `dJ/dparams`."""
  loss = lambda uses: reconstruction_loss(untied_reflect(x, uses, model), x)
  return jax.value_and_grad(loss)({use: params for use in USES})


def term_norms(terms: Mapping[str, Params]) -> list[dict]:
  """One row per kernel: its layer, name, the norm of each use term and of their sum."""
  rows = []
  for name in sorted(terms[USES[0]], key=lambda n: (int(n.split("_")[1]), n)):
    row = {"layer": int(name.split("_")[1]), "param": name.split("_")[0]}
    row.update({use: float(jnp.linalg.norm(terms[use][name])) for use in USES})
    row["total"] = float(jnp.linalg.norm(sum(terms[use][name] for use in USES)))
    rows.append(row)
  return rows
