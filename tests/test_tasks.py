"""Tasks: inpainting inputs, losses and composites against hand-derived values, and an
inpainting run end to end."""
import json

import jax.numpy as jnp
import numpy as np
import pytest

from clmser_jax import tasks, train
from clmser_jax.config import ConfigError, task_config, validate
from tiny import get_config as tiny_config


def _batch():
  image = np.full((1, 4, 4, 3), 0.5, np.float32)
  mask = np.ones((1, 4, 4, 1), np.float32)
  mask[0, :2] = 0  # top half is a hole: 8 of 16 pixels
  return {"image": image, "mask": mask}


def test_inpaint_input_and_composite():
  task = task_config("inpaint", mask_channel=True)
  batch = _batch()
  x = tasks.model_input(batch, task)
  assert x.shape == (1, 4, 4, 4)
  np.testing.assert_array_equal(x[0, :2, :, :3], 0.0)
  np.testing.assert_array_equal(x[0, 2:, :, :3], 0.5)
  np.testing.assert_array_equal(x[..., 3:], batch["mask"])
  output = jnp.full((1, 4, 4, 4), 0.9)
  composite = tasks.prediction(output, batch, task)
  np.testing.assert_allclose(composite[0, :2], 0.9)  # holes from the network
  np.testing.assert_allclose(composite[0, 2:], 0.5)  # known pixels from the input


def test_hole_valid_loss_by_hand():
  task = task_config("inpaint", loss="hole_valid", loss_norm="l1", hole_weight=6.0,
                     valid_weight=1.0)
  output = jnp.full((1, 4, 4, 3), 0.5).at[0, :2].set(0.7).at[0, 2:].set(0.6)
  # holes: |0.2| on 8/16 pixels -> mean 0.1; known: |0.1| on 8/16 -> mean 0.05
  np.testing.assert_allclose(tasks.loss(output, _batch(), task), 6 * 0.1 + 0.05, rtol=1e-5)
  np.testing.assert_allclose(tasks.loss(output, _batch(), task_config("inpaint")),
                             (0.04 + 0.01) / 2, rtol=1e-5)


def test_symmetric_pixel_range_round_trip():
  task = task_config(pixel_range="symmetric")
  batch = _batch()
  x = tasks.model_input(batch, task)
  np.testing.assert_allclose(x, 0.0)  # 0.5 maps to 0 in [-1, 1]
  np.testing.assert_allclose(tasks.prediction(x, batch, task), batch["image"])


def test_bad_task_fields():
  config = tiny_config()
  config.task = task_config("inpaint", mask="blobs")
  with pytest.raises(ConfigError, match=r"task\.mask='blobs'.*points"):
    validate(config)
  config.task = task_config("denoise")
  with pytest.raises(ConfigError, match=r"task\.name='denoise'"):
    validate(config)


@pytest.mark.slow
def test_inpainting_run(tmp_path):
  config = tiny_config(steps=3)
  config.task = task_config("inpaint", mask_ratio=0.3, mask_bank_size=8, mask_channel=True)
  train.train_and_evaluate(config, str(tmp_path))
  with open(tmp_path / "metrics.jsonl") as f:
    evals = [json.loads(l) for l in f if '"eval"' in l]
  assert evals[-1]["step"] == 3
  assert set(evals[-1]) == {"step", "split", "l1", "mse", "psnr", "ssim"}
  assert (tmp_path / "images" / "eval_0000003.png").exists()
