"""Preemption, kills, non-finite values and bad input: each ends in a resumable state or one
clear line."""
import errno
import logging
import os
import re
import shutil
import signal
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from PIL import Image

import subprocesses
import tiny
from clmser_jax import checkpoint, cli, faults, inference, train, writers
from clmser_jax.official import convert as convert_official

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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


# The adverse cases of issue 26: each ends in a clean recovery or one line, and nothing in the
# workdir is lost or left unusable.


def _uninterrupted(tmp_path, **fields):
  config = tiny.get_config(steps=fields.pop("steps", 6))
  config.update(fields)
  train.train_and_evaluate(config, str(tmp_path / "uninterrupted"))
  return config


@pytest.mark.slow
def test_a_diverged_state_is_never_saved_and_inference_refuses_one(tmp_path):
  config = tiny.get_config(steps=4)
  config.optimizer.name, config.optimizer.learning_rate = "sgd", 1e30
  config.checkpoint_every_steps = 1
  with pytest.raises(faults.NonFiniteError, match=r"^step 1: .*param_norm.*; stopped before "
                                                  r"saving it: no checkpoint was written$"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert subprocesses.committed_steps(tmp_path / "run") == []
  # A checkpoint that holds a diverged state (written by other means) gives no image.
  good = tiny.get_config(steps=1)
  state = train.train_and_evaluate(good, str(tmp_path / "good"))
  broken = state.replace(params=jax.tree.map(lambda p: p * np.float32("nan"), state.params))
  mngr = checkpoint.manager(str(tmp_path / "good"))
  mngr.save(2, args=ocp.args.StandardSave(broken))
  mngr.wait_until_finished()
  image = np.random.default_rng(0).integers(0, 255, (16, 16, 3), np.uint8)
  Image.fromarray(image).save(tmp_path / "photo.png")
  result = subprocesses.run([sys.executable, "-m", "clmser_jax.reconstruct",
                             f"--workdir={tmp_path / 'good'}", f"--image={tmp_path / 'photo.png'}",
                             f"--out={tmp_path / 'out.png'}"], timeout=120)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      "clmser_jax.reconstruct: input error: the checkpoint at step 2 gives non-finite outputs: "
      "the run diverged before it; use a run that did not")
  assert not (tmp_path / "out.png").exists()


def test_exploding_parameters_are_caught_before_a_save():
  good = {"loss": 0.5, "grad_norm": 1.0, "param_norm": 10.0}
  faults.check_finite(1, [good], max_param_norm=100.0)
  with pytest.raises(faults.NonFiniteError,
                     match=r"^step 4: the parameters exploded \(param_norm=1e\+09, above 100"):
    faults.check_finite(3, [good, {**good, "param_norm": 1e9}], max_param_norm=100.0)


@pytest.mark.slow
def test_a_refused_resume_leaves_the_workdir_as_it_was(tmp_path):
  train.train_and_evaluate(tiny.get_config(steps=3), str(tmp_path))
  before = _files_but_the_lock(tmp_path)
  other = tiny.get_config(steps=6)
  other.model.channels = (4, 16)
  with pytest.raises(faults.InputError, match="written by a different model config"):
    train.train_and_evaluate(other, str(tmp_path))
  shorter = tiny.get_config(steps=2)
  with pytest.raises(faults.InputError, match=r"is at step 3, past config.num_train_steps=2: "
                                              r"nothing to train"):
    train.train_and_evaluate(shorter, str(tmp_path))
  assert _files_but_the_lock(tmp_path) == before  # config.json included: inference still loads


def test_a_workdir_orbax_cannot_restore_from_is_refused_before_anything_is_written(tmp_path):
  """A checkpoint saved under `[...]` saves, and then no step of it restores: refused first."""
  workdir = tmp_path / "tanh_in_[-1_1]"
  with pytest.raises(faults.InputError, match=r"contains '\[\]'.*could never resume"):
    train.train_and_evaluate(tiny.get_config(steps=2), str(workdir))
  assert not workdir.exists()


def _files_but_the_lock(workdir):
  """Every file's bytes, but the lock's: each run that takes the lock writes its holder there."""
  return {p.relative_to(workdir): p.read_bytes() for p in workdir.rglob("*")
          if p.is_file() and p.name != checkpoint.LOCK_FILE}


