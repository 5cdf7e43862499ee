"""Orbax checkpoints of the train state in `workdir/checkpoints`.

Orbax writes each step into a temporary folder and renames it on commit, so a run killed
mid-save never leaves a checkpoint that restores wrong; restoring picks the latest committed
step.
"""
from __future__ import annotations

import os

import orbax.checkpoint as ocp


def manager(workdir: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), "checkpoints"),
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))


def restore_latest(mngr: ocp.CheckpointManager, abstract_state):
  """`(state, step)` of the latest checkpoint, or `(None, 0)` when there is none."""
  step = mngr.latest_step()
  if step is None:
    return None, 0
  return mngr.restore(step, args=ocp.args.StandardRestore(abstract_state)), step


def save(mngr: ocp.CheckpointManager, step: int, state) -> None:
  mngr.save(step, args=ocp.args.StandardSave(state))
