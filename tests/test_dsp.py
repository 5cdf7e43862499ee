"""The supervised Lmser (DSP, Table 7): the label layer's dualities, the reflections against
the equations, no label at evaluation, the loss and the accuracy by hand, config errors, and
tiny runs of configs/mnist_dsp.py."""
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from clmser_jax import metrics, tasks, train
from clmser_jax.config import ConfigError, model_config, task_config, validate
from clmser_jax.data import Dataset
from clmser_jax.faults import InputError
from clmser_jax.models import VARIANTS, build_model
from clmser_jax.models.reflections import LabelLayer, reflect
from configs import mnist_dsp
from equations import assert_matches, equations_loop, kernels

STRIDES, CHANNELS, K = (1, 2, 2), (4, 6, 8), 5
TOP = 3 * 3 * 8  # flat H_3 of a 12 x 11 input: 12x11 -> 12x11 -> 6x6 -> 3x3, 8 channels


def _model(variant, shapes_only=False):
  """A d = 3 model with K classes, its parameters (or only their shapes) and a batch of
  16 x 16 images."""
  cfg = model_config(variant)
  cfg.update(depth=3, channels=CHANNELS, strides=STRIDES, num_classes=K)
  model = build_model(cfg)
  x = jax.random.uniform(jax.random.key(1), (4, 16, 16, 3))
  init = jax.eval_shape if shapes_only else lambda f, *args: f(*args)
  variables = init(model.init, jax.random.key(0), x)
  return model, variables["params"], x


def _matrix(seed, scale=0.3):
  return scale * jax.random.normal(jax.random.key(seed), (TOP, K))


@pytest.mark.slow
def test_label_layer_top_down_is_the_adjoint():
  """`<V h, z> = <h, V^T z>`: `top_down` unflattens exactly as `bottom_up` flattens."""
  v = _matrix(0)
  layer = LabelLayer(v, v)
  h = jax.random.normal(jax.random.key(1), (2, 3, 3, 8))
  z = jax.random.normal(jax.random.key(2), (2, K))
  np.testing.assert_allclose(jnp.sum(layer.bottom_up(h) * z),
                             jnp.sum(h * layer.top_down(z, h.shape)), rtol=1e-5)


@pytest.mark.parametrize("variant", [*VARIANTS, "cnn"])
def test_label_layer_parameters(variant):
  """DCW: one label matrix `V` beside the `W_i`; without: `Ve` and `Vd`; the CNN: the encoder
  `We_i` and `Ve` only. `V` is (flat H_3 = 4 * 4 * 8 on 16 x 16 inputs, K)."""
  _, params, _ = _model(variant, shapes_only=True)
  dcw = VARIANTS.get(variant, (False, False))[0]
  names = {"clmser": ["V", "W_1", "W_2", "W_3"], "cnn": ["Ve", "We_1", "We_2", "We_3"]}
  want = names["clmser"] if dcw else ["Vd", "Ve", "Wd_1", "Wd_2", "Wd_3", "We_1", "We_2",
                                      "We_3"]
  assert sorted(params) == names.get(variant, want)
  assert params["V" if dcw else "Ve"].shape == (4 * 4 * 8, K)


@pytest.mark.slow
def test_dcw_uses_one_label_matrix_both_ways():
  """CLmser equals CLmser-w whose two label matrices (and kernels) are the same array, and the
  gradient of the tied `V` is the sum of the untied `Ve` (bottom-up) and `Vd` (top-down)."""
  tied, p_tied, x = _model("clmser")
  untied, _, _ = _model("clmser-w")
  p_untied = {f"W{s}_{i}": p_tied[f"W_{i}"] for s in "ed" for i in (1, 2, 3)}
  p_untied |= {"Ve": p_tied["V"], "Vd": p_tied["V"]}
  label = jnp.array([0, 1, 2, 3])

  def loss(model):
    def fn(p):
      reconstruction, logits = model.apply({"params": p}, x, label=label)
      return jnp.sum((reconstruction - x) ** 2) + jnp.sum(logits ** 2)
    return fn

  np.testing.assert_allclose(loss(tied)(p_tied), loss(untied)(p_untied), rtol=1e-5)
  g_tied, g_untied = jax.grad(loss(tied))(p_tied), jax.grad(loss(untied))(p_untied)
  np.testing.assert_allclose(g_tied["V"], g_untied["Ve"] + g_untied["Vd"], rtol=1e-4,
                             atol=1e-7)
  assert float(jnp.max(jnp.abs(g_untied["Vd"]))) > 1e-4  # the top-down use counts


