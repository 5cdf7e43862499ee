"""The classic Lmser: Eq. 2 against the exact gradient, and learning on the digits."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clmser_jax.models import lmser_fc as lmser

X = jax.random.uniform(jax.random.key(1), (16, 12))


def _params(sizes):
  return lmser.init_params(jax.random.key(0), sizes)


@pytest.mark.slow
@pytest.mark.parametrize("relaxations", [0, 3])
def test_eq2_is_the_exact_gradient_with_one_layer(relaxations):
  params = _params((12, 5))
  for rule, exact in zip(lmser.eq2_update(params, X, relaxations),
                         lmser.exact_update(params, X, relaxations)):
    np.testing.assert_allclose(rule, exact, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_eq2_for_w1_is_the_gradient_with_u1_held():
  """In a deep Lmser the W_1 update is exact once the top-down `u_1` is held fixed."""
  params, r = _params((12, 7, 4)), 4
  u1 = jax.lax.stop_gradient(lmser.perceive(params, X, r)[1][0])
  held = lambda w: 0.5 * jnp.mean(jnp.sum(jnp.square(X - lmser.s(X @ w.T + u1) @ w), -1))
  np.testing.assert_allclose(lmser.eq2_update(params, X, r)[0],
                             -jax.grad(held)(params[0]), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_eq2_closed_form_is_its_first_line():
  """Eq. 2, second line (the code) == first line: `sum_i eps_ik dz_ik/dW_k +
  sum_i eps_i(k-1) dz_i(k-1)/dW_k` with each z depending on W_k only directly."""
  params, r = _params((12, 7, 4, 3)), 2
  ys, us = lmser.perceive(params, X, r)
  zs = [X, *lmser.neurons(ys, us)]
  eps = [X - zs[1] @ params[0]]
  for w in params:
    eps.append(eps[-1] @ w.T)
  for k in range(1, len(params) + 1):
    def direct(w):  # z_k through y_k = W_k z_{k-1}, z_{k-1} through u_{k-1} = W_k^T z_k,
      dw = w - params[k - 1]  # linearised at the perceived states
      z_k = lmser.s(ys[k - 1] + us[k - 1] + zs[k - 1] @ dw.T)
      if k == 1:  # the input layer is linear: its top-down signal is x_hat = W_1^T z_1
        return z_k, zs[1] @ w
      return z_k, lmser.s(ys[k - 2] + us[k - 2] + zs[k] @ dw)
    _, vjp = jax.vjp(direct, params[k - 1])
    first_line = vjp((eps[k], eps[k - 1]))[0] / X.shape[0]
    np.testing.assert_allclose(lmser.eq2_update(params, X, r)[k - 1], first_line,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_eq2_is_not_the_gradient_of_deep_layers():
  params, r = _params((12, 7, 4)), 4
  rule, exact = lmser.eq2_update(params, X, r)[1], lmser.exact_update(params, X, r)[1]
  assert float(jnp.linalg.norm(rule - exact)) > 0.1 * float(jnp.linalg.norm(exact))


@pytest.mark.slow
@pytest.mark.parametrize("update", [lmser.eq2_update, lmser.exact_update])
def test_both_rules_learn_the_digits(update):
  from sklearn.datasets import load_digits
  x = jnp.asarray(load_digits().data[:200] / 16.0, jnp.float32)
  params = _params((64, 16, 8))
  step = jax.jit(lambda p: jax.tree.map(lambda w, d: w + 0.1 * d, p, update(p, x, 2)))
  before = lmser.loss(params, x, 2)
  for _ in range(100):
    params = step(params)
  assert float(lmser.loss(params, x, 2)) < 0.5 * float(before)
