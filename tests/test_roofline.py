"""The FLOP and byte counts of `benchmarks/roofline.py`: by hand on small cases, and the
FLOPs against XLA's own cost analysis of the compiled networks."""
import functools

import jax
import jax.numpy as jnp
import optax
import pytest

from benchmarks import roofline
from clmser_jax import ops, train
from clmser_jax.config import model_config, task_config
from clmser_jax.models import build_model

ARCH = dict(depth=3, channels=(16, 32, 64), strides=(1, 2, 2))
SIZE, BATCH = 32, 2


def _config(variant="clmser", official=False, reflections=1, **fields):
  config = model_config(variant, "stl10", official=official)
  config.update(ARCH, reflections=reflections)
  config.update(fields)
  return config


def test_pass_flops_count_taps_on_real_pixels():
  # Along an axis of 4 pixels, a stride-1 3x3 conv has 4 x 3 taps, 2 of them on the padding;
  # at stride 2 (2 outputs) 2 x 3 taps, 1 on the padding.
  full = roofline.Pass(3, 2, 5, 1, (4, 4), (4, 4))
  assert roofline.pass_flops(full) == 2 * 2 * 5 * 10 * 10
  strided = roofline.Pass(3, 2, 5, 2, (4, 4), (2, 2))
  assert roofline.pass_flops(strided) == 2 * 2 * 5 * 5 * 5


def test_bytes_by_hand():
  """One layer (3 -> 8 channels, stride 1) on 4x4 images, batch 2, bfloat16: each of its two
  passes moves (3 + 8) x 16 signal values of 2 bytes and its 216-entry float32 kernel once per
  batch; a train step runs the bottom-up pass twice more (less its image gradient), the
  top-down one three times, and Adam moves 7 x 4 bytes per parameter."""
  config = _config(depth=1, channels=(8,), strides=(1,))
  per_pass = 2 * 11 * 16 + 4 * 216 / 2
  assert roofline.bytes_per_image(config, (4, 4), 2, 2) == 2 * per_pass
  assert roofline.bytes_per_image(config, (4, 4), 2, 2, train=True, num_params=216) == (
      5 * per_pass + 28 * 216 / 2)


def _xla_flops(compiled) -> float:
  return compiled.cost_analysis()["flops"] / BATCH


@pytest.fixture(autouse=True)
def xla_formulation():
  """The XLA formulation everywhere (`ops.FORMULATIONS`): XLA counts the useful FLOPs of its
  transposed convolution only, while the CPU formulation's phase form of `W^T` also multiplies
  zero taps (16 for 9 at k = 3, s = 2); and it cannot count inside the native kernels."""
  with ops.formulation("xla"):
    yield


@pytest.mark.parametrize("variant,official,reflections", [
    ("clmser", False, 1), ("clmser", False, 3), ("clmser", True, 1), ("unet", False, 1)])
def test_forward_flops_match_xla(variant, official, reflections):
  """XLA counts the same convolution FLOPs plus the elementwise work (activations, sums,
  BatchNorm): measured 0.3-0.8% more, 3.1% with BatchNorm. At r > 1 the loop is unrolled:
  XLA's cost analysis counts the body of a loop once, whatever its trip count."""
  config = _config(variant, official, reflections)
  model = build_model(config).clone(**({"unroll": True} if variant == "clmser" else {}))
  x = jnp.zeros((BATCH, SIZE, SIZE, 3))
  variables = model.init(jax.random.key(0), x)
  xla = _xla_flops(jax.jit(model.apply).lower(variables, x).compile())
  ours = roofline.flops_per_image(config, (SIZE, SIZE))
  assert ours <= xla <= 1.05 * ours


@pytest.mark.parametrize("official", [False, True])
def test_train_step_flops_match_xla(official):
  """A train step: XLA counts 4% more (11% with BatchNorm, whose backward is elementwise work
  too): `ops.weight_gradient` convolves the zero-padded signal and XLA counts those taps (a
  share that shrinks as images grow), plus the elementwise work and the optimizer."""
  config = _config("clmser", official)
  model = build_model(config)
  x = jnp.zeros((BATCH, SIZE, SIZE, 3))
  state = train.state_from_variables(model, optax.adam(1e-3), model.init(jax.random.key(0), x))
  step = jax.jit(functools.partial(train.train_step, task=task_config("reconstruct")))
  xla = _xla_flops(step.lower(state, {"image": x}).compile())
  ours = roofline.flops_per_image(config, (SIZE, SIZE), train=True)
  assert ours <= xla <= 1.15 * ours
