"""The experiment runner's table and the per-frame timer."""
import time

import jax
import jax.numpy as jnp
import numpy as np

from clmser_jax import experiments, timing
from tiny import get_config as tiny_config


def test_per_frame_time_includes_the_device_work():
  """A 20 ms host callback per batch of 2: at least 10 ms per frame, compile excluded."""
  def slow(variables, x):
    def sleep(x):
      time.sleep(0.02)
      return x
    return jax.pure_callback(sleep, jax.ShapeDtypeStruct(x.shape, x.dtype), x) * variables

  result = timing.per_frame_ms(slow, jnp.float32(2.0), np.zeros((6, 4), np.float32), 2,
                               repeats=2)
  assert result["ms_per_frame"] >= 10.0
  assert result["ms_per_frame_min"] <= result["ms_per_frame"] <= result["ms_per_frame_max"]


def test_runner_trains_variants_and_tabulates(tmp_path):
  base = tiny_config(steps=2)
  rows = {}
  for variant in ("clmser", "cae"):
    config = experiments.variant_config(base, variant)
    assert tuple(config.model.channels) == (4, 8)
    rows[variant] = experiments.run_variant(config, str(tmp_path / variant), 1)
  table = experiments.markdown_table(rows)
  assert table.splitlines()[0] == "| model | l1 | mse | psnr | ssim | ms_per_frame |"
  assert table.splitlines()[2].startswith("| clmser | ")
  assert rows["cae"]["psnr"] == experiments.final_eval(str(tmp_path / "cae"))["psnr"]
