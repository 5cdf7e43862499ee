"""The study script end to end on a tiny config, and its pieces."""
import csv

import numpy as np
import pytest

from clmser_jax.analysis import gradient_flow, plots, study
from clmser_jax.data import load_dataset
from configs.gradient_flow import get_config


def _tiny_config():
  c = get_config()
  c.image_size, c.batch_size, c.width, c.max_width = 16, 2, 2, 4
  c.variants = ("clmser", "cae")
  c.init.update(depths=(2, 3), activations=("sigmoid",), kernel_inits=("he",), num_seeds=1)
  c.train.update(depths=(2,), activations=("relu",), optimizers=("sgd",), num_steps=3,
                 norm_every=2)
  c.table_depths = (3,)
  return c


def _read(path):
  with open(path) as f:
    return list(csv.DictReader(f))


@pytest.mark.slow
def test_run_writes_every_output(tmp_path):
  config = _tiny_config()
  gradient_flow.run(config, str(tmp_path))
  for name in ("init_norms_he.png", "term_shares_he_sigmoid_d3.png", "convergence_sgd.png",
               "training_norms_sgd.png", "summary.json"):
    assert (tmp_path / name).stat().st_size > 0, name
  init = _read(tmp_path / "init_norms.csv")
  # CLmser: one W_k per layer; CAE: We_k and Wd_k. Depths 2 and 3.
  assert len(init) == (2 + 3) * (1 + 2)
  cae_enc = [r for r in init if r["variant"] == "cae" and r["param"] == "We"]
  assert all(float(r["decoder"]) == 0 and float(r["skip"]) == 0 for r in cae_enc)
  assert all(float(r["total"]) == pytest.approx(float(r["encoder"])) for r in cae_enc)
  losses = _read(tmp_path / "training_loss.csv")
  assert [int(r["step"]) for r in losses] == [0, 1, 2, 3] * 2
  assert sorted({int(r["step"]) for r in _read(tmp_path / "training_norms.csv")}) == [0, 2, 3]
  table = (tmp_path / "init_table.md").read_text()
  assert "| CAE |" in table and "k=3" in table


@pytest.mark.parametrize("field,value", [
    ("train.optimizers", ("rmsprop",)), ("variants", ()), ("init.depths", (0, 3)),
    ("train.num_steps", 0), ("table_depths", (7,))])
def test_validate_names_the_field(field, value):
  config = _tiny_config()
  gradient_flow.validate(config)
  parent, _, name = field.rpartition(".")
  (config[parent] if parent else config)[name] = value
  with pytest.raises(gradient_flow.ConfigError, match=field):
    gradient_flow.validate(config)


def test_architecture_follows_table_2():
  c = get_config()
  c.image_size, c.width, c.max_width, c.min_size = 32, 16, 64, 4
  assert study.architecture(5, c) == ((16, 32, 64, 64, 64), (1, 2, 2, 2, 1))
  channels, strides = study.architecture(15, c)
  assert len(channels) == len(strides) == 15 and sum(s == 2 for s in strides) == 3


def test_layer_shares_sum_to_one():
  rows = [{"layer": 1, "encoder": 1.0, "skip": 2.0, "decoder": 0.0, "feedback": 0.0},
          {"layer": 1, "encoder": 0.0, "skip": 0.0, "decoder": 1.0, "feedback": 0.0},
          {"layer": 2, "encoder": 3.0, "skip": 0.0, "decoder": 1.0, "feedback": 0.0}]
  shares = plots.layer_shares(rows, 2)
  assert shares[1] == {"encoder": 0.25, "skip": 0.5, "decoder": 0.25, "feedback": 0.0}
  assert shares[2]["encoder"] == 0.75


def test_moving_average():
  np.testing.assert_allclose(plots.moving_average([1.0, 3.0, 5.0, 7.0], 2), [1, 2, 4, 6])


@pytest.mark.slow
def test_a_diverging_run_stops_and_says_so():
  config = _tiny_config()
  config.train.update(num_steps=50, learning_rates=dict(sgd=1e12, adam=1e-3))
  # Sigmoid: a huge step cannot leave it dead at a constant output, as it can ReLU.
  model = study.build(config, "cae", 2, "sigmoid", "he")
  losses, _ = study.train(config, load_dataset(config), model, "sgd")
  assert not np.isfinite(losses[-1]["loss"]) and len(losses) < 51
  assert all(np.isfinite(r["loss"]) for r in losses[:-1])
