"""Orbax checkpoints of the train state in `workdir/checkpoints`, and the workdir's lock.

Orbax writes each step into a temporary folder and renames it on commit, so a run killed
mid-save never leaves a checkpoint that restores wrong; saves are synchronous, so a save that
fails (a full disk) fails at its own step. Restoring takes the newest checkpoint that loads,
skipping damaged ones with a warning that says why. Every process calls `save` and `restore`:
orbax writes and reads collectively. Each checkpoint also keeps, in its metadata, the training
metrics logged since the last `metrics.jsonl` row (`log_window`), so a resumed run writes the
rows an uninterrupted one would.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import os
import shutil
import socket
import tempfile

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from clmser_jax.faults import DiskFullError, InputError, one_line

LOCK_FILE = ".lock"
UNRESTORABLE = "[]\\"  # orbax saves under a path with `[...]` or `\\` but cannot restore from it
DAMAGED = "checkpoints_damaged"  # where training moves checkpoints that cannot be read


def ensure_writable(workdir: str) -> None:
  """Creates `workdir`; raises `InputError` when it cannot be created or written to, or when
  its path holds a character of `UNRESTORABLE`, before anything is written there."""
  bad = "".join(sorted(set(os.path.abspath(workdir)) & set(UNRESTORABLE)))
  if bad:
    raise InputError(f"workdir {workdir!r} contains {bad!r}: orbax saves checkpoints under such "
                     "a path but cannot restore them, so the run could never resume; choose a "
                     f"path without {' or '.join(map(repr, UNRESTORABLE))}")
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as error:
    raise InputError(f"workdir {workdir!r} is not writable: {error.strerror or error}") from None


@contextlib.contextmanager
def exclusive(workdir: str):
  """Holds the workdir's lock (`flock` on `workdir/.lock`) while the run lasts: a second run
  on the same workdir is refused with `InputError` naming the first. The kernel releases it
  when the process ends, however it ends, so a killed run never blocks its resume. Process 0
  takes it for a multi-process job (the one process that writes logs)."""
  if jax.process_index() != 0:
    yield
    return
  fd = os.open(os.path.join(workdir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:
    holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
    os.close(fd)
    raise InputError(f"workdir {workdir!r} is in use by another run ({holder}); wait for it "
                     "to end, or give this run another --workdir") from None
  now = datetime.datetime.now(datetime.timezone.utc)
  os.ftruncate(fd, 0)
  os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {now:%Y-%m-%d %H:%M} "
               "UTC".encode())
  try:
    yield
  finally:
    os.close(fd)


def manager(workdir: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
  """The manager of `workdir/checkpoints`; it deletes saves a killed run left unfinished."""
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), "checkpoints"),
      item_handlers=ocp.StandardCheckpointHandler(),
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           cleanup_tmp_directories=True,
                                           enable_async_checkpointing=False))


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


def _why(step: int, error: Exception) -> str:
  return f"step {step} ({one_line(str(error) or type(error).__name__, 200)})"


def _set_aside(mngr: ocp.CheckpointManager, step: int) -> str:
  """Moves checkpoint `step` to `workdir/checkpoints_damaged/STEP-TIME`; returns where."""
  workdir = os.path.dirname(str(mngr.directory))
  now = datetime.datetime.now(datetime.timezone.utc)
  target = os.path.join(workdir, DAMAGED, f"{step}-{now:%Y%m%dT%H%M%S}")
  os.makedirs(os.path.dirname(target), exist_ok=True)
  shutil.move(os.path.join(str(mngr.directory), str(step)), target)
  return target


def restore_latest(mngr: ocp.CheckpointManager, abstract_state, set_aside: bool = False):
  """`(state, step, log_window)` of the newest checkpoint that loads, or `(None, 0, None)`
  when there is none.

  A checkpoint whose tree or shapes differ from `abstract_state` raises `InputError`, naming
  the first difference (`difference`, from orbax's metadata: no array is read). One that cannot
  be read (a truncated file, an emptied or missing metadata file) is skipped with a warning
  that says why; with `set_aside` (training) it is moved to `workdir/checkpoints_damaged/`, so
  the run can save that step again (a multi-process job asks the user to move it instead).
  When none can be read, `InputError` says why for each.
  """
  workdir = os.path.dirname(str(mngr.directory))
  skipped = []
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      stored = mngr.item_metadata(step)
      stored = getattr(stored, "tree", stored)
      if not stored:
        raise ValueError("its metadata is empty")
    except Exception as error:  # pylint: disable=broad-except  (orbax and TensorStore raise many kinds)
      skipped.append((step, error))
      continue
    mismatch = difference(stored, abstract_state)
    if mismatch is not None:
      raise InputError(f"the checkpoint in {workdir} was written by a different model config: "
                       f"{mismatch}")
    try:
      state = mngr.restore(step, args=ocp.args.StandardRestore(abstract_state))
    except Exception as error:  # pylint: disable=broad-except  (the tree matched: it is damage)
      skipped.append((step, error))
      continue
    if skipped and set_aside and jax.process_count() > 1:
      raise InputError(f"the checkpoints of {workdir} at {', '.join(_why(*s) for s in skipped)} "
                       f"cannot be read; move them to {os.path.join(workdir, DAMAGED)} and run "
                       f"again to resume from step {step}")
    for bad, error in skipped:
      where = f"; moved to {_set_aside(mngr, bad)}" if set_aside else ""
      logging.warning("skipping the checkpoint at step %d of %s, which cannot be read (%s)%s",
                      bad, workdir, one_line(str(error), 200), where)
    if skipped and set_aside:
      mngr.reload()
    custom = mngr.metadata(step).custom_metadata or {}
    return state, step, custom.get("log_window")
  if skipped:
    raise InputError(f"no checkpoint in {workdir} can be read: "
                     + "; ".join(_why(s, e) for s, e in skipped)
                     + "; move its checkpoints folder away to start afresh")
  return None, 0, None


def _nbytes(state) -> int:
  return sum(np.dtype(leaf.dtype).itemsize * int(np.prod(leaf.shape))
             for leaf in jax.tree.leaves(state) if hasattr(leaf, "shape"))


def _disk_full(workdir: str, step: int, need: int) -> DiskFullError:
  free = shutil.disk_usage(workdir).free
  return DiskFullError(errno.ENOSPC, f"cannot write the checkpoint of step {step} in "
                       f"{workdir}: {free / 2**20:.0f} MiB free on its disk, the checkpoint "
                       f"needs about {need / 2**20:.0f} MiB; the checkpoints before it are "
                       "kept: free some space and run again to resume")


def _is_disk_full(error: BaseException) -> bool:
  text = str(error)
  return (getattr(error, "errno", None) == errno.ENOSPC or "No space left" in text
          or "RESOURCE_EXHAUSTED" in text)


def save(mngr: ocp.CheckpointManager, step: int, state, log_window=None) -> None:
  """Saves `state` (and the metrics `log_window` since the last logged row) as `step`;
  `DiskFullError` when the disk cannot hold it, checked first and at the write."""
  workdir = os.path.dirname(str(mngr.directory))
  need = _nbytes(state)
  if shutil.disk_usage(workdir).free < need:
    raise _disk_full(workdir, step, need)
  try:
    mngr.save(step, args=ocp.args.StandardSave(state),
              custom_metadata={"log_window": log_window})
  except Exception as error:  # pylint: disable=broad-except
    if _is_disk_full(error):
      raise _disk_full(workdir, step, need) from None
    raise


@contextlib.contextmanager
def finishing(mngr: ocp.CheckpointManager):
  """Waits for in-flight saves on the way out, also when the run stops on an error, so the
  last good checkpoint is committed."""
  try:
    yield mngr
  finally:
    mngr.wait_until_finished()
