"""Mixed precision (`model.dtype='bfloat16'`): bfloat16 signals and convolutions, float32
parameters, gradients, BatchNorm statistics and outputs; close to the float32 network.

Measured on stl10's first three layers at 32x32 on two photographs (`ARCH`): output 3-4e-3
relative to float32 (CLmser at r = 1 and 4, the official network, U-Net), loss <= 3e-3,
gradient cosine >= 0.99987, BatchNorm running averages 4.5e-3. bfloat16 keeps 8 significant
bits (unit roundoff 2^-9 = 2e-3) and every layer rounds its signal once per pass, so errors of
a few 1e-3 are what it can do; the bounds leave a 5-8x margin. Per kernel, the gradients of
small layers behind BatchNorm fare worst (9% relative error on the official network's top
kernel: BatchNorm's backward subtracts nearly equal means); no bound is set per kernel.
"""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import batches
import tiny
from benchmarks.runners import cosine, relative_difference
from clmser_jax import ops, tasks, train
from clmser_jax.config import ConfigError, model_config, task_config, validate
from clmser_jax.data import load_dataset
from configs.default import get_config
from clmser_jax.models import build_model

CASES = {  # name: (variant, official, reflections)
    "clmser": ("clmser", False, 1),
    "clmser r=4": ("clmser", False, 4),
    "official": ("clmser", True, 1),
    "unet": ("unet", False, 1),
}
ARCH = dict(depth=3, channels=(16, 32, 64), strides=(1, 2, 2))  # stl10's first three layers
OUTPUT_BOUND = 2e-2  # output, loss, running averages: measured <= 4e-3
COSINE_BOUND = 0.999  # gradient cosine: measured >= 0.99987


def _photos(count=2, size=32):
  """Crops of the embedded photographs, float32 in [0, 1]."""
  config = get_config()
  config.image_size, config.num_eval_images = size, count
  return jnp.asarray(batches.eval_images(config, load_dataset(config)))


def _models(case):
  """The same network computing in float32 and in bfloat16, its variables and task."""
  variant, official, reflections = CASES[case]
  config = model_config(variant, "stl10", official=official)
  config.update(ARCH, reflections=reflections)
  task = task_config("reconstruct", pixel_range="symmetric" if official else "unit")
  f32 = build_model(config)
  config.dtype = "bfloat16"
  bf16 = build_model(config)
  return f32, bf16, f32.init(jax.random.key(0), _photos(1)), task


def _loss_and_grads(model, variables, images, task):
  def loss_fn(params):
    output, _ = model.apply({**variables, "params": params},
                            tasks.model_input({"image": images}, task), train=True,
                            mutable=["batch_stats"])
    return tasks.loss(output, {"image": images}, task)
  return jax.jit(jax.value_and_grad(loss_fn))(variables["params"])


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_bfloat16_output_is_close_to_float32(case):
  f32, bf16, variables, task = _models(case)
  x = tasks.model_input({"image": _photos()}, task)
  want, got = (jax.jit(m.apply)(variables, x) for m in (f32, bf16))
  assert got.dtype == jnp.float32
  assert 1e-4 < relative_difference(got, want) < OUTPUT_BOUND  # > 1e-4: it did round


