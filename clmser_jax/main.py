"""Command line: `python -m clmser_jax.main --config=configs/default.py --workdir=DIR`.

Defines and parses the flags (when run, not when imported), joins the multi-process job when
there is one, and calls `train.train_and_evaluate`; nothing else. Errors the user can fix end
the run with one line (`cli.py`).
"""
import os

import jax
from absl import flags
from ml_collections import config_flags

from clmser_jax import cli, cpu, faults, parallel, train

def define_flags() -> dict:
  return dict(
      config=config_flags.DEFINE_config_file(
          "config", "configs/default.py", "Config file; `path:variant` picks a model variant."),
      workdir=flags.DEFINE_string("workdir", "workdir", "Outputs and checkpoints; resumes "
                                  "here."),
      multihost=flags.DEFINE_bool(
          "multihost", False, "Join a multi-process job found by JAX's cluster detection (TPU "
          "pod, SLURM, MPI). A SLURM step with more than one task is joined without this "
          "flag."),
      coordinator_address=flags.DEFINE_string(
          "coordinator_address", None, "host:port of process 0 in a multi-process job; give "
          "it with --num_processes and --process_id."),
      num_processes=flags.DEFINE_integer("num_processes", None, "Processes in the job."),
      process_id=flags.DEFINE_integer("process_id", None, "This process's index in the job."),
      heartbeat=flags.DEFINE_integer(
          "heartbeat_timeout_seconds", 100, "A process not heard from for this long is taken "
          "as dead and the others stop with an error."))


def main(values: dict) -> None:
  options = parallel.distributed_options(values["multihost"], values["coordinator_address"],
                                         values["num_processes"], values["process_id"],
                                         os.environ)
  if options is not None:
    jax.distributed.initialize(**options, heartbeat_timeout_seconds=values["heartbeat"])
  cpu.setup()  # after joining a job (it reads the devices), before any computation
  try:
    train.train_and_evaluate(values["config"], values["workdir"])
  except jax.errors.JaxRuntimeError as error:
    if jax.process_count() == 1:
      raise
    faults.exit_lost_peer(error)


if __name__ == "__main__":
  cli.run("clmser_jax", main, define_flags)