@pytest.mark.slow
@pytest.mark.parametrize("dcw,dpn,r", [(True, True, 1), (True, True, 3), (False, True, 2),
                                       (True, False, 1), (False, False, 1)])
@pytest.mark.parametrize("clamp", [False, True])
@pytest.mark.parametrize("remat", [False, True])
def test_reflections_with_label_layer_match_equations(dcw, dpn, r, clamp, remat):
  x = jax.random.uniform(jax.random.key(9), (2, 12, 11, 3))
  enc = kernels(0, CHANNELS)
  dec = enc if dcw else kernels(1, CHANNELS)
  up = _matrix(2)
  down = up if dcw else _matrix(3)
  onehot = jax.nn.one_hot(jnp.array([1, 3]), K) if clamp else None
  got = reflect(x, enc, dec, STRIDES, f=jax.nn.relu, dpn=dpn, reflections=r,
                top=LabelLayer(up, down, onehot), remat=remat)
  want = equations_loop(x, enc, dec, STRIDES, jax.nn.relu, dpn, r, (up, down, onehot))
  for a, b in zip(got, want):
    assert_matches(a, b)


@pytest.mark.slow
def test_clamped_label_reaches_the_reconstruction_not_the_logits():
  """Training clamps the label in the last top-down pass only: with 2 reflections the
  reconstruction depends on it, the logits (last bottom-up pass) do not."""
  x = jax.random.uniform(jax.random.key(9), (2, 12, 11, 3))
  enc, up = kernels(0, CHANNELS), _matrix(2)
  out = [reflect(x, enc, enc, STRIDES, f=jax.nn.relu, dpn=True, reflections=2,
                 top=LabelLayer(up, up, jax.nn.one_hot(jnp.array(labels), K)))
         for labels in ([1, 3], [4, 0])]
  assert float(jnp.max(jnp.abs(out[0][0] - out[1][0]))) > 1e-3
  np.testing.assert_array_equal(out[0][1], out[1][1])


@pytest.mark.slow
def test_evaluation_sees_no_label():
  """`eval_step` on the same images with other labels: the same reconstruction, and the
  accuracy is that of the same argmax (all right against it, all wrong against argmax + 1)."""
  config = mnist_dsp.get_config("clmser,tiny")
  model = build_model(config.model)
  x = jax.random.uniform(jax.random.key(1), (4, 16, 16, 3))
  state = train.create_train_state(jax.random.key(0), model, optax.adam(1e-3), x.shape)
  _, logits = model.apply({"params": state.params}, x)
  guess = jnp.argmax(logits, -1)
  runs = [train.eval_step(state, {"image": x, "label": labels}, config.task)
          for labels in (guess, (guess + 1) % 10)]
  np.testing.assert_array_equal(runs[0][0], runs[1][0])
  np.testing.assert_array_equal(runs[0][1]["accuracy"], 1.0)
  np.testing.assert_array_equal(runs[1][1]["accuracy"], 0.0)
  np.testing.assert_array_equal(runs[0][1]["mse"], runs[1][1]["mse"])


def test_dsp_loss_by_hand():
  task = task_config("dsp", class_weight=0.5)
  batch = {"image": np.full((2, 2, 2, 3), 0.5, np.float32), "label": np.array([2, 1])}
  reconstruction = jnp.full((2, 2, 2, 3), 0.7)  # MSE 0.04
  logits = jnp.array([[0.0, 0.0, 0.0], [0.0, math.log(2.0), 0.0]])  # p = 1/3, then 2/4
  cross_entropy = (math.log(3.0) + math.log(2.0)) / 2
  np.testing.assert_allclose(tasks.loss((reconstruction, logits), batch, task),
                             0.04 + 0.5 * cross_entropy, rtol=1e-5)
  np.testing.assert_allclose(tasks.loss((None, logits), batch, task), 0.5 * cross_entropy,
                             rtol=1e-5)  # the CNN: cross-entropy only


