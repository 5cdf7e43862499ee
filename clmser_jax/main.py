"""Command line: `python -m clmser_jax.main --config=configs/default.py --workdir=DIR`.

Parses flags, joins the multi-process job when there is one, and calls
`train.train_and_evaluate`; nothing else. Errors the user can fix end the run with one line.
"""
import os
import sys

import jax
from absl import app, flags
from ml_collections import config_flags

from clmser_jax import faults, host_memory, parallel, train
from clmser_jax.config import ConfigError

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/default.py", "Config file; `path:variant` picks a model variant.")
_WORKDIR = flags.DEFINE_string("workdir", "workdir", "Outputs and checkpoints; resumes here.")
_MULTIHOST = flags.DEFINE_bool(
    "multihost", False, "Join a multi-process job found by JAX's cluster detection (TPU pod, "
    "SLURM, MPI). A SLURM step with more than one task is joined without this flag.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0 in a multi-process job; give it "
    "with --num_processes and --process_id.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the job.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index in the job.")
_HEARTBEAT = flags.DEFINE_integer(
    "heartbeat_timeout_seconds", 100, "A process not heard from for this long is taken as "
    "dead and the others stop with an error.")


def main(argv):
  del argv
  try:
    options = parallel.distributed_options(_MULTIHOST.value, _COORDINATOR.value,
                                           _NUM_PROCESSES.value, _PROCESS_ID.value,
                                           os.environ)
    if options is not None:
      jax.distributed.initialize(**options, heartbeat_timeout_seconds=_HEARTBEAT.value)
    host_memory.from_flags()
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except ConfigError as error:
    sys.exit(f"clmser_jax: config error: {error}")
  except faults.InputError as error:
    sys.exit(f"clmser_jax: input error: {error}")
  except faults.NonFiniteError as error:
    sys.exit(f"clmser_jax: training diverged: {error}")
  except jax.errors.JaxRuntimeError as error:
    if jax.process_count() == 1:
      raise
    faults.exit_lost_peer(error)


if __name__ == "__main__":
  app.run(main)
