"""What a tied kernel has to serve (DCW, Sec. 4.1): two per-layer measurements of trained
CLmser-family models, to explain when DCW helps and when it costs (`docs/fidelity.md`).

DCW makes the decoder of layer `k` read `W_k^T`, the transpose of the encoder's kernel, on
the same array (`U_{k-1} = W_k^T H_k`).

- `alignment`, for a model without DCW (CLmser-w, CAE): how far the free decoder kernel
  `Wd_k` has moved from the tied solution `Wd_k = We_k`: their cosine and the ratio of their
  norms. A decoder that wants the tied solution ends near cosine 1 and ratio 1.
- `pull`, for a model with DCW (CLmser, CLmser-n): the Eq. 1 gradient of `W_k` split into
  what its encoder uses ask for (the encoder and skip terms of Eq. 13, 15) and what its
  decoder uses ask for (the decoder and feedback terms; `gradient_terms`), their norms and
  their cosine. A negative cosine: the two directions pull the one kernel opposite ways and
  the step follows their sum, a compromise that CLmser-w never has to make.
"""
from __future__ import annotations

import jax.numpy as jnp

from clmser_jax.analysis.gradient_terms import gradient_terms
from clmser_jax.models.clmser import CLmser


def _cosine(a, b) -> float:
  return float(jnp.vdot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b)))


def alignment(params, depth: int) -> list[dict]:
  """Per layer of a model without DCW: `cosine(We_k, Wd_k)` and `|Wd_k| / |We_k|`."""
  rows = []
  for k in range(1, depth + 1):
    encoder, decoder = params[f"We_{k}"], params[f"Wd_{k}"]
    rows.append(dict(layer=k, cosine=_cosine(encoder, decoder),
                     norm_ratio=float(jnp.linalg.norm(decoder) / jnp.linalg.norm(encoder))))
  return rows


def pull(model: CLmser, params, images) -> list[dict]:
  """Per tied kernel `W_k` of a DCW model (no BatchNorm) on reconstructing `images`: the
  norms of its encoder-side and decoder-side gradients and their cosine."""
  _, terms = gradient_terms(model, params, images)
  rows = []
  for k in range(1, len(model.channels) + 1):
    name = f"W_{k}"
    encoder = terms["encoder"][name] + terms["skip"][name]
    decoder = terms["decoder"][name] + terms["feedback"][name]
    rows.append(dict(layer=k, cosine=_cosine(encoder, decoder),
                     encoder_norm=float(jnp.linalg.norm(encoder)),
                     decoder_norm=float(jnp.linalg.norm(decoder))))
  return rows
