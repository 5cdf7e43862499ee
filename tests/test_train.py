"""End to end: `train_and_evaluate` on a tiny model, its outputs, and bit-exact resume."""
import functools
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import subprocesses
import tiny
from clmser_jax import faults, train
from clmser_jax.models import build_model


def _metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    lines = [json.loads(line) for line in f]
  for line in lines:
    for field in subprocesses.WALL_CLOCK:
      line.pop(field, None)
  return lines


@pytest.mark.slow
def test_outputs(tmp_path):
  state = train.train_and_evaluate(tiny.get_config(), str(tmp_path))
  assert int(state.step) == 6
  lines = _metrics(tmp_path)
  evals = [l for l in lines if l["split"] == "eval"]
  assert [l["step"] for l in evals] == [3, 6]
  assert set(evals[-1]) == {"step", "split", "l1", "mse", "psnr", "ssim"}
  assert [l["step"] for l in lines if l["split"] == "train"] == [1, 2, 3, 4, 5, 6]
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["3", "6"]
  assert sorted(os.listdir(tmp_path / "images")) == ["eval_0000003.png", "eval_0000006.png"]
  assert os.listdir(tmp_path / "tensorboard")
  with open(tmp_path / "config.json") as f:
    assert json.load(f)["model"]["channels"] == [4, 8]


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["clmser", "unet", "official"])
def test_resume_is_bit_exact(tmp_path, variant):
  full = train.train_and_evaluate(tiny.get_config(variant), str(tmp_path / "full"))
  # Interrupted run: it got to step 4 but its checkpoint at step 4 was lost, so the
  # relaunch restores step 3, drops the metrics logged after it, and redoes 4..6.
  part = str(tmp_path / "part")
  train.train_and_evaluate(tiny.get_config(variant, steps=4), part)
  shutil.rmtree(os.path.join(part, "checkpoints", "4"))
  resumed = train.train_and_evaluate(tiny.get_config(variant), part)
  assert int(resumed.step) == 6
  for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params)):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(jax.tree.leaves(full.opt_state), jax.tree.leaves(resumed.opt_state)):
    np.testing.assert_array_equal(a, b)
  assert type(full) is type(resumed)
  if variant == "official":
    assert jax.tree.leaves(full.batch_stats)
    for a, b in zip(jax.tree.leaves(full.batch_stats), jax.tree.leaves(resumed.batch_stats)):
      np.testing.assert_array_equal(a, b)
  assert _metrics(tmp_path / "full") == _metrics(part)


def test_state_carries_batch_stats_only_with_batch_norm():
  model = build_model(tiny.get_config().model)
  state = train.create_train_state(jax.random.key(0), model, optax.adam(1e-3), (1, 16, 16, 3))
  assert type(state) is train.TrainState
  model = build_model(tiny.get_config("official").model)
  state = train.create_train_state(jax.random.key(0), model, optax.adam(1e-3), (1, 16, 16, 3))
  assert isinstance(state, train.BatchNormTrainState)
  assert sorted(state.batch_stats) == ["bn_U_1", "bn_Y_1", "bn_Y_2"]


def test_learning_rate_decays_at_the_steps():
  opt = tiny.get_config("official").optimizer
  schedule = train.learning_rate(opt)
  assert [float(schedule(s)) for s in (0, 1, 2, 4, 5)] == pytest.approx(
      [1e-3, 1e-3, 1e-4, 1e-4, 1e-5])
  assert train.learning_rate(tiny.get_config().optimizer) == 1e-3


@pytest.mark.slow
def test_training_reduces_the_loss(tmp_path):
  """Step 1's row is the untrained model's loss (the step computes it before its update); 40
  Adam steps halve it (the mean of the last 10 steps, each a different batch)."""
  config = tiny.get_config(steps=40)
  train.train_and_evaluate(config, str(tmp_path))
  losses = [l["loss"] for l in _metrics(tmp_path) if l["split"] == "train"]
  assert len(losses) == 40 and sum(losses[-10:]) / 10 < 0.5 * losses[0]


@pytest.mark.slow
def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
  config = tiny.get_config(steps=1)
  config.optimizer.name = "sgd"
  config.checkpoint_every_steps = 1
  config.log_every_steps = 100  # the check before each save must catch it on its own
  train.train_and_evaluate(config, str(tmp_path))  # a good step 1, checkpointed
  config.num_train_steps, config.optimizer.learning_rate = 4, 1e30  # then it blows up
  with pytest.raises(faults.NonFiniteError,
                     match=r"^step 2: (non-finite|the parameters exploded).*; stopped before "
                           r"saving it: the checkpoint at step 1 is kept"):
    train.train_and_evaluate(config, str(tmp_path))
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1"]


@pytest.mark.slow
def test_remat_trains_like_the_plain_scan_in_less_memory():
  """`model.remat` reaches the train step: at r = 8 two steps give the loss of the plain scan
  (the backward pass recomputes the same numbers), and XLA's account of the step's
  temporaries is smaller (measured 0.63x)."""
  losses, temp = {}, {}
  for remat in (False, True):
    config = tiny.get_config()
    config.model.update(reflections=8, remat=remat)
    model = build_model(config.model)
    state = train.state_from_variables(
        model, optax.adam(1e-2), model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3))))
    batch = {"image": jax.random.uniform(jax.random.key(1), (4, 16, 16, 3))}
    step = jax.jit(functools.partial(train.train_step, task=config.task))
    temp[remat] = step.lower(state, batch).compile().memory_analysis().temp_size_in_bytes
    for _ in range(2):
      state, metrics = step(state, batch)
    losses[remat] = float(metrics["loss"])
  assert losses[True] == pytest.approx(losses[False], rel=1e-5)
  assert temp[True] < 0.8 * temp[False], temp
