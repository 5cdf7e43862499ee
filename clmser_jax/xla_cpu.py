"""`jit` with XLA:CPU options chosen for CLmser's convolutions; elsewhere it is `jax.jit`.

XLA:CPU hands convolutions to YNNPACK by default. On CLmser's convolutions (3x3, 3-256
channels) XLA's own Eigen convolutions are faster where the work is large. Measured on 2 Xeon
cores against XLA's defaults, side by side in one process (`benchmarks/RESULTS.md`, section
"XLA:CPU options"): the official network's train step 1.10-1.27x, inference at batch 32
1.37-1.66x, the paper's CLmser train step 1.08-1.12x; inference at batch 1-8 reads 0.85-0.95x
there, but the same in separate processes. Matrix products (the kernel gradients of
`ops.weight_gradient`) stay with YNNPACK (moving them too changed nothing).

The option is one of XLA's experimental ones and may change name between jaxlib releases:
`compiler_options` checks once that this jaxlib accepts it and otherwise logs a warning and
compiles with XLA's defaults (the same numbers up to rounding, only slower).
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


def compiler_options(backend: str | None = None,
                     options: dict[str, str] | None = None) -> dict[str, str] | None:
  """`options` (default `CPU_OPTIONS`) where `backend` (default JAX's) is the CPU and this
  jaxlib accepts them; None otherwise (XLA's defaults)."""
  options = CPU_OPTIONS if options is None else options
  if (backend or jax.default_backend()) != "cpu" or not _accepted(tuple(options.items())):
    return None
  return dict(options)


def jit(fn, **kwargs):
  """`jax.jit(fn, **kwargs)` compiled with `compiler_options()`."""
  return jax.jit(fn, compiler_options=compiler_options(), **kwargs)
