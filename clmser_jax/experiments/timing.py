"""Per-frame inference time (Table 6): compile excluded, device synchronised, repeated."""
from __future__ import annotations

import statistics
import time

import jax
import numpy as np

from clmser_jax import ops


def per_frame_ms(apply_fn, variables, images: np.ndarray, batch_size: int,
                 repeats: int = 5) -> dict[str, float]:
  """Milliseconds per image of `apply_fn(variables, batch)` over `images` in batches.

  The first call compiles and is not timed; each repeat runs every batch, waiting for the
  device (`block_until_ready`) before the clock stops. Returns the median and the spread of
  the per-repeat averages, as the paper averages over its test set and 5 repeats.
  """
  fn = jax.jit(apply_fn, compiler_options=ops.compiler_options())
  batches = [jax.device_put(images[i:i + batch_size])
             for i in range(0, len(images) - batch_size + 1, batch_size)]
  if not batches:
    raise ValueError(f"need at least batch_size={batch_size} images, got {len(images)}")
  jax.block_until_ready(fn(variables, batches[0]))
  per_repeat = []
  for _ in range(repeats):
    start = time.perf_counter()
    for batch in batches:
      jax.block_until_ready(fn(variables, batch))
    per_repeat.append((time.perf_counter() - start) * 1e3 / (len(batches) * batch_size))
  return {"ms_per_frame": statistics.median(per_repeat),
          "ms_per_frame_min": min(per_repeat), "ms_per_frame_max": max(per_repeat)}
