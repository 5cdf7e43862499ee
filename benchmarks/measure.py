"""Timing and memory primitives shared by the benchmarks: interleaved medians, compile time,
peak memory. Frameworks are timed round-robin in one process, so load from other processes
hits them alike."""
from __future__ import annotations

import os
import resource
import statistics
import time
from typing import Callable


def seconds(fn: Callable[[], object]) -> tuple[object, float]:
  """`fn()` and its wall-clock duration."""
  start = time.perf_counter()
  result = fn()
  return result, time.perf_counter() - start


def max_rss_mib() -> float:
  """This process's peak resident set so far (a high-water mark: it never goes down)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def first_call(fn: Callable[[], None]) -> float:
  """Runs `fn` once (its warm-up) and returns how far it raised the peak RSS, in MiB: a lower
  bound of its own peak when an earlier, larger run already set the mark."""
  before = max_rss_mib()
  fn()
  return max_rss_mib() - before


def interleaved_medians(fns: dict[str, Callable[[], None]], repeats: int, warmup: int = 1,
                        settle_s: float = 0.1, hot_s: float = 0.1) -> dict[str, float]:
  """Median seconds per call of each of `fns`, called round-robin `repeats` times after
  `warmup` calls each; every `fn` must block until its work is done.

  Each turn of a `fn` starts after `settle_s` of sleep: the thread pools of XLA:CPU and of
  PyTorch's OpenMP keep spinning for a while after their work, and without the pause each
  framework would be timed against the other's spinning threads (a 3-40x distortion). The
  turn then calls `fn` untimed for at least `hot_s` (at least once) and times the next call,
  which so runs hot, as a frame of a stream or a step of a training run does. On these
  2-core virtual machines multi-threaded work runs at about half speed for its first 30-40 ms
  after 0.1 s of idling, in both frameworks: the official CelebA network at batch 1 took
  21.5 ms (JAX) and 19.8 ms (PyTorch) as the first call after the pause, 12.4 and 14.9 ms as
  the fourth. That is the machine waking up, not either framework.
  """
  for fn in fns.values():
    for _ in range(warmup):
      fn()
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      time.sleep(settle_s)
      start = time.perf_counter()
      fn()
      while time.perf_counter() - start < hot_s:
        fn()
      times[name].append(seconds(fn)[1])
  return {name: statistics.median(t) for name, t in times.items()}


def xla_memory_mib(compiled) -> float | None:
  """XLA's own account of an executable's peak: arguments, outputs and temporaries (less
  donated aliases), or None where the backend keeps none."""
  analysis = compiled.memory_analysis()
  if analysis is None:
    return None
  total = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes
           + analysis.temp_size_in_bytes - analysis.alias_size_in_bytes)
  return total / 2**20


def load_average() -> str:
  return "/".join(f"{v:.2f}" for v in os.getloadavg())
