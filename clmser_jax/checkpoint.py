"""Orbax checkpoints of the train state in `workdir/checkpoints`.

Orbax writes each step into a temporary folder and renames it on commit, so a run killed
mid-save never leaves a checkpoint that restores wrong; restoring picks the latest committed
step. Every process calls `save` and `restore`: orbax writes and reads collectively.
"""
from __future__ import annotations

import contextlib
import os
import tempfile

import orbax.checkpoint as ocp

from clmser_jax.faults import InputError, one_line


def ensure_writable(workdir: str) -> None:
  """Creates `workdir`; raises `InputError` when it cannot be created or written to."""
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as error:
    raise InputError(f"workdir {workdir!r} is not writable: {error.strerror or error}") from None


def manager(workdir: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
  """The manager of `workdir/checkpoints`; it deletes saves a killed run left unfinished."""
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), "checkpoints"),
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           cleanup_tmp_directories=True))


def reader(workdir: str) -> ocp.CheckpointManager:
  """A read-only manager of an existing `workdir/checkpoints`: it creates, saves and cleans
  up nothing, so it can read a run that is still training (whose unfinished saves are
  orbax's temporary folders, never listed as steps)."""
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), "checkpoints"),
      options=ocp.CheckpointManagerOptions(read_only=True, create=False,
                                           save_interval_steps=0))


def restore_latest(mngr: ocp.CheckpointManager, abstract_state):
  """`(state, step)` of the latest checkpoint, or `(None, 0)` when there is none.

  A checkpoint whose tree or shapes differ from `abstract_state` raises `InputError`.
  """
  step = mngr.latest_step()
  if step is None:
    return None, 0
  try:
    return mngr.restore(step, args=ocp.args.StandardRestore(abstract_state)), step
  except ValueError as error:
    workdir = os.path.dirname(str(mngr.directory))
    raise InputError(f"the checkpoint in {workdir} was written by a different model config: "
                     f"{one_line(str(error))}") from None


def save(mngr: ocp.CheckpointManager, step: int, state) -> None:
  mngr.save(step, args=ocp.args.StandardSave(state))


@contextlib.contextmanager
def finishing(mngr: ocp.CheckpointManager):
  """Waits for in-flight saves on the way out, also when the run stops on an error, so the
  last good checkpoint is committed."""
  try:
    yield mngr
  finally:
    mngr.wait_until_finished()
