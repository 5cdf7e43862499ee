"""Device mesh and shardings: data-parallel over a `data` axis, parameters replicated."""
from __future__ import annotations

import jax
from jax.sharding import NamedSharding, PartitionSpec as P


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


def global_batch(batch, mesh):
  """A host batch (an array or a dict of arrays) placed as global arrays sharded over the
  `data` axis."""
  return jax.device_put(batch, data_sharding(mesh))
