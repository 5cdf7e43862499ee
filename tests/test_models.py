"""Shapes and parameter counts of the model family (Table 1) and the U-Net baseline."""
import jax
import jax.numpy as jnp
import pytest

from clmser_jax.config import model_config
from clmser_jax.models import VARIANTS, build_model

CHANNELS, STRIDES = (4, 8, 16), (1, 2, 2)


def _params(name):
  cfg = model_config(name)
  cfg.depth, cfg.channels, cfg.strides = 3, CHANNELS, STRIDES
  model = build_model(cfg)
  x = jnp.zeros((1, 16, 16, 3))
  return model, model.init(jax.random.key(0), x)["params"]


def _kernel_params():
  """Entries of one kernel set by hand: sum over layers of 3 * 3 * c_in * c_out."""
  c_in = (3,) + CHANNELS[:-1]
  return sum(9 * a * b for a, b in zip(c_in, CHANNELS))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_kernel_sets(name):
  dcw, _ = VARIANTS[name]
  _, params = _params(name)
  count = sum(p.size for p in jax.tree.leaves(params))
  if dcw:  # one kernel per layer, shared by encoder and decoder
    assert sorted(params) == ["W_1", "W_2", "W_3"]
    assert count == _kernel_params()
  else:
    assert sorted(params) == ["Wd_1", "Wd_2", "Wd_3", "We_1", "We_2", "We_3"]
    assert count == 2 * _kernel_params()


@pytest.mark.slow
def test_unet_adds_fusion_kernels():
  _, params = _params("unet")
  fusion = sum(9 * 2 * c * c for c in CHANNELS[:-1])
  assert sum(p.size for p in jax.tree.leaves(params)) == 2 * _kernel_params() + fusion


@pytest.mark.slow
@pytest.mark.parametrize("name", [*VARIANTS, "unet"])
@pytest.mark.parametrize("size", [(16, 16), (13, 18)])
def test_reconstruction_has_input_shape(name, size):
  model, params = _params(name)
  x = jax.random.uniform(jax.random.key(1), (2, *size, 3))
  assert model.apply({"params": params}, x).shape == x.shape


@pytest.mark.slow
def test_dcw_gradient_collects_both_uses():
  """Tied kernels: the gradient of W_1 is the sum over its encoder and decoder uses, so it
  differs from the encoder-only gradient of the untied model with equal kernels."""
  x = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3))
  tied, p_tied = _params("clmser-n")
  untied, _ = _params("cae")
  p_untied = {f"We_{i}": p_tied[f"W_{i}"] for i in (1, 2, 3)}
  p_untied |= {f"Wd_{i}": p_tied[f"W_{i}"] for i in (1, 2, 3)}
  loss = lambda m: lambda p: jnp.mean((m.apply({"params": p}, x) - x) ** 2)
  g_tied = jax.grad(loss(tied))(p_tied)
  g_untied = jax.grad(loss(untied))(p_untied)
  for i in (1, 2, 3):
    total = g_untied[f"We_{i}"] + g_untied[f"Wd_{i}"]
    assert jnp.allclose(g_tied[f"W_{i}"], total, rtol=1e-4, atol=1e-7)


def _official(name):
  cfg = model_config(name, official=True)
  cfg.depth, cfg.channels, cfg.strides = 3, CHANNELS, STRIDES
  return build_model(cfg)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_official_network_adds_a_batch_norm_per_signal(name):
  """BatchNorm after every `Y_1..Y_3` and `U_1..U_2` (not `U_0`): scale and bias each."""
  variables = _official(name).init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
  norms = {"bn_Y_1", "bn_Y_2", "bn_Y_3", "bn_U_1", "bn_U_2"}
  assert set(variables["batch_stats"]) == norms
  assert {k for k in variables["params"] if k.startswith("bn_")} == norms
  count = sum(p.size for p in jax.tree.leaves(variables["params"]))
  kernels = _kernel_params() * (1 if VARIANTS[name][0] else 2)
  assert count == kernels + 2 * sum(CHANNELS) + 2 * sum(CHANNELS[:-1])


@pytest.mark.slow
def test_batch_norm_updates_running_averages_in_training_mode_only():
  model = _official("clmser")
  x = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3))
  variables = model.init(jax.random.key(0), x)
  _, unchanged = model.apply(variables, x, mutable=["batch_stats"])
  _, updated = model.apply(variables, x, train=True, mutable=["batch_stats"])
  same = jax.tree.map(jnp.array_equal, unchanged["batch_stats"], variables["batch_stats"])
  assert all(jax.tree.leaves(same))
  mean = updated["batch_stats"]["bn_Y_1"]["mean"]
  assert not jnp.allclose(mean, 0.0) and mean.shape == (CHANNELS[0],)


@pytest.mark.slow
def test_batch_norm_refuses_one_value_per_channel():
  model = _official("clmser")
  x = jnp.ones((1, 4, 4, 3))  # the top layer is 1 x 1
  variables = model.init(jax.random.key(0), x)
  with pytest.raises(ValueError, match="more than one value per channel"):
    model.apply(variables, x, train=True, mutable=["batch_stats"])
