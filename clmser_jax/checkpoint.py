"""Orbax checkpoints of the train state in `workdir/checkpoints`.

Orbax writes each step into a temporary folder and renames it on commit, so a run killed
mid-save never leaves a checkpoint that restores wrong; restoring picks the latest committed
step. Every process calls `save` and `restore`: orbax writes and reads collectively.
"""
from __future__ import annotations

import contextlib
import os
import tempfile

import jax
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
      item_handlers=ocp.StandardCheckpointHandler(),
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           cleanup_tmp_directories=True))


def reader(workdir: str) -> ocp.CheckpointManager:
  """A read-only manager of an existing `workdir/checkpoints`: it creates, saves and cleans
  up nothing, so it can read a run that is still training (whose unfinished saves are
  orbax's temporary folders, never listed as steps)."""
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), "checkpoints"),
      item_handlers=ocp.StandardCheckpointHandler(),
      options=ocp.CheckpointManagerOptions(read_only=True, create=False,
                                           save_interval_steps=0))


def _shapes(tree) -> dict[str, tuple[int, ...]]:
  """Each leaf's shape (a Python number's is `()`), keyed by its path (`params/W_1`,
  `opt_state/0/mu/W_1`, ...)."""
  return {jax.tree_util.keystr(path, simple=True, separator="/"): tuple(getattr(leaf, "shape", ()))
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def difference(stored, abstract_state) -> str | None:
  """The first place where a checkpoint's tree (orbax's metadata, `stored`) and
  `abstract_state` differ, in `abstract_state`'s order (step, params, optimizer state): a path
  only one of them has, or a shape. None where they agree."""
  found, expected = _shapes(stored), _shapes(abstract_state)
  for path in [*expected, *(p for p in found if p not in expected)]:
    if path not in found:
      return f"it has no {path}"
    if path not in expected:
      return f"it has {path}, which this config's train state has not"
    if found[path] != expected[path]:
      return f"its {path} has shape {found[path]}, this config's {expected[path]}"
  return None


def restore_latest(mngr: ocp.CheckpointManager, abstract_state):
  """`(state, step)` of the latest checkpoint, or `(None, 0)` when there is none.

  A checkpoint whose tree or shapes differ from `abstract_state` raises `InputError`, naming
  the first difference (`difference`, from orbax's metadata: no array is read).
  """
  step = mngr.latest_step()
  if step is None:
    return None, 0
  mismatch = difference(mngr.item_metadata(step).tree, abstract_state)
  if mismatch is None:
    try:
      return mngr.restore(step, args=ocp.args.StandardRestore(abstract_state)), step
    except ValueError as error:  # what the metadata does not show: orbax's own checks
      mismatch = one_line(str(error))
  workdir = os.path.dirname(str(mngr.directory))
  raise InputError(f"the checkpoint in {workdir} was written by a different model config: "
                   f"{mismatch}")


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