@pytest.mark.slow
@pytest.mark.parametrize("case", ["clmser r=4", "official"])
def test_bfloat16_gradients_are_float32_and_close(case):
  f32, bf16, variables, task = _models(case)
  assert {p.dtype for p in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
  images = _photos()
  (loss32, grads32), (loss16, grads16) = (_loss_and_grads(m, variables, images, task)
                                          for m in (f32, bf16))
  assert {g.dtype for g in jax.tree.leaves(grads16)} == {jnp.dtype(jnp.float32)}
  assert relative_difference(loss16, loss32) < OUTPUT_BOUND
  assert cosine(grads16, grads32) > COSINE_BOUND


def _conv_dtypes(jaxpr):
  """`(operand dtypes, result dtype)` of every convolution and matrix product in `jaxpr`,
  inner jaxprs (jit, scan, custom VJPs) included."""
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in ("conv_general_dilated", "dot_general"):
      found.append((tuple(str(v.aval.dtype) for v in eqn.invars),
                    str(eqn.outvars[0].aval.dtype)))
    for param in eqn.params.values():
      for inner in param if isinstance(param, (tuple, list)) else (param,):
        inner = getattr(inner, "jaxpr", inner)
        if hasattr(inner, "eqns"):
          found += _conv_dtypes(inner)
  return found


@pytest.mark.slow
@pytest.mark.parametrize("case", ["clmser r=4", "official", "unet"])
def test_convolutions_run_in_the_compute_dtype(case):
  """Forward and backward convolutions read bfloat16 signals and kernels; the kernel
  gradients accumulate into float32. The float32 network has no bfloat16 at all."""
  f32, bf16, variables, task = _models(case)
  images = _photos(2, 16)
  for model, dtype in ((bf16, "bfloat16"), (f32, "float32")):
    grad = jax.value_and_grad(lambda p: tasks.loss(model.apply(
        {**variables, "params": p}, tasks.model_input({"image": images}, task), train=True,
        mutable=["batch_stats"])[0], {"image": images}, task))
    convs = _conv_dtypes(jax.make_jaxpr(grad)(variables["params"]).jaxpr)
    assert {d for operands, _ in convs for d in operands} == {dtype}
    assert {result for _, result in convs} == {dtype, "float32"}


@pytest.mark.slow
@pytest.mark.parametrize("stride", [1, 2])
def test_kernel_gradient_accumulates_in_float32(stride):
  """`weight_gradient` of bfloat16 signals is the float32 one of the same values: the sums
  run in float32 and the result is not rounded back to bfloat16 (2^-9 relative)."""
  x = jax.random.normal(jax.random.key(0), (4, 12, 12, 8)).astype(jnp.bfloat16)
  g = jax.random.normal(jax.random.key(1), (4, 12 // stride, 12 // stride, 16)).astype(
      jnp.bfloat16)
  got = ops.weight_gradient(x, g, stride, 3)
  want = ops.weight_gradient(x.astype(jnp.float32), g.astype(jnp.float32), stride, 3)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_float32_kernel_of_a_bfloat16_signal_gets_a_float32_gradient():
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3)).astype(jnp.bfloat16)
  w = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
  loss = lambda w, x: 0.5 * jnp.sum(jnp.square(
      ops.top_down(ops.bottom_up(x, w, 2), w, 2, (8, 8)).astype(jnp.float32)))
  got = jax.grad(loss)(w, x)
  want = jax.grad(loss)(w, x.astype(jnp.float32))
  assert got.dtype == jnp.float32
  assert relative_difference(got, want) < OUTPUT_BOUND


@pytest.mark.slow
def test_batch_norm_statistics_stay_float32():
  f32, bf16, variables, task = _models("official")
  x = tasks.model_input({"image": _photos()}, task)
  (_, want), (_, got) = (m.apply(variables, x, train=True, mutable=["batch_stats"])
                         for m in (f32, bf16))
  assert {s.dtype for s in jax.tree.leaves(got)} == {jnp.dtype(jnp.float32)}
  assert relative_difference(got, want) < OUTPUT_BOUND


@pytest.mark.slow
def test_training_in_bfloat16_follows_float32(tmp_path):
  """Three steps of `train_and_evaluate` of the official network (BatchNorm, AMSGrad):
  finite losses within 2% of the float32 run's (measured 0.09%), float32 parameters and
  optimizer state."""
  losses, states = {}, {}
  for dtype in ("float32", "bfloat16"):
    config = tiny.get_config("official", steps=3)
    config.model.dtype = dtype
    states[dtype] = train.train_and_evaluate(config, str(tmp_path / dtype))
    losses[dtype] = np.array([line["loss"] for line in _train_metrics(tmp_path / dtype)])
  assert np.all(np.isfinite(losses["bfloat16"]))
  np.testing.assert_allclose(losses["bfloat16"], losses["float32"], rtol=OUTPUT_BOUND)
  assert {a.dtype for a in jax.tree.leaves((states["bfloat16"].params,
                                            states["bfloat16"].opt_state))
          if jnp.issubdtype(a.dtype, jnp.floating)} == {jnp.dtype(jnp.float32)}


def _train_metrics(workdir):
  with open(workdir / "metrics.jsonl") as f:
    return [line for line in map(json.loads, f) if line["split"] == "train"]


def test_config_rejects_other_dtypes():
  config = tiny.get_config()
  config.model.dtype = "float16"
  with pytest.raises(ConfigError, match=r"config\.model\.dtype='float16' is not allowed"):
    validate(config)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["clmser", "cnn"])
def test_dsp_label_layer_computes_in_the_compute_dtype(variant):
  """DSP (Table 7) in bfloat16: the label layer's products read bfloat16 like the convs, the
  reconstruction and logits come back float32 and close to the float32 network's."""
  config = model_config(variant, "stl10")
  config.update(ARCH, num_classes=10)
  f32 = build_model(config)
  config.dtype = "bfloat16"
  bf16 = build_model(config)
  images, label = _photos(2, 16), jnp.array([3, 7])
  variables = f32.init(jax.random.key(0), images)
  (image32, logits32), (image16, logits16) = (
      m.apply(variables, images, label=label) for m in (f32, bf16))
  assert logits16.dtype == jnp.float32
  assert relative_difference(logits16, logits32) < OUTPUT_BOUND
  if variant == "clmser":
    assert image16.dtype == jnp.float32
    assert relative_difference(image16, image32) < OUTPUT_BOUND
  jaxpr = jax.make_jaxpr(lambda v: bf16.apply(v, images, label=label))(variables).jaxpr
  assert {d for operands, _ in _conv_dtypes(jaxpr) for d in operands} == {"bfloat16"}
