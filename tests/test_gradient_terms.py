"""The use terms of `gradient_terms` sum to the tied gradient, match the untied model's
gradients, and vanish exactly where Eq. 10-15 say they do."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clmser_jax.analysis.gradient_terms import USES, gradient_terms, term_norms, untied_reflect
from clmser_jax.metrics import reconstruction_loss
from clmser_jax.models import VARIANTS
from clmser_jax.models.clmser import CLmser

X = jax.random.uniform(jax.random.key(1), (2, 8, 8, 3))
REFLECTIONS = {"clmser": 2, "clmser-w": 2, "clmser-n": 1, "cae": 1}


def _model(variant):
  dcw, dpn = VARIANTS[variant]
  return CLmser(channels=(4, 6, 8), strides=(1, 2, 2), dcw=dcw, dpn=dpn,
                reflections=REFLECTIONS[variant], activation="sigmoid",
                kernel_init="he")


@functools.cache
def _case(variant):
  model = _model(variant)
  params = model.init(jax.random.key(0), X)["params"]
  return (model, params, *gradient_terms(model, params, X))


def _grad(model, params):
  return jax.grad(lambda p: reconstruction_loss(model.apply({"params": p}, X), X))(params)


def _zero(a):
  return bool(jnp.all(a == 0))


def _close(a, b):
  np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * float(jnp.abs(b).max()))


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_terms_sum_to_the_tied_gradient(variant):
  model, params, loss, terms = _case(variant)
  np.testing.assert_allclose(untied_reflect(X, {u: params for u in USES}, model),
                             model.apply({"params": params}, X), rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(loss, reconstruction_loss(model.apply({"params": params}, X), X))
  for name, g in _grad(model, params).items():
    assert float(jnp.linalg.norm(g)) > 0
    _close(sum(terms[u][name] for u in USES), g)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["clmser", "clmser-n"])
def test_dcw_terms_are_the_gradients_of_the_untied_model(variant):
  """Eq. 13 vs Eq. 10: with `We_k = Wd_k = W_k`, the model without DCW computes the same
  reconstruction, and its `We_k` / `Wd_k` gradients are the encoder-side / decoder-side
  terms of `W_k`."""
  model, params, loss, terms = _case(variant)
  untied = model.clone(dcw=False)
  split = {f"W{s}_{k}": w for name, w in params.items() for s in "ed"
           for k in [name.split("_")[1]]}
  grads = _grad(untied, split)
  for name in params:
    k = name.split("_")[1]
    _close(terms["encoder"][name] + terms["skip"][name], grads[f"We_{k}"])
    _close(terms["decoder"][name] + terms["feedback"][name], grads[f"Wd_{k}"])


@pytest.mark.parametrize("variant", ["clmser-n", "cae"])
def test_no_shortcut_terms_without_dpn(variant):
  _, params, _, terms = _case(variant)
  for name in params:
    assert _zero(terms["skip"][name]) and _zero(terms["feedback"][name])
  assert not _zero(terms["encoder"][next(iter(params))])


@pytest.mark.parametrize("variant", ["clmser-w", "cae"])
def test_without_dcw_each_kernel_gets_only_its_side(variant):
  _, params, _, terms = _case(variant)
  for name in params:
    own, other = ("encoder", "decoder") if name.startswith("We") else ("decoder", "encoder")
    assert not _zero(terms[own][name]) and _zero(terms[other][name])
    if name.startswith("We"):
      assert _zero(terms["feedback"][name])
    else:
      assert _zero(terms["skip"][name])


def test_term_norms_rows():
  _, params, _, terms = _case("clmser-w")
  rows = term_norms(terms)
  assert [(r["layer"], r["param"]) for r in rows] == [
      (k, p) for k in (1, 2, 3) for p in ("Wd", "We")]
  for r in rows:
    name = f"{r['param']}_{r['layer']}"
    assert r["total"] == pytest.approx(float(jnp.linalg.norm(
        sum(terms[u][name] for u in USES))))
    assert r["skip"] == pytest.approx(float(jnp.linalg.norm(terms["skip"][name])))


def test_clmser_has_every_term_where_a_path_exists():
  """Eq. 15: decoder, encoder and skip terms on every layer, except that the top layer's
  `Y_d` is not read across (the top-down pass starts from the bottom-up `H_d`); with r = 2
  the feedback term reaches every layer but the first (`U_0` is never fed back)."""
  _, params, _, terms = _case("clmser")
  for name in params:
    assert not _zero(terms["encoder"][name]) and not _zero(terms["decoder"][name])
  assert not _zero(terms["skip"]["W_1"]) and not _zero(terms["skip"]["W_2"])
  assert _zero(terms["skip"]["W_3"])
  assert _zero(terms["feedback"]["W_1"])
  assert not _zero(terms["feedback"]["W_2"]) and not _zero(terms["feedback"]["W_3"])
