"""`cpu.compiler`: convolutions leave YNNPACK, products stay, the numbers do not change, an
option this jaxlib rejects falls back to XLA's defaults, and only the CPU formulation asks for
them (`ops.compiler_options`)."""
import functools

import jax
import jax.numpy as jnp
import pytest
from absl import logging

import tiny
from clmser_jax import ops
from clmser_jax.cpu import compiler


def _conv_and_dot(x, w, a, b):
  return ops.bottom_up(x, w, 1), a @ b


def _ynn_fusions(jitted, *args) -> int:
  return jitted.lower(*args).compile().as_text().count('"kind":"__ynn_fusion"')


@pytest.mark.skipif(compiler.options() is None,
                    reason="this jaxlib rejects compiler.CPU_OPTIONS (it logged why)")
def test_convolutions_leave_ynnpack_and_products_stay():
  """XLA's defaults wrap both the 32-channel convolution and the 64x64 product in a YNNPACK
  fusion; with `CPU_OPTIONS` only the product is left in one."""
  keys = jax.random.split(jax.random.key(0), 4)
  args = (jax.random.normal(keys[0], (2, 16, 16, 32)), jax.random.normal(keys[1], (3, 3, 32, 32)),
          jax.random.normal(keys[2], (64, 64)), jax.random.normal(keys[3], (64, 64)))
  assert _ynn_fusions(jax.jit(_conv_and_dot), *args) == 2
  assert _ynn_fusions(jax.jit(_conv_and_dot, compiler_options=ops.compiler_options()),
                      *args) == 1


@pytest.mark.slow
def test_train_step_matches_xla_defaults():
  """Two train steps of CLmser (r = 2, 32 channels, so that YNNPACK would take the
  convolutions) compiled with the CPU options and with plain `jax.jit`: the same losses and
  parameters to 1e-5 relative (Eigen and YNNPACK only order the sums differently)."""
  with_options = functools.partial(jax.jit, compiler_options=compiler.options())
  results = [tiny.two_train_steps(jit, (32, 32)) for jit in (jax.jit, with_options)]
  (loss_a, params_a), (loss_b, params_b) = results
  assert loss_b == pytest.approx(loss_a, rel=1e-5)
  for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b)):
    assert jnp.linalg.norm(a - b) <= 1e-5 * jnp.linalg.norm(a)


def test_rejected_or_foreign_options_fall_back_to_defaults(monkeypatch):
  """An option name this jaxlib does not know gives None (XLA's defaults) and one warning
  naming it; on another backend, or in the XLA formulation, none are passed."""
  warnings = []
  monkeypatch.setattr(logging, "warning", lambda msg, *args: warnings.append(msg % args))
  monkeypatch.setattr(compiler, "CPU_OPTIONS", {"xla_cpu_no_such_option": "1"})
  assert compiler.options() is None
  assert len(warnings) == 1 and "xla_cpu_no_such_option" in warnings[0]
  monkeypatch.undo()
  with ops.formulation("xla"):
    assert ops.compiler_options() is None
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert compiler.options() is None
  jitted = jax.jit(jnp.negative, compiler_options=compiler.options())
  assert float(jitted(jnp.float32(2.0))) == -2.0
