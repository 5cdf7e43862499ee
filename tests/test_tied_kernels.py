"""`tied_kernels`: the alignment of a free decoder by hand, and the pull on a tied kernel
against the gradients of the same network with its kernel untied."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clmser_jax.analysis import tied_kernels
from clmser_jax.metrics import reconstruction_loss
from clmser_jax.models.clmser import CLmser

X = jax.random.uniform(jax.random.key(1), (2, 8, 8, 3))


def test_alignment_by_hand():
  """`Wd_1 = 2 We_1`: cosine 1, ratio 2; `Wd_2` orthogonal to `We_2` with norm 5 against 1:
  cosine 0, ratio 5; `Wd_3 = -We_3`: cosine -1, ratio 1."""
  e1 = jnp.zeros((3, 3, 2, 2)).at[1, 1, 0, 0].set(1.0).at[0, 2, 1, 0].set(2.0)
  e2 = jnp.zeros((3, 3, 2, 2)).at[0, 0, 0, 1].set(1.0)
  d2 = jnp.zeros((3, 3, 2, 2)).at[2, 2, 1, 1].set(3.0).at[0, 1, 0, 0].set(4.0)
  params = {"We_1": e1, "Wd_1": 2 * e1, "We_2": e2, "Wd_2": d2, "We_3": e1, "Wd_3": -e1}
  rows = tied_kernels.alignment(params, 3)
  assert [r["layer"] for r in rows] == [1, 2, 3]
  assert [r["cosine"] for r in rows] == pytest.approx([1.0, 0.0, -1.0])
  assert [r["norm_ratio"] for r in rows] == pytest.approx([2.0, 5.0, 1.0])


def test_pull_is_what_the_untied_network_asks_of_each_copy():
  """CLmser at `W_k` computes what CLmser-w computes at `We_k = Wd_k = W_k` (Eq. 13 vs 10),
  so the encoder and decoder sides of the tied gradient are the untied network's gradients
  of `We_k` and `Wd_k`: two reflections, so the feedback term counts too."""
  common = dict(channels=(4, 6, 8), strides=(1, 2, 2), dpn=True, reflections=2,
                activation="relu", kernel_init="he")
  tied, untied = CLmser(dcw=True, **common), CLmser(dcw=False, **common)
  params = tied.init(jax.random.key(0), X)["params"]
  copies = {f"W{side}_{k}": params[f"W_{k}"] for side in "ed" for k in (1, 2, 3)}
  grads = jax.grad(lambda p: reconstruction_loss(untied.apply({"params": p}, X), X))(copies)
  rows = tied_kernels.pull(tied, params, X)
  for row in rows:
    encoder, decoder = grads[f"We_{row['layer']}"], grads[f"Wd_{row['layer']}"]
    cosine = jnp.vdot(encoder, decoder) / (jnp.linalg.norm(encoder) * jnp.linalg.norm(decoder))
    np.testing.assert_allclose(
        [row["encoder_norm"], row["decoder_norm"], row["cosine"]],
        [jnp.linalg.norm(encoder), jnp.linalg.norm(decoder), cosine], rtol=1e-4)
  assert len(rows) == 3 and min(r["encoder_norm"] for r in rows) > 0
