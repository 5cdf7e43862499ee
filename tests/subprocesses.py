"""Training runs in fresh Python processes (forced host devices, several processes on
localhost, signals and kills), and what they leave in their workdir. Every wait is bounded.

The runs use `tests/tiny.py` and share a persistent compilation cache, so only the first
process compiles.
"""
from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import psutil

REPO = pathlib.Path(__file__).resolve().parents[1]
TIMEOUT = 240  # seconds for any one run; a hang fails the test instead of stalling CI


def environment(devices: int = 1) -> dict[str, str]:
  """The environment of a CPU run with `devices` forced host devices; `PYTHON` is this
  interpreter, for `launch/local.sh`."""
  env = dict(os.environ, PYTHONPATH=str(REPO), PYTHON=sys.executable, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             JAX_COMPILATION_CACHE_DIR=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                    "clmser_jax_test_cache"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  return env


def free_port() -> int:
  """A TCP port on 127.0.0.1 that nothing listens on right now."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def main_command(workdir, *flags) -> list[str]:
  return [sys.executable, "-m", "clmser_jax.main", "--config=tests/tiny.py",
          f"--workdir={workdir}", *flags]


def run(command: list[str], devices: int = 1,
        timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
  """Runs `command` from the repository root; its output is captured as text."""
  return subprocess.run(command, cwd=REPO, env=environment(devices), capture_output=True,
                        text=True, timeout=timeout, check=False)


def start(command: list[str], log: pathlib.Path, devices: int = 1) -> subprocess.Popen:
  """Starts `command` from the repository root with its output going to `log`."""
  with open(log, "w") as out:
    return subprocess.Popen(command, cwd=REPO, env=environment(devices), stdout=out,
                            stderr=subprocess.STDOUT)


def start_job(workdir: pathlib.Path, processes: int, *flags) -> list[subprocess.Popen]:
  """Starts a `processes`-process job on 127.0.0.1; process `i` logs to `workdir/log{i}`."""
  workdir.mkdir(parents=True, exist_ok=True)
  job = (f"--coordinator_address=127.0.0.1:{free_port()}", f"--num_processes={processes}")
  return [start(main_command(workdir, *flags, *job, f"--process_id={i}"), workdir / f"log{i}")
          for i in range(processes)]


def wait_for(condition, timeout: float = TIMEOUT, poll: float = 0.01) -> None:
  """Polls `condition()` until it is true; fails the test after `timeout` seconds."""
  deadline = time.monotonic() + timeout
  while not condition():
    if time.monotonic() > deadline:
      raise TimeoutError(f"gave up after {timeout}s waiting for "
                         f"{condition.__doc__ or condition.__name__}")
    time.sleep(poll)


def finish(process: subprocess.Popen, timeout: float = TIMEOUT) -> int:
  """The exit code of `process`; it is killed (and the test fails) if it outlives `timeout`."""
  try:
    return process.wait(timeout)
  except subprocess.TimeoutExpired:
    process.kill()
    process.wait()
    raise


def running(process: psutil.Process) -> bool:
  """Whether `process` still runs (a zombie, ended but not yet reaped, does not)."""
  try:
    return process.status() != psutil.STATUS_ZOMBIE
  except psutil.NoSuchProcess:
    return False


def stop(processes: list[subprocess.Popen]) -> None:
  """Kills whatever is left of `processes` (cleanup after a failed test)."""
  for process in processes:
    if process.poll() is None:
      process.kill()
    process.wait()


def committed_steps(workdir) -> list[int]:
  folder = pathlib.Path(workdir, "checkpoints")
  return sorted(int(p.name) for p in folder.glob("*") if p.name.isdigit()) if folder.exists() \
      else []


def unfinished_saves(workdir) -> list[str]:
  """Checkpoint folders orbax has not committed yet (`N.orbax-checkpoint-tmp...`)."""
  return [p.name for p in pathlib.Path(workdir, "checkpoints").glob("*tmp*")]


def final_state(workdir) -> dict:
  """The latest checkpoint in `workdir` as numpy arrays, whatever topology wrote it."""
  path = pathlib.Path(workdir, "checkpoints", str(committed_steps(workdir)[-1]), "default")
  checkpointer = ocp.StandardCheckpointer()
  target = jax.tree.map(lambda m: np.zeros(m.shape, m.dtype),
                        checkpointer.metadata(path).item_metadata.tree)
  return checkpointer.restore(path, target)


WALL_CLOCK = ("steps_per_sec", "images_per_sec", "input_wait_fraction")


def train_lines(workdir) -> list[dict]:
  """The `train` lines of `metrics.jsonl`, without the wall-clock fields (`WALL_CLOCK`)."""
  with open(pathlib.Path(workdir, "metrics.jsonl")) as f:
    lines = [json.loads(line) for line in f]
  return [{k: v for k, v in l.items() if k not in WALL_CLOCK} for l in lines
          if l["split"] == "train"]


def assert_trees_equal(a, b, rtol: float = 0.0, atol: float = 0.0) -> None:
  """Same structure and values (bit for bit unless a tolerance is given)."""
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)
