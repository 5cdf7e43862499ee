"""What stops a run early and how: bad input, non-finite values, preemption.

Bad input the user can fix raises `InputError` (one line); a step whose loss, gradient or
updated parameters are not finite, or whose parameters exploded, raises `NonFiniteError`
naming the step and the quantity, before any state from that step is saved; a full disk raises
`DiskFullError` at the save that failed; SIGTERM (a preemption notice) makes the run save at
the current step and raise `Preempted`, which ends the command with exit code 0 (and ends a
study of many runs too, instead of going on to the next run with this one unfinished); a
process whose peers died stops with one line instead of hanging.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import threading
from typing import Sequence

import jax
from absl import logging


class InputError(ValueError):
  """Data, workdir or checkpoint the run cannot use; the message says which and why."""


class Preempted(Exception):
  """The run saved its checkpoint at a step and stopped on a preemption notice; the same
  command resumes there."""


class WorkerError(RuntimeError):
  """A data worker process died (killed for memory, say): the run stops with one line."""


class NonFiniteError(FloatingPointError):
  """A training step produced a NaN or Inf loss, gradient or parameter, or parameters that
  exploded; its state is never saved."""


class DiskFullError(OSError):
  """A checkpoint or log could not be written for lack of space; the message names the
  workdir and its free space."""


def one_line(text: str, limit: int = 400) -> str:
  """`text` with its whitespace runs (newlines included) collapsed, cut at `limit` chars."""
  line = " ".join(text.split())
  return line if len(line) <= limit else line[:limit] + " ..."


EXPLODED = 1e4  # a parameter norm this many times the run's starting one has exploded


def check_finite(first_step: int, per_step: Sequence[dict[str, float]],
                 max_param_norm: float = math.inf) -> None:
  """Raises `NonFiniteError` at the first of the consecutive steps `first_step, ...` whose
  metrics hold a NaN or Inf, or whose `param_norm` (of the parameters after its update) is
  above `max_param_norm`: the state after that step must never be saved."""
  for step, values in enumerate(per_step, first_step):
    bad = {name: float(v) for name, v in values.items() if not math.isfinite(float(v))}
    if bad:
      described = ", ".join(f"{name}={value}" for name, value in bad.items())
      raise NonFiniteError(f"step {step}: non-finite {', '.join(bad)} ({described})")
    if values.get("param_norm", 0.0) > max_param_norm:
      raise NonFiniteError(f"step {step}: the parameters exploded (param_norm="
                           f"{float(values['param_norm']):.3g}, above {max_param_norm:.3g}, "
                           f"{EXPLODED:g} times the norm the run started from)")


def exit_lost_peer(error: Exception) -> None:
  """Ends this process of a multi-process job at once after a collective failed because
  another process died: one line on stderr, exit code 1.

  `os._exit` skips JAX's exit hook, whose shutdown barrier would wait for the dead process
  until the heartbeat timeout and then abort with a stack dump.
  """
  print(f"clmser_jax: process {jax.process_index()} lost contact with the rest of the job "
        f"(another process probably died); stopping. Cause: {one_line(str(error))}",
        file=sys.stderr, flush=True)
  logging.flush()
  os._exit(1)


class Preemption:
  """Whether the job was told to stop (SIGTERM), agreed by every process at the same step.

  One process: a SIGTERM handler sets a flag. Several processes: JAX's preemption sync
  manager (started by `jax.distributed.initialize`) catches SIGTERM on any host and picks a
  step that all hosts reach, which orbax's `reached_preemption` reports. Use as a context
  manager; the previous SIGTERM handler is restored on exit.
  """

  def __init__(self, mngr):
    self._mngr = mngr
    self._signalled = False
    self._previous = None

  def __enter__(self):
    # Python takes signal handlers only in the main thread; elsewhere SIGTERM stays fatal.
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
    return self

  def __exit__(self, *exc_info):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)

  def _on_sigterm(self, signum, frame):
    del signum, frame
    logging.warning("SIGTERM received: saving a checkpoint after the current step")
    self._signalled = True

  def reached(self, step: int) -> bool:
    """True at the step where the run should save and stop; call once per step."""
    if jax.process_count() == 1:
      return self._signalled
    return self._mngr.reached_preemption(step)
