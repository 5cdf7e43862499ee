"""Config validation: one line naming the field, the value and what is allowed."""
import os
import subprocess
import sys

import pytest

from clmser_jax.config import ConfigError, model_config, validate
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
    ("model.contraction_gain", 1.5, r"contraction_gain=1\.5"),
])
def test_bad_field_is_named(field, value, pattern):
  config = get_config()
  _set(config, field, value)
  with pytest.raises(ConfigError, match=pattern):
    validate(config)


def test_reflections_need_dpn():
  config = get_config("cae")
  config.model.reflections = 3
  with pytest.raises(ConfigError, match=r"model\.reflections=3.*model\.dpn=False"):
    validate(config)


def test_unet_rejects_dualities():
  config = get_config("unet")
  config.model.dcw = True
  with pytest.raises(ConfigError, match="unet"):
    validate(config)


def test_unknown_variant():
  with pytest.raises(ConfigError, match=r"'clmser-x' is unknown; allowed: clmser, "):
    model_config("clmser-x")


def test_main_reports_config_error_in_one_line(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "clmser_jax.main", "--config=configs/default.py",
       f"--workdir={tmp_path}", "--config.model.depth=4"],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("clmser_jax: config error: config.model.channels has 5 entries")
  assert not os.path.exists(tmp_path / "checkpoints")
