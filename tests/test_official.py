"""The official network against a PyTorch reimplementation of the authors' code, and the
converter of their weights (CMACH508/CLmser `model/*.py`, `modules/nets_builders.py`).

`official_generator` (`benchmarks/torch_official.py`) is written from their module files,
independently of our code: it owns the same tensors under the same state-dict keys and runs
their forward pass. Weights and BatchNorm statistics are randomised, saved as a `.pth` like
their trainer's, and read back through the converter's own functions.
"""
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clmser_jax import checkpoint, train
from clmser_jax.official import convert as convert_official
from clmser_jax.config import ConfigError, model_config
from clmser_jax.faults import InputError
from clmser_jax.models import VARIANTS, build_model  # (dcw: shared kernels, dpn: skips)
from configs.official_celeba import get_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(depth=3, channels=(4, 8, 16), strides=(1, 2, 2))


def tiny_model_config(variant):
  config = model_config(variant, "celeba", official=True)
  config.update(TINY)
  return config


def _random_arrays(variant, config, seed=0):
  """A state dict of random numpy arrays for the converter's checks (no PyTorch needed)."""
  rng = np.random.default_rng(seed)
  arrays = {k: rng.standard_normal(s).astype(np.float32)
            for k, s in convert_official.expected_shapes(config).items()}
  if VARIANTS[variant][0]:
    keys = convert_official.decoder_kernel_keys(config.depth)
    for i, key in enumerate(keys):
      arrays[key] = arrays[f"DownBlocks.{i}.conv2d.weight"]
  return arrays


# ----------------------------------------------------------------------------- converter checks

@pytest.mark.slow
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_random_state_dict_converts(variant):
  config = tiny_model_config(variant)
  variables = convert_official.to_variables(_random_arrays(variant, config), variant, config)
  model = build_model(config)
  reference = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
  shapes = lambda tree: jax.tree.map(jnp.shape, tree)
  assert shapes(variables) == shapes(reference)


@pytest.mark.parametrize("edit,pattern", [
    (lambda a: a.pop("UpBlocks.0.bn.running_var"),
     r"missing keys \['UpBlocks\.0\.bn\.running_var'\]"),
    (lambda a: a.update({"UpBlocks.7.bn.weight": np.ones(4)}),
     r"unexpected keys \['UpBlocks\.7\.bn\.weight'\]"),
    (lambda a: a.update({"DownBlocks.1.conv2d.weight": np.ones((8, 4, 5, 5))}),
     r"DownBlocks\.1\.conv2d\.weight has shape \(8, 4, 5, 5\), expected \(8, 4, 3, 3\)"),
    (lambda a: a.update({"DownBlocks.2.bn.running_mean": np.ones(8)}),
     r"DownBlocks\.2\.bn\.running_mean has shape \(8,\), expected \(16,\)"),
])
def test_bad_state_dict_names_the_key(edit, pattern):
  config = tiny_model_config("clmser")
  arrays = _random_arrays("clmser", config)
  edit(arrays)
  with pytest.raises(convert_official.ConversionError, match=pattern):
    convert_official.to_variables(arrays, "clmser", config)


def test_num_batches_tracked_is_ignored():
  config = tiny_model_config("clmser")
  arrays = _random_arrays("clmser", config)
  arrays["DownBlocks.0.bn.num_batches_tracked"] = np.array(7)
  convert_official.to_variables(arrays, "clmser", config)


@pytest.mark.parametrize("saved,requested,pattern", [
    ("clmser-w", "clmser", r"OutBlock\.dconv2d\.weight differs from DownBlocks\.0\."
                           r"conv2d\.weight: this looks like a clmser-w or cae checkpoint"),
    ("clmser-n", "cae", r"looks like a clmser or clmser-n checkpoint"),
])
def test_wrong_variant(saved, requested, pattern):
  config = tiny_model_config(saved)
  with pytest.raises(convert_official.ConversionError, match=pattern):
    convert_official.to_variables(_random_arrays(saved, config), requested, config)


def test_config_must_be_the_official_network():
  config = get_config("clmser")
  config.model.fusion = "sum"
  with pytest.raises(ConfigError, match=r"config\.model\.fusion='sum' is not the official"):
    convert_official.check_official(config, "clmser")
  with pytest.raises(ConfigError, match=r"dcw=True, dpn=True\) is not --variant cae"):
    convert_official.check_official(get_config("clmser"), "cae")


# ------------------------------------------------------------- PyTorch reference (needs torch)

def _torch():
  return pytest.importorskip(
      "torch", reason="comparisons with the official PyTorch network need torch "
                      "(pip install 'clmser-jax[test]' or torch==2.13.0)")


