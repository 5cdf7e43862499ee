"""Data parallelism: the job's flags, how a batch splits, and that 8 devices or 2 processes
train the same model as 1 device (to float tolerance: only the order of the gradient sums
differs)."""
import signal

import numpy as np
import pytest

import subprocesses
import tiny
from clmser_jax import parallel, train
from clmser_jax.config import ConfigError

# Float32 sums over a batch split 8 or 2 ways differ from one sum in the last bits.
TOLERANCE = dict(rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("flags, expected", [
    ((False, None, None, None, {}), None),
    ((True, None, None, None, {}), {}),
    ((False, None, None, None, {"SLURM_NTASKS": "4"}), {}),
    ((False, None, None, None, {"SLURM_NTASKS": "1"}), None),
    ((False, "10.0.0.1:1234", 2, 1, {}),
     dict(coordinator_address="10.0.0.1:1234", num_processes=2, process_id=1)),
])
def test_distributed_options(flags, expected):
  assert parallel.distributed_options(*flags) == expected


@pytest.mark.parametrize("flags, message", [
    ((False, "h:1", 2, None, {}), r"go together: --process_id missing"),
    ((True, None, 4, None, {}), r"--coordinator_address, --process_id missing"),
    ((False, "h:1", 2, 2, {}), r"--process_id=2 with --num_processes=2"),
    ((False, "h:1", 0, 0, {}), r"--num_processes=0"),
    ((False, "h", 2, 0, {}), r"host:port"),
])
def test_distributed_options_errors(flags, message):
  with pytest.raises(ConfigError, match=message):
    parallel.distributed_options(*flags)


def test_batch_size_must_split_over_devices():
  parallel.check_batch_size(16, 8, 2)
  with pytest.raises(ConfigError, match=r"batch_size=12 .* multiple of the 8 devices"):
    parallel.check_batch_size(12, 8, 2)


def test_one_process_holds_every_row():
  assert parallel.process_rows(parallel.make_mesh(), 8) == slice(0, 8)


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory):
  """The reference: the tiny run in this (1-device, 1-process) test process."""
  workdir = tmp_path_factory.mktemp("one_device")
  train.train_and_evaluate(tiny.get_config(), str(workdir))
  return workdir


def _assert_same_training(workdir, reference):
  lines, expected = subprocesses.train_lines(workdir), subprocesses.train_lines(reference)
  assert [l["step"] for l in lines] == [l["step"] for l in expected] == [1, 2, 3, 4, 5, 6]
  np.testing.assert_allclose([l["loss"] for l in lines], [l["loss"] for l in expected],
                             **TOLERANCE)
  subprocesses.assert_trees_equal(subprocesses.final_state(workdir),
                                  subprocesses.final_state(reference), **TOLERANCE)


@pytest.mark.slow
def test_eight_devices_match_one(tmp_path, one_device_run):
  result = subprocesses.run(subprocesses.main_command(tmp_path), devices=8)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "data parallel over 8 devices in 1 process(es)" in result.stderr
  _assert_same_training(tmp_path, one_device_run)


def _local_job(workdir, *flags):
  """`launch/local.sh -n 2` on the tiny run."""
  return subprocesses.run(["bash", "launch/local.sh", "-n", "2", "--config=tests/tiny.py",
                           f"--workdir={workdir}", *flags])


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, one_device_run):
  result = _local_job(tmp_path)
  assert result.returncode == 0, result.stderr[-3000:]
  _assert_same_training(tmp_path, one_device_run)


@pytest.mark.slow
def test_the_local_launcher_returns_a_failure(tmp_path):
  result = _local_job(tmp_path, "--config.batch_size=3")
  assert result.returncode == 1
  assert ("clmser_jax: config error: config.batch_size=3 is not allowed: a multiple of the 2 "
          "devices (2 process(es))") in result.stderr


LONG_RUN = ("--config.num_train_steps=100000", "--config.eval_every_steps=100000",
            "--config.checkpoint_every_steps=100000", "--heartbeat_timeout_seconds=10")


def _training(workdir):
  def condition():
    """the first logged step"""
    return (workdir / "metrics.jsonl").exists()
  return condition


@pytest.mark.slow
def test_a_dead_process_stops_the_others(tmp_path):
  """Process 1 is killed mid-run; process 0 must end with a clear error, not hang."""
  processes = subprocesses.start_job(tmp_path, 2, *LONG_RUN)
  try:
    subprocesses.wait_for(_training(tmp_path))
    processes[1].send_signal(signal.SIGKILL)
    assert subprocesses.finish(processes[0], timeout=60) != 0
  finally:
    subprocesses.stop(processes)
  log = (tmp_path / "log0").read_text()
  assert "clmser_jax: process 0 lost contact with the rest of the job" in log, log[-3000:]


@pytest.mark.slow
def test_a_preemption_notice_to_one_process_stops_the_job_at_one_step(tmp_path):
  """SIGTERM to process 1 only: both processes save the same step and exit 0, and one
  process can resume from what two wrote."""
  processes = subprocesses.start_job(tmp_path, 2, *LONG_RUN)
  try:
    subprocesses.wait_for(_training(tmp_path))
    processes[1].send_signal(signal.SIGTERM)
    assert [subprocesses.finish(p, timeout=60) for p in processes] == [0, 0]
  finally:
    subprocesses.stop(processes)
  steps = {int((tmp_path / f"log{i}").read_text().split(
      "preempted: saved the checkpoint at step ")[1].split(";")[0]) for i in range(2)}
  assert len(steps) == 1 and subprocesses.committed_steps(tmp_path) == list(steps)
  config = tiny.get_config()
  config.num_train_steps = steps.pop() + 1
  assert int(train.train_and_evaluate(config, str(tmp_path)).step) == config.num_train_steps
