"""`clmser_jax.cpu.native`: the kernel gradient the same as XLA's operations and as autodiff, the
first layer's `W` and `W^T` and the strided `W^T` the same as XLA's convolutions and adjoints of
`W`, each used exactly where it applies; the library built once into the cache, and XLA's
kernels where it cannot build."""
import platform
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl import logging

import tiny
from clmser_jax import ops
from clmser_jax.cpu.native import compile as build
from clmser_jax.cpu.native import kernel_gradient, library, narrow, top_down

BUILDABLE = platform.system() == "Linux" and platform.machine() == "x86_64" and bool(
    shutil.which("c++"))
needs_build = pytest.mark.skipif(not BUILDABLE, reason="no native build on this platform")


def _autodiff_gradient(x, g, stride, k):
  """`d<g, W x>/dW` by JAX's autodiff of the plain convolution: an independent reference."""
  w = jnp.zeros((k, k, x.shape[-1], g.shape[-1]))
  return jax.vjp(lambda w: ops.xla_bottom_up(x, w, stride), w)[1](g)[0]


def _native_calls(fn, *args, target=kernel_gradient.TARGET) -> int:
  return fn.lower(*args).as_text().count(target)


@needs_build
def test_it_builds_and_registers_here():
  """Where a build is possible (CI's machines), it must happen: no silent fallback."""
  assert library.load()
  assert set(library.HANDLERS) == {kernel_gradient.TARGET, narrow.BOTTOM_UP, narrow.TOP_DOWN,
                                   top_down.TARGET}


@needs_build
@pytest.mark.parametrize("n,size,c,o,stride,k", [
    (2, 16, 3, 16, 1, 3),  # the first layer: 3 input channels, stride 1
    (2, 16, 16, 32, 2, 3),  # even size, stride 2
    (1, 15, 13, 48, 2, 3),  # odd size; 13 = 12 + 1 and 6 + 6 + 1 input channels; 48 = 32 + 16
    (3, 9, 7, 112, 2, 3),  # 112 = 64 + 32 + 16 output channels
    (2, 11, 5, 64, 3, 5),  # stride 3, a 5x5 kernel
    (1, 4, 20, 80, 2, 3),  # a 2x2 output: most taps reach into the padding
    (2, 2, 4, 16, 2, 5),  # a 5x5 kernel on a 2x2 image: whole tap columns in the padding
])
@pytest.mark.slow
def test_matches_xla_and_autodiff(n, size, c, o, stride, k):
  """Against the per-tap products / convolution of `ops.weight_gradient` with the native
  kernel off, and against autodiff of the convolution, to 1e-5 of the largest entry."""
  keys = jax.random.split(jax.random.key(size + c + o), 2)
  x = jax.random.normal(keys[0], (n, size, size, c))
  out = ops.output_size(size, k, stride)
  g = jax.random.normal(keys[1], (n, out, out, o))
  got = jax.jit(kernel_gradient.kernel_gradient, static_argnums=(2, 3, 4))(
      x, g, stride, k, ops.conv_padding(k))
  with library.disabled():
    xla = jax.jit(ops.weight_gradient, static_argnums=(2, 3))(x, g, stride, k)
  autodiff = _autodiff_gradient(x, g, stride, k)
  scale = float(jnp.abs(autodiff).max())
  np.testing.assert_allclose(got, xla, atol=1e-5 * scale, rtol=0)
  np.testing.assert_allclose(got, autodiff, atol=1e-5 * scale, rtol=0)


@needs_build
def test_used_exactly_where_it_applies(monkeypatch):
  """float32 with 16k output channels on one CPU device: the native call; 8 channels,
  bfloat16, `disabled()` or more than one device: XLA's operations."""
  fn = jax.jit(ops.weight_gradient, static_argnums=(2, 3))
  x = jnp.ones((1, 8, 8, 4))
  assert _native_calls(fn, x, jnp.ones((1, 4, 4, 16)), 2, 3) == 1
  assert _native_calls(fn, x, jnp.ones((1, 4, 4, 8)), 2, 3) == 0
  assert _native_calls(fn, x.astype(jnp.bfloat16), jnp.ones((1, 4, 4, 16), jnp.bfloat16), 2,
                       3) == 0
  with library.disabled():
    assert _native_calls(fn, x, jnp.ones((1, 4, 4, 32)), 2, 3) == 0
  monkeypatch.setattr(jax, "device_count", lambda: 2)
  assert _native_calls(fn, x, jnp.ones((1, 4, 4, 48)), 2, 3) == 0


