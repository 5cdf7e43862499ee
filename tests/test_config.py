"""Config validation: one line naming the field, the value and what is allowed."""
import os
import subprocess
import sys

import pytest

from clmser_jax.config import ConfigError, data_config, model_config, validate, with_defaults
from configs import official_celeba
from configs.default import get_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _set(config, field, value):
  *parents, leaf = field.split(".")
  for p in parents:
    config = config[p]
  config[leaf] = value


@pytest.mark.parametrize("variant", ["clmser", "clmser-w", "clmser-n", "cae", "unet"])
def test_presets_are_valid(variant):
  validate(get_config(variant))


@pytest.mark.parametrize("variant", ["clmser", "clmser-w", "clmser-n", "cae"])
def test_official_presets_are_valid(variant):
  config = official_celeba.get_config(variant)
  validate(config)
  assert (config.model.norm, config.model.fusion) == ("batch", "post_mean")
  assert config.optimizer.decay_steps == (33760, 67520)  # epochs 20 and 40 of 1688 steps
  assert config.num_train_steps == 84400


@pytest.mark.parametrize("field,value,pattern", [
    ("model.channels", (16, 32, 64, 128), r"model\.channels has 4 entries.*depth=5"),
    ("model.strides", (1, 2, 2), r"model\.strides has 3 entries"),
    ("image_size", 70, r"image_size=70.*multiple of the total stride 16"),
    ("num_train_steps", 0, r"num_train_steps=0.*positive integer"),
    ("batch_size", -4, r"batch_size=-4"),
    ("optimizer.name", "rmsprop", r"optimizer\.name='rmsprop'.*adam"),
    ("optimizer.learning_rate", 0.0, r"learning_rate=0\.0"),
    ("model.activation", "gelu", r"model\.activation='gelu'"),
    ("model.kernel_size", 4, r"kernel_size=4.*odd"),
    ("dataset", "imagenet", r"dataset='imagenet'.*folder:"),
    ("dataset", "tfds:imagenet2012", r"dataset='tfds:imagenet2012'.*'stl10', 'mnist'"),
    ("data_dir", None, r"data_dir=None.*TFDS_DATA_DIR"),
    ("per_class", 10, r"per_class=10.*0 with dataset='embedded'.*'stl10'"),
    ("per_class", -1, r"per_class=-1.*non-negative"),
    ("data.train_images", -1, r"data\.train_images=-1.*non-negative"),
    ("model.contraction_gain", 1.5, r"contraction_gain=1\.5"),
    ("model.norm", "layer", r"model\.norm='layer'.*'none', 'batch'"),
    ("model.fusion", "concat", r"model\.fusion='concat'.*'sum', 'post_mean'"),
    ("model.kernel_init", "orthogonal", r"kernel_init='orthogonal'.*'xavier'"),
    ("optimizer.decay_steps", (300, 200), r"decay_steps=\(300, 200\).*strictly increasing"),
])
def test_bad_field_is_named(field, value, pattern):
  config = get_config()
  _set(config, field, value)
  with pytest.raises(ConfigError, match=pattern):
    validate(config)


@pytest.mark.parametrize("dataset,per_class,pattern", [
    ("tfds:stl10", 401, r"per_class=401.*at most 400.*'tfds:stl10'"),
    ("tfds:mnist:3.0.1", 5422, r"per_class=5422.*at most 5421"),
    ("tfds:celeb_a_hq/256", 10, r"per_class=10.*0 with dataset='tfds:celeb_a_hq/256'"),
])
def test_per_class_only_within_a_labelled_tfds_dataset(dataset, per_class, pattern):
  config = get_config()
  config.dataset, config.per_class = dataset, per_class
  with pytest.raises(ConfigError, match=pattern):
    validate(config)
  config.per_class = 0
  validate(config)


def test_reflections_need_dpn():
  config = get_config("cae")
  config.model.reflections = 3
  with pytest.raises(ConfigError, match=r"model\.reflections=3.*model\.dpn=False"):
    validate(config)


@pytest.mark.parametrize("field,value", [("norm", "batch"), ("fusion", "post_mean")])
def test_official_options_are_one_pass(field, value):
  config = get_config()
  config.model[field] = value
  validate(config)
  config.model.reflections = 2
  with pytest.raises(ConfigError, match=rf"model\.{field}='{value}'.*model\.reflections=2"):
    validate(config)
  config = get_config("unet")
  config.model[field] = value
  with pytest.raises(ConfigError, match=rf"model\.{field}='{value}'.*model\.name='unet'"):
    validate(config)


def test_decay_factor_needs_a_fraction():
  config = official_celeba.get_config()
  config.optimizer.decay_factor = 0.0
  with pytest.raises(ConfigError, match=r"optimizer\.decay_factor=0\.0"):
    validate(config)


def test_unet_has_no_official_network():
  with pytest.raises(ConfigError, match=r"'unet' has no official network"):
    model_config("unet", official=True)


@pytest.mark.parametrize("field", ["dcw", "remat"])
def test_unet_rejects_dualities_and_remat(field):
  config = get_config("unet")
  config.model[field] = True
  with pytest.raises(ConfigError, match=rf"'unet' needs .*model\.{field}=False.*{field}=True"):
    validate(config)



def test_a_config_written_before_a_data_field_gets_its_default():
  """A run's config.json from before `data` (or one of its fields) existed meant the default."""
  config = get_config()
  with config.unlocked():
    del config.data["train_images"]
  assert with_defaults(config).data.to_dict() == data_config().to_dict()
  with config.unlocked():
    del config["data"]
  filled = with_defaults(config)
  assert filled.data.to_dict() == data_config().to_dict()
  validate(filled)


def test_unknown_variant():
  with pytest.raises(ConfigError, match=r"'clmser-x' is unknown; allowed: clmser, "):
    model_config("clmser-x")


@pytest.mark.slow
def test_main_reports_config_error_in_one_line(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "clmser_jax.main", "--config=configs/default.py",
       f"--workdir={tmp_path}", "--config.model.depth=4"],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("clmser_jax: config error: config.model.channels has 5 entries")
  assert not os.path.exists(tmp_path / "checkpoints")