def official_generator(variant, channels, strides, seed):
  """Their `Generator` (`benchmarks/torch_official.py`), skipping the test without torch."""
  _torch()
  from benchmarks import torch_official
  return torch_official.official_generator(variant, channels, strides, seed)


def randomise_batch_norms(generator, x, seed):
  """Running statistics near the real ones (one training pass with momentum 1), then
  perturbed, and random affine parameters: eval mode differs from train mode everywhere."""
  torch = _torch()
  norms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
  gen = torch.Generator().manual_seed(seed)
  rand = lambda t, lo, hi: lo + (hi - lo) * torch.rand(t.shape, generator=gen)
  with torch.no_grad():
    for bn in norms:
      bn.momentum = 1.0
    generator.train()(x)
    for bn in norms:
      bn.momentum = 0.1
      bn.weight.copy_(rand(bn.weight, 0.5, 1.5))
      bn.bias.copy_(rand(bn.bias, -0.2, 0.2))
      bn.running_mean.add_(rand(bn.running_mean, -0.1, 0.1))
      bn.running_var.mul_(rand(bn.running_var, 0.7, 1.4))


class ConfigParser:
  """Stands in for their `parse_config.ConfigParser`, which their trainer pickles."""

  def __init__(self):
    self._config = {"optimizer": {"type": "Adam", "args": {"lr": 0.001, "amsgrad": True}}}
    self._save_dir = pathlib.PurePosixPath("saved/models/CLmser")


def save_like_their_trainer(generator, path):
  """Their trainer's checkpoint dict, in the legacy (non-zip) format of 0.4-era PyTorch."""
  torch = _torch()
  torch.save({"arch": "Generator", "epoch": 50, "state_dict": generator.state_dict(),
              "monitor_best": 0.01, "config": ConfigParser()},
             path, _use_new_zipfile_serialization=False)


def _nchw(x):
  return _torch().from_numpy(np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2))))


def _nhwc(t):
  return np.transpose(t.detach().cpu().numpy(), (0, 2, 3, 1))


def _converted(generator, variant, config, tmp_path):
  path = tmp_path / f"{variant}.pth"
  save_like_their_trainer(generator, path)
  arrays = convert_official.state_dict_arrays(convert_official.load_pth(str(path)))
  return convert_official.to_variables(arrays, variant, config)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_eval_mode_matches_official_at_256(variant, tmp_path):
  """Table 2's CelebA network at 256 x 256: max |ours - theirs| < 1e-4. PyTorch runs on CUDA
  where there is a GPU (`benchmarks/accelerator_check.sh` runs this with TF32 off)."""
  torch = _torch()
  from benchmarks.runners import torch_device
  config = model_config(variant, "celeba", official=True)
  generator = official_generator(variant, config.channels, config.strides, seed=1)
  rng = np.random.default_rng(2)
  stats_x, x = (rng.uniform(-1, 1, (2, 256, 256, 3)).astype(np.float32) for _ in range(2))
  randomise_batch_norms(generator, _nchw(stats_x), seed=3)
  with torch.no_grad():
    theirs = _nhwc(generator.to(torch_device()).eval()(_nchw(x).to(torch_device())))
  generator.cpu()
  ours = np.asarray(jax.jit(build_model(config).apply)(
      _converted(generator, variant, config, tmp_path), x))
  assert theirs.std() > 0.05  # a live, unsaturated output: the comparison means something
  np.testing.assert_array_less(np.max(np.abs(ours - theirs)), 1e-4)


@pytest.mark.parametrize("variant", ["clmser", "cae"])
def test_train_mode_matches_official_and_updates_running_averages(variant, tmp_path):
  """Batch statistics in the forward pass; running mean and unbiased running variance
  updated with momentum 0.1, as `nn.BatchNorm2d.train()` does."""
  torch = _torch()
  config = tiny_model_config(variant)
  generator = official_generator(variant, config.channels, config.strides, seed=4)
  rng = np.random.default_rng(5)
  stats_x, x = (rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32) for _ in range(2))
  randomise_batch_norms(generator, _nchw(stats_x), seed=6)
  before = _converted(generator, variant, config, tmp_path)
  with torch.no_grad():
    theirs = _nhwc(generator.train()(_nchw(x)))
  after = _converted(generator, variant, config, tmp_path)
  ours, updates = build_model(config).apply(before, x, train=True, mutable=["batch_stats"])
  np.testing.assert_allclose(ours, theirs, atol=1e-5)
  for name, stats in after["batch_stats"].items():
    assert not np.allclose(before["batch_stats"][name]["var"], stats["var"])
    for field in ("mean", "var"):
      np.testing.assert_allclose(updates["batch_stats"][name][field], stats[field],
                                 rtol=1e-5, atol=1e-6)


