"""Preemption, kills, non-finite values and bad input: each ends in a resumable state or one
clear line."""
import os
import signal

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import subprocesses
import tiny
from clmser_jax import checkpoint, faults, train

STEPS = 16
# Every step is checkpointed, so kills land in and between saves.
RESILIENCE_FLAGS = (f"--config.num_train_steps={STEPS}", "--config.checkpoint_every_steps=1",
                    f"--config.eval_every_steps={STEPS}")


def test_check_finite_names_the_step_and_the_quantity():
  good = {"loss": 0.5, "grad_norm": 1.0}
  faults.check_finite(1, [good, good])
  with pytest.raises(faults.NonFiniteError,
                     match=r"^step 8: non-finite grad_norm \(grad_norm=inf\)"):
    faults.check_finite(7, [good, {"loss": 0.5, "grad_norm": np.float32("inf")},
                            {"loss": np.nan, "grad_norm": 1.0}])


def test_sigterm_is_noticed_and_the_old_handler_restored():
  before = signal.getsignal(signal.SIGTERM)
  with faults.Preemption(mngr=None) as preemption:
    assert not preemption.reached(1)
    os.kill(os.getpid(), signal.SIGTERM)
    assert preemption.reached(2)
  assert signal.getsignal(signal.SIGTERM) is before


def _resumed_step(log: str) -> int:
  return int(log.split("resumed from the checkpoint at step ")[1].split()[0])


def _killed_run(workdir, name, moment):
  """Starts a run and SIGKILLs it once `moment()` holds; returns the step it resumed from
  and whether the kill interrupted a save."""
  committed = subprocesses.committed_steps(workdir)
  process = subprocesses.start(subprocesses.main_command(workdir, *RESILIENCE_FLAGS),
                               workdir / f"{name}.log")
  try:
    subprocesses.wait_for(lambda: moment(committed) or process.poll() is not None)
    process.send_signal(signal.SIGKILL)
  finally:
    subprocesses.finish(process)
  return _resumed_step((workdir / f"{name}.log").read_text()), committed, bool(
      subprocesses.unfinished_saves(workdir))


def test_preemption_and_kills_resume_bit_exact(tmp_path):
  """SIGTERM saves and exits 0; SIGKILL during a save and just after a commit loses only
  the steps since the last commit; the final state matches an uninterrupted run bit for bit."""
  config = tiny.get_config()
  config.num_train_steps, config.checkpoint_every_steps, config.eval_every_steps = (
      STEPS, 1, STEPS)
  train.train_and_evaluate(config, str(tmp_path / "uninterrupted"))

  workdir = tmp_path / "interrupted"
  workdir.mkdir()
  preempted = subprocesses.start(subprocesses.main_command(workdir, *RESILIENCE_FLAGS),
                                 workdir / "preempted.log")
  subprocesses.wait_for(lambda: (workdir / "metrics.jsonl").exists())
  preempted.send_signal(signal.SIGTERM)
  assert subprocesses.finish(preempted) == 0
  log = (workdir / "preempted.log").read_text()
  step = int(log.split("preempted: saved the checkpoint at step ")[1].split(";")[0])
  assert 1 <= step < STEPS and subprocesses.committed_steps(workdir)[-1] == step

  during_save = lambda before: bool(subprocesses.unfinished_saves(workdir))
  after_commit = lambda before: subprocesses.committed_steps(workdir)[-1] > before[-1]
  interrupted_a_save = False
  for name, moment in (("during_save", during_save), ("after_commit", after_commit)):
    resumed, committed, left_unfinished = _killed_run(workdir, name, moment)
    assert resumed == committed[-1]
    interrupted_a_save |= left_unfinished
  assert interrupted_a_save, "no kill landed inside a save"

  result = subprocesses.run(subprocesses.main_command(workdir, *RESILIENCE_FLAGS))
  assert result.returncode == 0, result.stderr[-3000:]
  subprocesses.assert_trees_equal(subprocesses.final_state(workdir),
                                  subprocesses.final_state(tmp_path / "uninterrupted"))
  assert subprocesses.train_lines(workdir) == subprocesses.train_lines(
      tmp_path / "uninterrupted")


def test_unwritable_workdir(tmp_path):
  (tmp_path / "file").write_text("")
  with pytest.raises(faults.InputError, match=r"workdir .*file/run' is not writable"):
    train.train_and_evaluate(tiny.get_config(), str(tmp_path / "file" / "run"))


def test_checkpoint_from_a_different_model_config(tmp_path, monkeypatch):
  other = tiny.get_config()
  other.num_train_steps = 1
  other.model.channels = (4, 16)  # tiny's are (4, 8): W_2 is (3, 3, 4, 8)
  train.train_and_evaluate(other, str(tmp_path))

  def restore(*args, **kwargs):
    raise AssertionError("the mismatch is found in the metadata, before any array is read")

  monkeypatch.setattr(ocp.CheckpointManager, "restore", restore)
  with pytest.raises(faults.InputError, match=(
      rf"^the checkpoint in {tmp_path} was written by a different model config: its params/W_2 "
      r"has shape \(3, 3, 4, 16\), this config's \(3, 3, 4, 8\)$")):
    train.train_and_evaluate(tiny.get_config(), str(tmp_path))


def test_difference_names_a_missing_an_extra_and_a_reshaped_leaf():
  array = lambda *shape: jax.ShapeDtypeStruct(shape, np.float32)
  state = {"step": array(), "params": {"W_1": array(3, 3, 3, 4), "W_2": array(3, 3, 4, 8)}}
  assert checkpoint.difference(state, state) is None
  fewer = {"step": array(), "params": {"W_1": array(3, 3, 3, 4)}}
  assert checkpoint.difference(fewer, state) == "it has no params/W_2"
  assert checkpoint.difference(state, fewer) == (
      "it has params/W_2, which this config's train state has not")
  wider = {"step": array(), "params": {"W_1": array(3, 3, 3, 8), "W_2": array(3, 3, 8, 8)}}
  assert checkpoint.difference(wider, state) == (
      "its params/W_1 has shape (3, 3, 3, 8), this config's (3, 3, 3, 4)")


@pytest.mark.parametrize("flags, line", [
    (("--num_processes=2",), "clmser_jax: config error: --coordinator_address, "
                             "--num_processes, --process_id go together"),
    (("--config.dataset=folder:/no/such/folder",),
     "clmser_jax: input error: dataset folder '/no/such/folder' does not exist"),
])
def test_main_ends_with_one_line(tmp_path, flags, line):
  result = subprocesses.run(subprocesses.main_command(tmp_path, *flags), timeout=60)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith(line), result.stderr[-2000:]
