"""W and W^T of DCW, in both formulations: the adjoint identity and agreement with autodiff
of plain lax convs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from clmser_jax import ops
from clmser_jax.cpu import convolutions as cpu_convolutions

CASES = [(1, 8, 8), (1, 7, 9), (2, 8, 8), (2, 7, 7), (2, 9, 6), (3, 10, 11)]


def _rand(seed, shape):
  return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def _lax_conv(x, w, s):
  """An independent `W x`: plain lax conv with PyTorch-style padding, no custom VJP."""
  p = (w.shape[0] - 1) // 2
  return lax.conv_general_dilated(x, w, (s, s), ((p, p), (p, p)),
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.fixture(params=["xla", "cpu"], autouse=True)
def formulation(request):
  """Every test runs in both formulations of the pair (`ops.FORMULATIONS`)."""
  with ops.formulation(request.param):
    yield request.param


@pytest.mark.parametrize("stride,height,width", CASES)
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_adjoint_identity(stride, height, width, kernel_size):
  x = _rand(0, (2, height, width, 3))
  w = _rand(1, (kernel_size, kernel_size, 3, 5))
  y = _rand(2, ops.bottom_up(x, w, stride).shape)
  lhs = jnp.vdot(ops.bottom_up(x, w, stride), y)
  rhs = jnp.vdot(x, ops.top_down(y, w, stride, (height, width)))
  np.testing.assert_allclose(lhs, rhs, rtol=1e-5)


@pytest.mark.parametrize("stride,height,width", CASES)
@pytest.mark.parametrize("channels", [4, 40])  # phases / XLA's transposed conv at stride > 1
def test_top_down_is_vjp_of_conv(stride, height, width, channels):
  assert stride * stride * 4 <= cpu_convolutions.MAX_PHASE_CHANNELS < 4 * 40
  x = _rand(0, (2, height, width, channels))
  w = _rand(1, (3, 3, channels, 6))
  y, vjp = jax.vjp(lambda x: _lax_conv(x, w, stride), x)
  cot = _rand(2, y.shape)
  np.testing.assert_allclose(ops.top_down(cot, w, stride, (height, width)), vjp(cot)[0],
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(ops.bottom_up(x, w, stride), y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride,height,width", CASES)
def test_custom_gradients_match_autodiff(stride, height, width):
  """The custom VJPs (forward convs) against autodiff of the plain lax conv and its
  autodiff transpose, for both the signal and the kernel."""
  x = _rand(0, (2, height, width, 3))
  w = _rand(1, (3, 3, 3, 4))
  size = (height, width)
  y = _rand(2, _lax_conv(x, w, stride).shape)
  lax_top_down = lambda y, w: jax.vjp(lambda x: _lax_conv(x, w, stride), x)[1](y)[0]

  def loss(conv, transpose):
    return lambda x, y, w: jnp.sum(jnp.sin(conv(x, w, stride))) + jnp.sum(
        jnp.cos(transpose(y, w)) * x)

  ours = jax.grad(loss(ops.bottom_up, lambda y, w: ops.top_down(y, w, stride, size)),
                  (0, 1, 2))(x, y, w)
  ref = jax.grad(loss(_lax_conv, lax_top_down), (0, 1, 2))(x, y, w)
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_output_size_matches_conv():
  for n in range(5, 14):
    for s in (1, 2, 3):
      x = jnp.zeros((1, n, n, 1))
      assert ops.bottom_up(x, jnp.zeros((3, 3, 1, 1)), s).shape[1] == ops.output_size(n, 3, s)


def test_each_backend_has_its_formulation(monkeypatch):
  """The table: the CPU formulation on the CPU unless switched off, XLA's on accelerators."""
  monkeypatch.setattr(ops, "_forced", [None])
  for backend, name in (("cpu", "cpu"), ("gpu", "xla"), ("tpu", "xla")):
    monkeypatch.setattr(jax, "default_backend", lambda backend=backend: backend)
    assert ops.current_formulation() == name
  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
  monkeypatch.setenv("CLMSER_JAX_CPU_KERNELS", "0")
  assert ops.current_formulation() == "xla"


def test_weight_gradient_is_the_autodiff_kernel_gradient():
  """`weight_gradient` (per-tap products, native or the dilated convolution) against JAX's
  autodiff of the plain convolution."""
  for stride in (1, 2, 3):
    x = _rand(0, (2, 11, 9, 4))
    w = _rand(1, (3, 3, 4, 16))
    g = _rand(2, _lax_conv(x, w, stride).shape)
    want = jax.vjp(lambda w: _lax_conv(x, w, stride), w)[1](g)[0]
    np.testing.assert_allclose(ops.weight_gradient(x, g, stride, 3), want, rtol=1e-4,
                               atol=1e-4)
