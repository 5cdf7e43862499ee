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


def test_unet_adds_fusion_kernels():
  _, params = _params("unet")
  fusion = sum(9 * 2 * c * c for c in CHANNELS[:-1])
  assert sum(p.size for p in jax.tree.leaves(params)) == 2 * _kernel_params() + fusion


@pytest.mark.parametrize("name", [*VARIANTS, "unet"])
@pytest.mark.parametrize("size", [(16, 16), (13, 18)])
def test_reconstruction_has_input_shape(name, size):
  model, params = _params(name)
  x = jax.random.uniform(jax.random.key(1), (2, *size, 3))
  assert model.apply({"params": params}, x).shape == x.shape


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
