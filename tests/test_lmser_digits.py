"""The digits script's learning loop, feature picture and outputs."""
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from clmser_jax.analysis import lmser_digits
from configs.lmser_digits import get_config


@pytest.mark.slow
def test_learn_logs_the_loss_and_keeps_the_shapes():
  config = get_config()
  config.update(num_steps=20, log_every=10, batch_size=8)
  x = lmser_digits.digits()
  assert x.shape == (1797, 64) and x.min() == 0 and x.max() == 1
  params, curve = lmser_digits.learn(config, x, (9, 4), "eq2")
  assert [p.shape for p in params] == [(9, 64), (4, 9)]
  assert [t for t, _ in curve] == [0, 10, 20] and curve[-1][1] < curve[0][1]


def test_feature_grid_draws_every_row_in_place():
  fig, ax = plt.subplots()
  w1 = np.arange(5 * 64, dtype=np.float32).reshape(5, 64)
  lmser_digits.feature_grid(w1, ax)
  grid = ax.get_images()[0].get_array()
  assert grid.shape == (2 * 9 + 1, 3 * 9 + 1)
  np.testing.assert_allclose(grid[1:9, 1:9], np.arange(64).reshape(8, 8) / 63)
  np.testing.assert_allclose(grid[10:18, 10:18], np.arange(64).reshape(8, 8) / 63)
  plt.close(fig)


def test_run_writes_pictures_and_curves(tmp_path):
  config = get_config()
  config.update(num_steps=4, log_every=2, batch_size=8)
  config.networks = dict(tiny=(4,))
  lmser_digits.run(config, str(tmp_path))
  assert (tmp_path / "lmser_features.png").stat().st_size > 0
  assert (tmp_path / "lmser_loss.png").stat().st_size > 0
  curves = json.loads((tmp_path / "lmser_digits.json").read_text())
  assert sorted(curves) == ["tiny/autodiff", "tiny/eq2"]
  assert [t for t, _ in curves["tiny/eq2"]] == [0, 2, 4]
