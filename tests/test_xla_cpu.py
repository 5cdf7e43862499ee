"""`xla_cpu.jit`: convolutions leave YNNPACK, products stay, the numbers do not change, and
an option this jaxlib rejects falls back to XLA's defaults."""

import jax
import jax.numpy as jnp
import pytest
from absl import logging

import tiny
from clmser_jax import ops, xla_cpu


def _conv_and_dot(x, w, a, b):
  return ops.bottom_up(x, w, 1), a @ b


def _ynn_fusions(jitted, *args) -> int:
  return jitted.lower(*args).compile().as_text().count('"kind":"__ynn_fusion"')


@pytest.mark.skipif(xla_cpu.compiler_options() is None,
                    reason="this jaxlib rejects xla_cpu.CPU_OPTIONS (it logged why)")
def test_convolutions_leave_ynnpack_and_products_stay():
  """XLA's defaults wrap both the 32-channel convolution and the 64x64 product in a YNNPACK
  fusion; with `CPU_OPTIONS` only the product is left in one."""
  keys = jax.random.split(jax.random.key(0), 4)
  args = (jax.random.normal(keys[0], (2, 16, 16, 32)), jax.random.normal(keys[1], (3, 3, 32, 32)),
          jax.random.normal(keys[2], (64, 64)), jax.random.normal(keys[3], (64, 64)))
  assert _ynn_fusions(jax.jit(_conv_and_dot), *args) == 2
  assert _ynn_fusions(xla_cpu.jit(_conv_and_dot), *args) == 1


def test_train_step_matches_xla_defaults():
  """Two train steps of CLmser (r = 2, 32 channels, so that YNNPACK would take the
  convolutions) compiled with `xla_cpu.jit` and with plain `jax.jit`: the same losses and
  parameters to 1e-5 relative (Eigen and YNNPACK only order the sums differently)."""
  results = [tiny.two_train_steps(jit, (32, 32)) for jit in (jax.jit, xla_cpu.jit)]
  (loss_a, params_a), (loss_b, params_b) = results
  assert loss_b == pytest.approx(loss_a, rel=1e-5)
  for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b)):
    assert jnp.linalg.norm(a - b) <= 1e-5 * jnp.linalg.norm(a)


def test_rejected_or_foreign_options_fall_back_to_defaults(monkeypatch):
  """An option name this jaxlib does not know gives None (XLA's defaults) and one warning
  naming it; on another backend the CPU options are not passed at all."""
  warnings = []
  monkeypatch.setattr(logging, "warning", lambda msg, *args: warnings.append(msg % args))
  assert xla_cpu.compiler_options(options={"xla_cpu_no_such_option": "1"}) is None
  assert len(warnings) == 1 and "xla_cpu_no_such_option" in warnings[0]
  assert xla_cpu.compiler_options("gpu") is None
  jitted = jax.jit(jnp.negative, compiler_options=xla_cpu.compiler_options("gpu"))
  assert float(jitted(jnp.float32(2.0))) == -2.0