def test_accuracy_by_hand():
  logits = jnp.array([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
  np.testing.assert_array_equal(metrics.accuracy(logits, jnp.array([1, 1, 2])), [1, 0, 1])


def _dsp(**changes):
  config = mnist_dsp.get_config("clmser,tiny")
  for field, value in changes.items():
    *parents, leaf = field.split("__")
    node = config
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


@pytest.mark.parametrize("changes,pattern", [
    (dict(dataset="embedded"), r"^config\.dataset='embedded' .*labelled dataset"),
    (dict(dataset="folder:/data"), r"^config\.dataset='folder:/data' .*labelled dataset"),
    (dict(dataset="tfds:places365_small"),
     r"^config\.dataset='tfds:places365_small' .*labelled dataset"),
    (dict(model__num_classes=0), r"^config\.model\.num_classes=0 .*>= 2"),
    (dict(model__num_classes=-1), r"^config\.model\.num_classes=-1 .*non-negative"),
    (dict(task__class_weight=0.0), r"^config\.task\.class_weight=0\.0 .*positive"),
    (dict(task__name="reconstruct"), r"^config\.model\.num_classes=10 .*task\.name='dsp'"),
])
def test_bad_dsp_config_is_named(changes, pattern):
  with pytest.raises(ConfigError, match=pattern):
    validate(_dsp(**changes))


def test_cnn_is_for_dsp_only_and_feed_forward():
  config = mnist_dsp.get_config("cnn,tiny")
  config.model.dpn = True
  with pytest.raises(ConfigError, match=r"^config\.model\.name='cnn' needs model\.dcw=False"):
    validate(config)
  config = mnist_dsp.get_config("cnn,tiny")
  config.task = task_config("reconstruct")
  config.model.num_classes = 0
  with pytest.raises(ConfigError, match=r"^config\.model\.name='cnn' .*task\.name='dsp'"):
    validate(config)
  config = mnist_dsp.get_config("unet,tiny")
  with pytest.raises(ConfigError, match=r"^config\.model\.name='unet' .*'clmser' or 'cnn'"):
    validate(config)


def test_dataset_without_labels_is_an_input_error():
  images = np.zeros((2, 16, 16, 3), np.float32)
  task = task_config("dsp")
  with pytest.raises(InputError, match=r"^config\.dataset has no labels"):
    tasks.check_labels(Dataset((images[0],), tuple(images), 16), task, 10)
  labelled = Dataset((images[0],), tuple(images), 16, np.zeros(1, np.int32),
                     np.zeros(2, np.int32), 7)
  with pytest.raises(InputError, match=r"num_classes=10 but the dataset has 7 classes"):
    tasks.check_labels(labelled, task, 10)
  tasks.check_labels(labelled, task, 7)


@pytest.mark.parametrize("variant", [*VARIANTS, "cnn"])
def test_configs(variant):
  config = mnist_dsp.get_config(variant)
  validate(config)
  assert (config.dataset, config.image_size, config.model.num_classes) == ("digits", 16, 10)
  for name, size in (("mnist", 28), ("fashion_mnist", 28), ("cifar10", 32)):
    config = mnist_dsp.get_config(f"{variant},{name}")
    assert (config.dataset, config.image_size) == (f"tfds:{name}", size)
  with pytest.raises(ValueError, match=r"'svhn'.* unknown"):
    mnist_dsp.get_config(f"{variant},svhn")


@pytest.mark.slow
@pytest.mark.parametrize("variant,keys", [
    ("clmser", {"accuracy", "l1", "mse", "psnr", "ssim"}),
    ("cnn", {"accuracy"}),  # Table 7: the CNN has no reconstruction columns
])
def test_tiny_run(tmp_path, variant, keys):
  config = mnist_dsp.get_config(f"{variant},tiny")
  assert int(train.train_and_evaluate(config, str(tmp_path)).step) == 3
  with open(tmp_path / "metrics.jsonl") as f:
    lines = [json.loads(line) for line in f]
  evals = [l for l in lines if l["split"] == "eval"]
  assert [l["step"] for l in evals] == [3]
  assert set(evals[0]) == {"step", "split"} | keys
  assert 0.0 <= evals[0]["accuracy"] <= 1.0
  assert all(np.isfinite(l["loss"]) for l in lines if l["split"] == "train")
  assert (tmp_path / "images" / "eval_0000003.png").exists() == (variant == "clmser")