@pytest.mark.slow
@needs_build
@pytest.mark.parametrize("n,size,o,c,k", [
    (2, 16, 16, 3, 3),  # the first layer of every Table 2 network: 3 <-> 16 channels
    (2, 20, 32, 3, 3),  # pixel groups inside the row and at both ends; two 16-channel blocks
    (1, 7, 16, 1, 3),  # one channel: a group of 16 pixels in W^T, longer than the row
    (3, 9, 48, 2, 3),  # 48 = 3 x 16 channels
    (2, 21, 16, 4, 5),  # a 5x5 kernel
    (1, 2, 16, 3, 5),  # a 5x5 kernel on a 2x2 image: most taps in the padding
])
def test_narrow_matches_xla_and_the_adjoint(n, size, o, c, k):
  """`W x` and `W^T y` against XLA's convolutions (native kernels off), to 1e-5 of the scale,
  and against each other: `<W x, y> = <x, W^T y>` for random `x` and `y`."""
  keys = jax.random.split(jax.random.key(size + o + c), 3)
  x = jax.random.normal(keys[0], (n, size, size, c))
  y = jax.random.normal(keys[1], (n, size, size, o))
  w = jax.random.normal(keys[2], (k, k, c, o))
  p = ops.conv_padding(k)
  wx = jax.jit(narrow.bottom_up, static_argnums=2)(x, w, p)
  wty = jax.jit(narrow.top_down, static_argnums=2)(y, w, p)
  with library.disabled():
    xla_wx = jax.jit(ops.bottom_up, static_argnums=2)(x, w, 1)
    xla_wty = jax.jit(ops.top_down, static_argnums=(2, 3))(y, w, 1, (size, size))
  for got, xla in ((wx, xla_wx), (wty, xla_wty)):
    np.testing.assert_allclose(got, xla, atol=1e-5 * float(jnp.abs(xla).max()), rtol=0)
  assert float(jnp.vdot(x, wty)) == pytest.approx(float(jnp.vdot(wx, y)), rel=1e-5)


@pytest.mark.slow
@needs_build
def test_narrow_used_exactly_where_it_applies(monkeypatch):
  """float32, stride 1, an odd kernel between at most 4 channels and 16k on one CPU device:
  the native calls; 5 channels, 8 channels, stride 2, a 2x2 kernel, bfloat16, `disabled()` or
  more than one device: XLA's convolutions."""
  up = jax.jit(ops.bottom_up, static_argnums=2)
  down = jax.jit(ops.top_down, static_argnums=(2, 3))

  def calls(w, stride=1, dtype=jnp.float32):
    k, _, c, o = w.shape
    x = jnp.ones((1, 8, 8, c), dtype)
    y = jnp.ones((1, *[ops.output_size(8, k, stride)] * 2, o), dtype)
    return (_native_calls(up, x, w, stride, target=narrow.BOTTOM_UP),
            _native_calls(down, y, w, stride, (8, 8), target=narrow.TOP_DOWN))

  assert calls(jnp.ones((3, 3, 3, 16))) == (1, 1)
  assert calls(jnp.ones((5, 5, 4, 32))) == (1, 1)
  assert calls(jnp.ones((3, 3, 5, 16))) == (0, 0)
  assert calls(jnp.ones((3, 3, 3, 8))) == (0, 0)
  assert calls(jnp.ones((3, 3, 2, 16)), stride=2) == (0, 0)
  assert calls(jnp.ones((2, 2, 3, 16))) == (0, 0)
  assert calls(jnp.ones((3, 3, 1, 16)), dtype=jnp.bfloat16) == (0, 0)
  # new shapes below: jit would reuse the traces above
  with library.disabled():
    assert calls(jnp.ones((3, 3, 3, 48))) == (0, 0)
  monkeypatch.setattr(jax, "device_count", lambda: 2)
  assert calls(jnp.ones((3, 3, 3, 64))) == (0, 0)


@needs_build
@pytest.mark.parametrize("n,size,c,o,stride,k", [
    (2, 16, 16, 32, 2, 3),  # even size; 16 channels: groups of 8 pixels
    (1, 15, 48, 16, 2, 3),  # odd size; 48 = 32 + 16 channels
    (1, 40, 112, 16, 2, 3),  # 112 = 64 + 32 + 16; rows long enough for groups inside them
    (3, 9, 64, 40, 2, 3),  # y's channels not a multiple of 16
    (2, 11, 16, 8, 3, 5),  # stride 3, a 5x5 kernel
    (1, 4, 80, 20, 2, 3),  # a 2x2 y: most taps in the padding
    (2, 2, 16, 4, 2, 5),  # a 5x5 kernel onto a 2x2 image
])
@pytest.mark.slow
def test_strided_top_down_matches_xla_and_the_adjoint(n, size, c, o, stride, k):
  """`W^T y` against XLA's transposed convolution (native kernels off), to 1e-5 of the scale,
  and against XLA's `W x`: `<W x, y> = <x, W^T y>` for random `x` and `y`."""
  keys = jax.random.split(jax.random.key(size + c + o), 3)
  x = jax.random.normal(keys[0], (n, size, size, c))
  out = ops.output_size(size, k, stride)
  y = jax.random.normal(keys[1], (n, out, out, o))
  w = jax.random.normal(keys[2], (k, k, c, o))
  got = jax.jit(top_down.top_down, static_argnums=(2, 3, 4))(
      y, w, stride, ops.conv_padding(k), (size, size))
  with library.disabled():
    xla = jax.jit(ops.top_down, static_argnums=(2, 3))(y, w, stride, (size, size))
  np.testing.assert_allclose(got, xla, atol=1e-5 * float(jnp.abs(xla).max()), rtol=0)
  wx = ops.xla_bottom_up(x, w, stride)
  assert float(jnp.vdot(x, got)) == pytest.approx(float(jnp.vdot(wx, y)), rel=1e-5)


