"""The default initialisation (`kernel_init='auto'`, `models/init.py`): the authors' Xavier
kernels at one reflection, contractive ones where paired neurons iterate, and what that
changes for the gradient of a tied network's upper layers (Eq. 13)."""

import math

import jax
import jax.numpy as jnp
import pytest

from clmser_jax.models import CLmser
from clmser_jax.models.init import operator_norm

CHANNELS = (16, 32, 64, 128, 256)  # Table 2, STL10
STRIDES = (1, 2, 2, 2, 2)
X = jax.random.uniform(jax.random.key(0), (4, 32, 32, 3))


def _kernels(**fields):
  """The encoder kernels `W_i` (or `We_i`) of a default CLmser-family model, in layer order."""
  params = CLmser(channels=CHANNELS, strides=STRIDES, **fields).init(jax.random.key(1), X)
  params = params["params"]
  prefix = "W" if "W_1" in params else "We"
  return [params[f"{prefix}_{i + 1}"] for i in range(len(CHANNELS))]


@pytest.mark.parametrize("dcw,dpn", [(True, True), (False, True), (True, False),
                                     (False, False)])
def test_auto_draws_xavier_kernels_at_one_reflection(dcw, dpn):
  """Xavier-uniform on `U(-b, b)`, `b = sqrt(6 / (fan_in + fan_out))`, fans `9 c_in`, `9 c_out`:
  every weight inside the bound, the standard deviation `b / sqrt(3)`."""
  for w in _kernels(dcw=dcw, dpn=dpn):
    k, _, c_in, c_out = w.shape
    bound = math.sqrt(6 / (k * k * (c_in + c_out)))
    assert float(jnp.max(jnp.abs(w))) <= bound
    assert float(jnp.std(w)) == pytest.approx(bound / math.sqrt(3), rel=0.1)


@pytest.mark.parametrize("dcw", [True, False])
def test_auto_draws_contractive_kernels_when_paired_neurons_iterate(dcw):
  """With DPN and r > 1 each kernel has operator norm `contraction_gain / 2`, as the
  convergence argument of `models/init.py` needs; Xavier's are above 1."""
  gain = 0.9
  for w, stride in zip(_kernels(dcw=dcw, dpn=True, reflections=2, contraction_gain=gain),
                       STRIDES):
    assert float(operator_norm(w, stride)) == pytest.approx(gain / 2, rel=0.01)
  for w, stride in zip(_kernels(dcw=dcw, dpn=True), STRIDES):
    assert float(operator_norm(w, stride)) > 1


def _top_over_bottom(kernel_init: str, seed: int) -> float:
  """`||dJ/dW_5|| / ||dJ/dW_1||` of CLmser's Eq. 1 loss at initialisation."""
  model = CLmser(channels=CHANNELS, strides=STRIDES, kernel_init=kernel_init)
  params = model.init(jax.random.key(seed), X)["params"]
  grads = jax.grad(lambda p: jnp.mean((model.apply({"params": p}, X) - X) ** 2))(params)
  return float(jnp.linalg.norm(grads["W_5"]) / jnp.linalg.norm(grads["W_1"]))


@pytest.mark.parametrize("seed", [1, 2])
def test_the_default_lets_the_top_of_a_tied_network_learn_from_the_start(seed):
  """What the default changes: both the signal reaching `W_5` and the error returning to it
  pass every layer below (Eq. 13), so contractive kernels (norm 0.45 each) leave the top
  kernel's gradient near 1e-8 of the bottom one's; Xavier kernels leave it over 1,000 times
  larger."""
  assert _top_over_bottom("auto", seed) > 1e3 * _top_over_bottom("contractive", seed)
