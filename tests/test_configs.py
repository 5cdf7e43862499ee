"""Every experiment config validates, and its tiny variant trains end to end."""
import importlib

import pytest

from clmser_jax import train
from clmser_jax.config import validate


@pytest.mark.parametrize("name", ["celeba", "places2", "places2_reconstruct"])
@pytest.mark.parametrize("variant", ["clmser", "clmser-w", "clmser-n", "cae", "unet"])
def test_full_configs_validate(name, variant):
  config = importlib.import_module(f"configs.{name}").get_config(variant)
  validate(config)
  assert config.image_size == 256 and config.model.depth == 7  # Table 2, C&P


def test_table8_config_reconstructs_places2_with_the_paper_schedule():
  """Appendix B: CLmser-n (the default) and CAE reconstruct 180,346 Places2 images for 20
  epochs at batch 16 (Table 3), evaluated on 10,000."""
  module = importlib.import_module("configs.places2_reconstruct")
  config = module.get_config()
  assert (config.task.name, config.model.dcw, config.model.dpn) == ("reconstruct", True, False)
  assert config.num_train_steps == 20 * 180346 // 16 and config.num_eval_images == 10000
  assert (config.optimizer.name, config.optimizer.learning_rate) == ("adam", 1e-3)
  assert module.get_config("cae").model.dcw is False


@pytest.mark.parametrize("arg,per_class,steps,optimizer", [
    ("clmser", 400, 800, "sgd"), ("clmser-w,100", 100, 200, "sgd"),
    ("unet,10,adam", 10, 20, "adam"), ("cae,adam,100", 100, 200, "adam")])
def test_stl10_n_configs(arg, per_class, steps, optimizer):
  config = importlib.import_module("configs.stl10").get_config(arg)
  validate(config)
  assert (config.dataset, config.per_class, config.image_size) == ("tfds:stl10", per_class, 96)
  assert config.num_train_steps == steps  # Table 3: 20 epochs of 10 n images at batch 100
  assert (config.batch_size, config.optimizer.name) == (100, optimizer)
  assert config.optimizer.learning_rate == 0.01 and config.model.depth == 5  # Tables 2-3


def test_default_config_takes_table3_sgd_and_contractive_kernels_as_options():
  config = importlib.import_module("configs.default").get_config("clmser-w,sgd")
  validate(config)
  assert (config.optimizer.name, config.optimizer.learning_rate) == ("sgd", 0.01)
  assert (config.model.dcw, config.model.dpn, config.model.kernel_init) == (False, True, "auto")
  config = importlib.import_module("configs.default").get_config("clmser,contractive")
  assert (config.model.kernel_init, config.optimizer.name) == ("contractive", "adam")
  assert importlib.import_module("configs.default").get_config().optimizer.name == "adam"
  with pytest.raises(ValueError, match=r"options \['adam2'\] are unknown"):
    importlib.import_module("configs.default").get_config("clmser,adam2")


def test_stl10_unknown_option():
  with pytest.raises(ValueError, match="option 'rmsprop' is unknown"):
    importlib.import_module("configs.stl10").get_config("clmser,rmsprop")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["celeba", "places2", "places2_reconstruct", "stl10"])
def test_tiny_variant_runs(name, tmp_path):
  config = importlib.import_module(f"configs.{name}").get_config("clmser,tiny")
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == config.num_train_steps


def test_stl10_steps_follow_per_class_through_overrides_and_sweeps():
  """20 epochs of 10 n images at batch 100 (Table 3) whichever way n is set."""
  from clmser_jax.experiments import sweep
  config = importlib.import_module("configs.stl10").get_config("clmser,100")
  assert (config.num_train_steps, config.eval_every_steps) == (200, 10)
  for n, steps in ((400, 800), (10, 20), (25, 60)):  # 25: ceil(250 / 100) = 3 steps an epoch
    swept, _ = sweep.with_field(config, "per_class", str(n))
    assert (swept.per_class, swept.num_train_steps, swept.eval_every_steps) == (n, steps,
                                                                                steps // 20)