@needs_build
def test_strided_top_down_used_exactly_where_it_applies(monkeypatch):
  """float32, stride 2 or more, onto 16k channels on one CPU device: the native call; 8
  channels, stride 1, bfloat16, `disabled()` or more than one device: XLA's convolutions."""
  down = jax.jit(ops.top_down, static_argnums=(2, 3))

  def calls(c, stride=2, dtype=jnp.float32):
    y = jnp.ones((1, *[ops.output_size(8, 3, stride)] * 2, 16), dtype)
    return _native_calls(down, y, jnp.ones((3, 3, c, 16)), stride, (8, 8),
                         target=top_down.TARGET)

  assert calls(16) == 1
  assert calls(32, stride=3) == 1
  assert calls(8) == 0
  assert calls(48, stride=1) == 0
  assert calls(64, dtype=jnp.bfloat16) == 0
  # new shapes below: jit would reuse the traces above
  with library.disabled():
    assert calls(80) == 0
  monkeypatch.setattr(jax, "device_count", lambda: 2)
  assert calls(96) == 0


@pytest.mark.slow
@needs_build
def test_train_steps_match_xla_kernels(monkeypatch):
  """Two train steps of CLmser (r = 2, 16 and 32 channels, so both kernels' gradients go
  native, through the reflection loop, and so do the first layer's `W_1 x` and the
  reconstruction `W_1^T H_1`, and the second layer's strided `W_2^T`) with and without the
  native kernels: the same losses and parameters to 1e-5 relative."""
  calls = []
  for module, name in ((kernel_gradient, "kernel_gradient"), (narrow, "bottom_up"),
                       (narrow, "top_down"), (top_down, "top_down")):
    native, label = getattr(module, name), f"{module.__name__.rsplit('.', 1)[1]}.{name}"
    monkeypatch.setattr(module, name, lambda *args, label=label, native=native: (
        calls.append((label, args[2])), native(*args))[1])
  loss_a, params_a = tiny.two_train_steps(jax.jit, (16, 32))
  # both layers' kernel gradients, at stride 1 and 2; W_1 and W_1^T (padding 1); W_2^T
  # (stride 2)
  assert sorted(set(calls)) == [("kernel_gradient.kernel_gradient", 1),
                                ("kernel_gradient.kernel_gradient", 2),
                                ("narrow.bottom_up", 1), ("narrow.top_down", 1),
                                ("top_down.top_down", 2)]
  with library.disabled():
    loss_b, params_b = tiny.two_train_steps(jax.jit, (16, 32))
  assert loss_a == pytest.approx(loss_b, rel=1e-5)
  for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b)):
    assert jnp.linalg.norm(a - b) <= 1e-5 * jnp.linalg.norm(b)


@pytest.mark.slow
@needs_build
def test_built_once_into_the_cache(tmp_path, monkeypatch):
  """The first `library` call writes one library into `$CLMSER_JAX_CACHE` (and no partial
  file); the next loads it without compiling."""
  monkeypatch.setenv("CLMSER_JAX_CACHE", str(tmp_path))
  build.library.cache_clear()
  try:
    assert build.library(library.SOURCE) is not None
    assert [p.suffix for p in tmp_path.iterdir()] == [".so"]
    build.library.cache_clear()
    monkeypatch.setattr(build, "_compile", lambda *a: pytest.fail("compiled a cached library"))
    assert build.library(library.SOURCE) is not None
  finally:
    build.library.cache_clear()


def test_a_failed_build_falls_back(tmp_path, monkeypatch):
  """A compiler that fails (or none) gives None and one warning: XLA's kernels stay."""
  monkeypatch.setenv("CLMSER_JAX_CACHE", str(tmp_path))
  monkeypatch.setenv("CXX", "false")
  warnings = []
  monkeypatch.setattr(logging, "warning", lambda msg, *args: warnings.append(msg % args))
  build.library.cache_clear()
  try:
    assert build.library(library.SOURCE) is None
  finally:
    build.library.cache_clear()
  assert len(warnings) == 1 and "convolutions.cc" in warnings[0]
  assert not any(tmp_path.iterdir())


@needs_build
def test_a_cache_key_changes_with_the_source(tmp_path):
  """A changed source (or compiler, jaxlib, CPU) gets a new library name, never a stale one."""
  source = tmp_path / "convolutions.cc"
  source.write_text(library.SOURCE.read_text())
  first = build.library_path(source, shutil.which("c++"))
  source.write_text(source.read_text() + "\n// changed\n")
  assert build.library_path(source, shutil.which("c++")) != first
