"""Device mesh, shardings and the multi-process job: data-parallel over a `data` axis that
spans every device of every process, parameters replicated."""
from __future__ import annotations

from typing import Mapping

import jax
from jax.sharding import NamedSharding, PartitionSpec as P

from clmser_jax.config import ConfigError

_EXPLICIT = ("coordinator_address", "num_processes", "process_id")


def distributed_options(multihost: bool, coordinator_address: str | None,
                        num_processes: int | None, process_id: int | None,
                        environ: Mapping[str, str]) -> dict | None:
  """Keyword arguments for `jax.distributed.initialize`, or None for a one-process run.

  Explicit flags go together; `multihost` (or a SLURM step with more than one task) leaves
  the coordinator, process count and id to JAX's cluster detection (TPU pod, SLURM, MPI).
  Raises `ConfigError` for incomplete or contradictory flags.
  """
  given = dict(zip(_EXPLICIT, (coordinator_address, num_processes, process_id)))
  missing = [name for name, value in given.items() if value is None]
  if len(missing) not in (0, len(_EXPLICIT)):
    raise ConfigError(f"--{', --'.join(_EXPLICIT)} go together: --{', --'.join(missing)} "
                      "missing (or give none of them and pass --multihost to detect the "
                      "cluster)")
  if not missing:
    if num_processes < 1 or not 0 <= process_id < num_processes:
      raise ConfigError(f"--process_id={process_id} with --num_processes={num_processes} is "
                        "not allowed: 0 <= process_id < num_processes")
    if ":" not in coordinator_address:
      raise ConfigError(f"--coordinator_address={coordinator_address!r} is not allowed: "
                        "host:port of process 0")
    return given
  if multihost or int(environ.get("SLURM_STEP_NUM_TASKS", environ.get("SLURM_NTASKS", 1))) > 1:
    return {}
  return None


def make_mesh() -> jax.sharding.Mesh:
  """A 1-D mesh over every device of every process, axis name `data`.

  The axis is `Auto`: XLA propagates shardings and inserts the gradient all-reduce, so the
  kernels' weight gradients (which contract over the sharded batch) need no annotations.
  """
  return jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))


def data_sharding(mesh) -> NamedSharding:
  """Batches split along their leading axis."""
  return NamedSharding(mesh, P("data"))


def replicated(mesh) -> NamedSharding:
  """Parameters and optimizer state: a full copy on every device."""
  return NamedSharding(mesh, P())


def check_batch_size(batch_size: int, devices: int, processes: int) -> None:
  """The global batch must split evenly over the devices (and so over the processes)."""
  if batch_size % devices:
    raise ConfigError(f"config.batch_size={batch_size} is not allowed: a multiple of the "
                      f"{devices} devices ({processes} process(es)), so every device gets "
                      "the same number of rows")


def process_rows(mesh, batch_size: int) -> slice:
  """The rows of a global batch that this process's devices hold (contiguous)."""
  index_map = data_sharding(mesh).addressable_devices_indices_map((batch_size,))
  spans = [index[0].indices(batch_size)[:2] for index in index_map.values()]
  start, stop = min(s for s, _ in spans), max(e for _, e in spans)
  assert stop - start == sum(e - s for s, e in spans), "process rows are not contiguous"
  return slice(start, stop)


def global_batch(rows, mesh, batch_size: int):
  """This process's `rows` of the batch (an array or a dict of arrays), assembled with the
  other processes' rows into global arrays of `batch_size` rows sharded over `data`."""
  return jax.tree.map(
      lambda r: jax.make_array_from_process_local_data(data_sharding(mesh), r,
                                                       (batch_size, *r.shape[1:])), rows)