def test_bare_zip_state_dict_with_data_parallel_prefix(tmp_path):
  torch = _torch()
  config = tiny_model_config("clmser-w")
  generator = official_generator("clmser-w", config.channels, config.strides, seed=7)
  path = tmp_path / "bare.pth"
  torch.save({f"module.{k}": v for k, v in generator.state_dict().items()}, path)
  arrays = convert_official.state_dict_arrays(convert_official.load_pth(str(path)))
  variables = convert_official.to_variables(arrays, "clmser-w", config)
  expected = generator.state_dict()["UpBlocks.1.dconv2d.weight"].numpy()
  np.testing.assert_array_equal(variables["params"]["Wd_3"], np.transpose(expected, (2, 3, 1, 0)))


def _tiny_official_run(variant, steps):
  config = get_config(variant)
  config.update(dict(dataset="embedded", resize=0, image_size=16, batch_size=4,
                     num_train_steps=steps, eval_every_steps=steps,
                     checkpoint_every_steps=steps, log_every_steps=1, num_eval_images=4))
  config.model.update(TINY)
  return config


@pytest.mark.slow
def test_converted_checkpoint_serves_inference_and_resumes_training(tmp_path):
  torch = _torch()
  config = _tiny_official_run("clmser", steps=2)
  generator = official_generator("clmser", config.model.channels, config.model.strides, seed=8)
  x = np.random.default_rng(10).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
  randomise_batch_norms(generator, _nchw(x[::-1].copy()), seed=11)
  pth, out = tmp_path / "clmser.pth", str(tmp_path / "run")
  save_like_their_trainer(generator, pth)
  convert_official.convert(str(pth), "clmser", out, config)
  assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["0"]
  with pytest.raises(InputError, match="already holds checkpoints"):
    convert_official.convert(str(pth), "clmser", out, config)

  # Inference: restore like train_and_evaluate does, evaluate like eval_step does.
  model = build_model(config.model)
  fresh = train.create_train_state(jax.random.key(0), model,
                                   train.make_optimizer(config.optimizer), (1, 16, 16, 3))
  restored, step, _ = checkpoint.restore_latest(checkpoint.manager(out), fresh)
  assert step == 0
  ours = restored.apply_fn(train.model_variables(restored, restored.params), x)
  with torch.no_grad():
    np.testing.assert_allclose(ours, _nhwc(generator.eval()(_nchw(x))), atol=1e-5)

  converted = convert_official.to_variables(
      convert_official.state_dict_arrays(generator.state_dict()), "clmser", config.model)
  state = train.train_and_evaluate(config, out)
  assert int(state.step) == 2
  # Two AMSGrad steps of lr 1e-3 from the converted weights, not from a fresh init.
  for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(converted["params"])):
    assert np.max(np.abs(np.asarray(a) - np.asarray(b))) <= 2.1e-3
  assert jax.tree.structure(state.batch_stats) == jax.tree.structure(converted["batch_stats"])


@pytest.mark.slow
def test_command_line_reports_a_bad_key_in_one_line(tmp_path):
  torch = _torch()
  config = model_config("clmser", "celeba", official=True)  # the converter's default config
  generator = official_generator("clmser", config.channels, config.strides, seed=9)
  state_dict = generator.state_dict()
  del state_dict["DownBlocks.0.bn.weight"]
  torch.save({"state_dict": state_dict}, tmp_path / "broken.pth")
  result = subprocess.run(
      [sys.executable, "-m", "clmser_jax.convert_official", f"--pth={tmp_path / 'broken.pth'}",
       "--variant=clmser", f"--out={tmp_path / 'out'}"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(
      "convert_official: input error: state dict does not match the official 7-layer")
  assert "missing keys ['DownBlocks.0.bn.weight']" in last
  assert not os.path.exists(tmp_path / "out")


@pytest.mark.slow
def test_command_line_converts_with_config_overrides(tmp_path):
  torch = _torch()
  generator = official_generator("cae", TINY["channels"], TINY["strides"], seed=12)
  torch.save(generator.state_dict(), tmp_path / "cae.pth")
  overrides = [f"--config.model.{k}={v}" for k, v in TINY.items()]
  result = subprocess.run(
      [sys.executable, "-m", "clmser_jax.convert_official", f"--pth={tmp_path / 'cae.pth'}",
       "--variant=cae", f"--out={tmp_path / 'out'}", "--config=configs/official_celeba.py:cae",
       *overrides],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert os.listdir(tmp_path / "out" / "checkpoints") == ["0"]
