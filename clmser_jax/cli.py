"""What every command line shares: a bad flag or an error the user can fix ends the run with
one line on stderr (`NAME: KIND: what, and what to do`) and exit code 1, never a traceback;
a run stopped by a preemption notice (`faults.Preempted`, its checkpoint saved) exits with 0.

`run(name, main, define_flags)` defines and parses the flags (a config file that raises, an
override of a field that does not exist, a value of the wrong type: one line) and calls
`main(values)`, mapping the errors of `ERRORS` to their line.
"""
from __future__ import annotations

import errno
import sys
from typing import Callable

from absl import app, flags, logging

from clmser_jax import faults
from clmser_jax.config import ConfigError

ERRORS = ((ConfigError, "config error"), (faults.InputError, "input error"),
          (faults.NonFiniteError, "training diverged"), (faults.WorkerError, "input pipeline"),
          (faults.DiskFullError, "disk full"))


_CONFIG_ERRORS = (flags.Error, AttributeError, KeyError, OSError, TypeError, ValueError)


def _what(error: BaseException) -> str:
  """What went wrong, in one line: for a missing config field, its name and ml_collections'
  "did you mean"; the last line of a traceback that `config_flags` folds into its message
  (the config file's own error); else the message."""
  if isinstance(error, (AttributeError, KeyError)):
    while error.args and isinstance(error.args[0], BaseException):
      error = error.args[0]
    return faults.one_line(f"the config has no field {error.args[0] if error.args else error}")
  text = str(error)
  if "Traceback (most recent call last)" in text:
    text = [line for line in text.splitlines() if line.strip()][-1]
  return faults.one_line(text)


def _parse(name: str, argv: list[str]) -> list[str]:
  try:
    return flags.FLAGS(argv)
  except _CONFIG_ERRORS as error:
    sys.exit(f"{name}: flag error: {_what(error)}")


def _value(holder):
  """A flag's value. A `config_flags` config is built when first read: a config file that
  fails to load, or an override of a field the config lacks (`--config.model.refelctions`),
  raises `ConfigError` with one line then."""
  try:
    value = holder.value
    if hasattr(value, "to_dict"):
      value.to_dict()  # a config that failed to load raises on its first use
    return value
  except _CONFIG_ERRORS as error:
    raise ConfigError(_what(error)) from None


def exit_line(name: str, error: BaseException) -> str | None:
  """The one line that ends `name` for `error`; None when it is not a user's error."""
  for kind, label in ERRORS:
    if isinstance(error, kind):
      return f"{name}: {label}: {faults.one_line(str(error), 2000)}"
  if isinstance(error, OSError) and error.errno == errno.ENOSPC:
    return f"{name}: disk full: {faults.one_line(str(error))}"
  return None


def run(name: str, main: Callable[[dict], None], define_flags: Callable[[], dict]) -> None:
  """The command line `name`: defines its flags (`define_flags()`, returning `{key: flag}`;
  a config flag reads `sys.argv` as it is defined), parses them and calls `main({key:
  value})`."""
  try:
    holders = define_flags()
  except _CONFIG_ERRORS as error:
    sys.exit(f"{name}: flag error: {_what(error)}")

  def entry(argv):
    del argv
    try:
      main({key: _value(holder) for key, holder in holders.items()})
    except faults.Preempted as notice:  # saved: a clean exit, and the same command resumes
      logging.warning("%s", notice)
    except Exception as error:  # pylint: disable=broad-except
      line = exit_line(name, error)
      if line is None:
        raise
      sys.exit(line)

  app.run(entry, flags_parser=lambda argv: _parse(name, argv))