def _truncate_data(folder):
  """Every data file cut to 10 bytes: the tree's metadata, stored with them, is lost too."""
  for data in folder.glob("default/**/d/*"):
    data.write_bytes(data.read_bytes()[:10])


def _halve_largest_data_file(folder):
  """The arrays' data cut in half: the metadata reads, the restore fails."""
  largest = max(folder.glob("default/**/d/*"), key=lambda f: f.stat().st_size)
  largest.write_bytes(largest.read_bytes()[:largest.stat().st_size // 2])


DAMAGE = {
    "truncated data": _truncate_data,
    "half an array file": _halve_largest_data_file,
    "emptied metadata": lambda folder: (folder / "default" / "_METADATA").write_text(""),
    "deleted manifest": lambda folder: (folder / "default" / "manifest.ocdbt").unlink(),
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, damage, caplog):
  config = _uninterrupted(tmp_path)
  workdir = tmp_path / "run"
  train.train_and_evaluate(tiny.get_config(steps=6), str(workdir))
  DAMAGE[damage](workdir / "checkpoints" / "6")
  run = inference.load_run(str(workdir))  # read-only: skips it, moves nothing
  assert run.step == 3 and (workdir / "checkpoints" / "6").exists()
  with caplog.at_level(logging.WARNING):
    resumed = train.train_and_evaluate(config, str(workdir))
  assert any("skipping the checkpoint at step 6" in r.getMessage() and "moved to" in
             r.getMessage() for r in caplog.records)
  assert len(list((workdir / checkpoint.DAMAGED).iterdir())) == 1
  subprocesses.assert_trees_equal(subprocesses.final_state(workdir),
                                  subprocesses.final_state(tmp_path / "uninterrupted"))
  assert int(resumed.step) == 6
  assert subprocesses.train_lines(workdir) == subprocesses.train_lines(tmp_path / "uninterrupted")


@pytest.mark.slow
def test_no_readable_checkpoint_and_a_damaged_config_are_one_line(tmp_path):
  workdir = tmp_path / "run"
  train.train_and_evaluate(tiny.get_config(steps=3), str(workdir))
  DAMAGE["emptied metadata"](workdir / "checkpoints" / "3")
  with pytest.raises(faults.InputError, match=r"^no checkpoint in .* can be read: step 3 "):
    inference.load_run(str(workdir))
  (workdir / "config.json").write_text('{"model": {')
  with pytest.raises(faults.InputError, match=r"config.json cannot be read .*--config=FILE"):
    inference.load_config(str(workdir))


@pytest.mark.slow
def test_a_damaged_metrics_file_resumes_and_rows_align_to_the_log_windows(tmp_path):
  """A garbage and a torn line in metrics.jsonl block nothing; a resume from a step inside a
  log window (6, windows of 4) writes the rows of an uninterrupted run: the window's first
  steps come back from the checkpoint."""
  fields = dict(steps=12, log_every_steps=4, checkpoint_every_steps=3)
  _uninterrupted(tmp_path, **fields)
  config = tiny.get_config(steps=12)
  config.update(log_every_steps=4, checkpoint_every_steps=3)
  workdir = tmp_path / "run"
  train.train_and_evaluate(config, str(workdir))
  for step in ("9", "12"):
    shutil.rmtree(workdir / "checkpoints" / step)
  with open(workdir / "metrics.jsonl", "a") as f:
    f.write("garbage that is not json\n{\"step\": 13, \"split\": \"tr")
  train.train_and_evaluate(config, str(workdir))
  assert subprocesses.train_lines(workdir) == subprocesses.train_lines(tmp_path / "uninterrupted")
  assert [r["step"] for r in writers.read_metrics(str(workdir), "train")] == [4, 8, 12]


@pytest.mark.slow
def test_a_second_run_on_a_workdir_is_refused_while_the_first_runs(tmp_path):
  first = subprocesses.start(subprocesses.main_command(tmp_path, "--config.num_train_steps=200",
                                                       "--config.eval_every_steps=200"),
                             tmp_path / "first.log")
  try:
    subprocesses.wait_for(lambda: (tmp_path / "metrics.jsonl").exists()
                          or first.poll() is not None)
    second = subprocesses.run(subprocesses.main_command(tmp_path), timeout=120)
  finally:
    first.send_signal(signal.SIGTERM)
    assert subprocesses.finish(first) == 0
  assert second.returncode == 1
  assert re.fullmatch(rf"clmser_jax: input error: workdir '{tmp_path}' is in use by another run "
                      rf"\(pid {first.pid} on .*, since .* UTC\); wait for it to end, or give "
                      r"this run another --workdir", second.stderr.strip().splitlines()[-1])
  steps = [(r["step"], r["split"]) for r in writers.read_metrics(str(tmp_path))]
  assert len(steps) == len(set(steps)) and steps == sorted(steps, key=lambda s: s[0])


@pytest.mark.slow
def test_a_full_disk_is_one_line_at_the_save_that_failed(tmp_path, monkeypatch):
  config = tiny.get_config(steps=6)
  real = shutil.disk_usage
  def nearly_full(path):
    usage = real(path)
    return usage._replace(free=1000 if subprocesses.committed_steps(tmp_path) else usage.free)
  monkeypatch.setattr(checkpoint.shutil, "disk_usage", nearly_full)
  with pytest.raises(faults.DiskFullError, match=(
      rf"^\[Errno 28\] cannot write the checkpoint of step 6 in {tmp_path}: 0 MiB free on its "
      r"disk, the checkpoint needs about 0 MiB; the checkpoints before it are kept")):
    train.train_and_evaluate(config, str(tmp_path))
  assert subprocesses.committed_steps(tmp_path) == [3]
  monkeypatch.undo()
  # The write itself failing for space reads the same.
  def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")
  monkeypatch.setattr(ocp.CheckpointManager, "save", no_space)
  with pytest.raises(faults.DiskFullError, match=r"cannot write the checkpoint of step 6"):
    train.train_and_evaluate(config, str(tmp_path))
  assert cli.exit_line("clmser_jax", faults.DiskFullError(errno.ENOSPC, "cannot write")) == (
      "clmser_jax: disk full: [Errno 28] cannot write")


@pytest.mark.parametrize("content", ["text", "list", "tensor", "bytes"])
def test_convert_official_refuses_a_file_that_is_not_a_state_dict(tmp_path, content):
  torch = pytest.importorskip("torch")
  path = tmp_path / "weights.pth"
  if content == "text":
    path.write_text("not a checkpoint\n")
  elif content == "bytes":
    path.write_bytes(np.random.default_rng(0).bytes(4096))
  else:
    torch.save([1, 2, 3] if content == "list" else torch.zeros(3), path)
  with pytest.raises(convert_official.ConversionError,
                     match=r"is not a PyTorch checkpoint|not a state dict"):
    convert_official.convert(str(path), "clmser", str(tmp_path / "out"),
                             convert_official.load_config(convert_official.DEFAULT_CONFIG,
                                                          "clmser"))
  assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_many_reflections_are_said_up_front(tmp_path, caplog):
  config = tiny.get_config(steps=1)
  config.model.reflections = train.MANY_REFLECTIONS + 1
  with caplog.at_level(logging.WARNING):
    train.train_and_evaluate(config, str(tmp_path))
  assert any(f"model.reflections={train.MANY_REFLECTIONS + 1}: every train step" in
             r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("flag, line", [
    ("--config=tests/no_such_config.py",
     "clmser_jax: config error: Configuration is not available because of an earlier failure "
     "to load: Failed loading config file"),
    ("--config=tests/tiny.py:clmser-x",
     "clmser_jax: flag error: clmser_jax.config.ConfigError: model variant 'clmser-x' is "
     "unknown"),
    ("--config.model.refelctions=4",
     "clmser_jax: flag error: the config has no field 'refelctions' Did you mean "
     "\"reflections\""),
])
@pytest.mark.slow
def test_a_bad_config_flag_is_one_line_without_a_traceback(tmp_path, flag, line):
  command = [sys.executable, "-m", "clmser_jax.main", f"--workdir={tmp_path}", flag]
  if flag.startswith("--config."):
    command.insert(3, "--config=tests/tiny.py")
  result = subprocesses.run(command, timeout=60)
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith(line), result.stderr[-2000:]
