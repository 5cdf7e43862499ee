"""XLA:CPU options for the CPU formulation of the convolutions (`ops.compiler_options`).

XLA:CPU hands convolutions to YNNPACK by default. On CLmser's convolutions (3x3, 3-256
channels) XLA's own Eigen convolutions are faster where the work is large (measured side by
side: `benchmarks/RESULTS.md`, "XLA:CPU options"). Matrix products (the kernel gradients)
stay with YNNPACK.

The option is one of XLA's experimental ones and may change name between jaxlib releases:
`options` checks once, with a compile of its own, that this jaxlib accepts it, and otherwise
logs a warning and leaves XLA's defaults (the same numbers up to rounding, only slower).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from absl import logging

# YNNPACK keeps the products (individual dots, and those feeding reductions) and gives up
# convolutions: XLA's default list without LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION.
CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type":
               "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"}


@functools.cache
def _accepted(options: tuple[tuple[str, str], ...]) -> bool:
  try:
    jax.jit(jnp.negative).lower(jnp.zeros(2)).compile(compiler_options=dict(options))
  except jax.errors.JaxRuntimeError as error:  # INVALID_ARGUMENT: no such option or value
    logging.warning("XLA:CPU rejects %s (%s); compiling with its defaults", dict(options),
                    str(error).splitlines()[0])
    return False
  return True


def options() -> dict[str, str] | None:
  """`CPU_OPTIONS` where the backend is the CPU and this jaxlib accepts them; else None."""
  if jax.default_backend() != "cpu" or not _accepted(tuple(CPU_OPTIONS.items())):
    return None
  return dict(CPU_OPTIONS)
