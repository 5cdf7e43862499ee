"""Every experiment config validates, and its tiny variant trains end to end."""
import importlib

import pytest

from clmser_jax import train
from clmser_jax.config import validate


@pytest.mark.parametrize("name", ["celeba", "places2"])
@pytest.mark.parametrize("variant", ["clmser", "clmser-w", "clmser-n", "cae", "unet"])
def test_full_configs_validate(name, variant):
  config = importlib.import_module(f"configs.{name}").get_config(variant)
  validate(config)
  assert config.image_size == 256 and config.model.depth == 7  # Table 2, C&P


@pytest.mark.parametrize("name", ["celeba", "places2"])
def test_tiny_variant_runs(name, tmp_path):
  config = importlib.import_module(f"configs.{name}").get_config("clmser,tiny")
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == config.num_train_steps
