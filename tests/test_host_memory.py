"""`cpu.memory.reuse_freed_memory`: a step's temporaries stop being faulted in afresh, and the
policy stays off wherever it cannot apply or would not help, or is switched off."""
import json
import subprocess
import sys

import jax
import jax.extend
import pytest

from clmser_jax import cpu
from clmser_jax.cpu import memory as host_memory
from tests import subprocesses

# A fresh process: a jitted function with one large temporary (a cumulative sum, read at every
# 64th row), and the page faults of each call after the first.
PROBE = """
import json, resource, sys
import jax, jax.numpy as jnp
from clmser_jax.cpu import memory
applied = memory.reuse_freed_memory() if sys.argv[1] == "on" else False
x = jnp.ones((4096, 4096), jnp.float32)
compiled = jax.jit(lambda x: jnp.cumsum(jnp.sin(x), axis=0)[::64].sum()).lower(x).compile()
faults = []
for _ in range(6):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  compiled(x).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(dict(applied=applied, faults=faults[1:],
                      temp=compiled.memory_analysis().temp_size_in_bytes)))
"""


def probe(mode: str) -> dict:
  done = subprocess.run([sys.executable, "-c", PROBE, mode], cwd=subprocesses.REPO,
                        env=subprocesses.environment(1), capture_output=True, text=True,
                        timeout=subprocesses.TIMEOUT, check=True)
  return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(host_memory._mallopt() is None, reason="glibc only")
def test_temporaries_are_no_longer_faulted_in_each_call():
  off, on = probe("off"), probe("on")
  pages = off["temp"] / 4096
  assert off["temp"] >= 64 * 2**20 and on["temp"] == off["temp"]
  # By default every page of the temporary is mapped afresh at every call ...
  assert not off["applied"] and min(off["faults"]) >= 0.9 * pages
  # ... with the policy, the freed temporary is reused: calls fault in next to nothing (the
  # heap may still grow once while other allocations settle).
  assert on["applied"] and sorted(on["faults"])[-2] <= 0.01 * pages


@pytest.fixture
def restore_dispatch():
  yield
  jax.config.update("jax_cpu_enable_async_dispatch", True)


def test_other_c_libraries_are_left_alone(monkeypatch, restore_dispatch):
  monkeypatch.setattr(host_memory.os, "confstr", lambda name: None)  # musl, macOS: no glibc
  assert host_memory._mallopt() is None
  assert not host_memory.reuse_freed_memory()
  assert jax.config.values["jax_cpu_enable_async_dispatch"]


@pytest.fixture
def fresh_backends(monkeypatch):
  """JAX as before its backends start, on a host of `backend` with `devices` devices; records
  mallopt calls and backend restarts."""
  calls = {"mallopt": [], "cleared": 0}
  monkeypatch.setattr(host_memory, "_mallopt", lambda: lambda *a: calls["mallopt"].append(a) or 1)
  monkeypatch.setattr(jax.extend.backend, "clear_backends",
                      lambda: calls.__setitem__("cleared", calls["cleared"] + 1))

  def host(backend, devices):
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    monkeypatch.setattr(jax, "device_count", lambda: devices)
    return calls
  return host


def test_applies_on_one_cpu_device(fresh_backends, restore_dispatch):
  calls = fresh_backends("cpu", 1)
  assert host_memory.reuse_freed_memory()
  assert calls["mallopt"] == [(-4, 0), (-1, 2**31 - 1)] and calls["cleared"] == 0
  assert not jax.config.values["jax_cpu_enable_async_dispatch"]


def test_sharded_cpu_steps_keep_async_dispatch(fresh_backends, restore_dispatch):
  calls = fresh_backends("cpu", 8)
  assert not host_memory.reuse_freed_memory()
  assert calls["mallopt"] == [] and calls["cleared"] == 1
  assert jax.config.values["jax_cpu_enable_async_dispatch"]


def test_accelerators_get_no_mallopt(fresh_backends, restore_dispatch):
  calls = fresh_backends("gpu", 1)
  assert not host_memory.reuse_freed_memory()
  assert calls["mallopt"] == [] and calls["cleared"] == 0


def test_the_switch_turns_it_off(fresh_backends, restore_dispatch, monkeypatch):
  calls = fresh_backends("cpu", 1)
  monkeypatch.setenv(cpu.SWITCH, "0")
  cpu.setup()
  assert calls["mallopt"] == [] and jax.config.values["jax_cpu_enable_async_dispatch"]
  monkeypatch.setenv(cpu.SWITCH, "1")
  cpu.setup()
  assert calls["mallopt"] == [(-4, 0), (-1, 2**31 - 1)]


def test_multi_process_jobs_are_left_alone(fresh_backends, restore_dispatch, monkeypatch):
  calls = fresh_backends("cpu", 1)
  monkeypatch.setattr(jax.distributed, "is_initialized", lambda: True)
  assert not host_memory.reuse_freed_memory()
  assert calls["mallopt"] == [] and jax.config.values["jax_cpu_enable_async_dispatch"]
