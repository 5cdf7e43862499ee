"""Perception by reflections: the scan against a plain loop written from Eq. 3-5, and the
stability of the default (contractive) initialisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clmser_jax.models import CLmser
from clmser_jax.models import reflections
from clmser_jax.models.activations import ACTIVATIONS
from clmser_jax.models.init import he, operator_norm
from equations import assert_matches, conv, equations_loop, kernels

STRIDES = (1, 2, 2)
CHANNELS = (4, 6, 8)


# Without DPN nothing feeds back, and config validation allows only r = 1.
@pytest.mark.parametrize("dcw,dpn,r", [(True, True, 1), (True, True, 2), (True, True, 3),
                                       (False, True, 1), (False, True, 2), (False, True, 3),
                                       (True, False, 1), (False, False, 1)])
@pytest.mark.parametrize("remat", [False, True])
def test_scan_matches_equations(r, dcw, dpn, remat):
  x = jax.random.uniform(jax.random.key(9), (2, 12, 11, 3))
  enc = kernels(0, CHANNELS)
  dec = enc if dcw else kernels(1, CHANNELS)
  got = reflections.reflect(x, enc, dec, STRIDES, f=jax.nn.relu, dpn=dpn, reflections=r,
                            remat=remat)
  want = equations_loop(x, enc, dec, STRIDES, jax.nn.relu, dpn, r)
  assert_matches(got, want)


def _positional(remat: bool):
  """`reflections.reflect` called as `equations_loop` is: `(x, enc, dec, strides, f, dpn, r)`."""
  return lambda x, enc, dec, strides, f, dpn, r: reflections.reflect(
      x, enc, dec, strides, f=f, dpn=dpn, reflections=r, remat=remat)


def _reconstruction_loss(reflect_fn, x, r):
  """`sum(U_0^2)` of `reflect_fn(x, enc, dec, strides, f, dpn, r)` with DCW, as a function
  of the kernels."""
  return lambda enc: jnp.sum(reflect_fn(x, enc, enc, STRIDES, jax.nn.relu, True, r) ** 2)


@pytest.mark.slow
@pytest.mark.parametrize("remat", [False, True])
def test_gradients_through_the_scan_match_the_equations(remat):
  """The custom VJPs through the scan, with and without rematerialisation, against autodiff
  of the equations written out."""
  x = jax.random.uniform(jax.random.key(9), (2, 12, 11, 3))
  enc = kernels(0, CHANNELS)
  reflect = _positional(remat)
  got = jax.grad(_reconstruction_loss(reflect, x, 3))(enc)
  want = jax.grad(_reconstruction_loss(equations_loop, x, 3))(enc)
  for a, b in zip(got, want):
    assert_matches(a, b)


def test_the_loop_computes_h1_once_per_reflection():
  """`H_1` of a top-down pass is `H_1` of the next bottom-up pass (`reflections.bottom_neuron`):
  the scan's forward pass stacks one array of `H_1`'s shape per reflection for the backward
  pass, not two."""
  x = jax.random.uniform(jax.random.key(9), (2, 12, 11, 3))
  enc, r = kernels(0, CHANNELS), 4
  jaxpr = jax.make_jaxpr(jax.grad(lambda e: jnp.sum(reflections.reflect(
      x, e, e, STRIDES, f=ACTIVATIONS["relu"], dpn=True, reflections=r) ** 2)))(enc)
  forward = next(eqn for eqn in jaxpr.jaxpr.eqns if eqn.primitive.name == "scan")
  stacks = [v.aval.shape for v in forward.outvars if v.aval.ndim == 5]
  assert stacks.count((r - 1, 2, 12, 11, CHANNELS[0])) == 1, stacks


@pytest.mark.slow
def test_remat_keeps_less_for_the_backward_pass():
  """XLA's own account of the gradient's temporaries at r = 32: with `remat` each reflection
  keeps only its carry (measured 0.63x of what the plain scan keeps)."""
  x = jax.random.uniform(jax.random.key(9), (2, 12, 11, 3))
  enc = kernels(0, CHANNELS)
  temp = {}
  for remat in (False, True):
    reflect = _positional(remat)
    grad = jax.jit(jax.grad(_reconstruction_loss(reflect, x, 32)))
    temp[remat] = grad.lower(enc).compile().memory_analysis().temp_size_in_bytes
  assert temp[True] < 0.7 * temp[False], temp


def test_reflections_change_the_output_with_dpn():
  """Guards the test above against a loop that ignores r: feedback must matter."""
  x = jax.random.uniform(jax.random.key(9), (2, 12, 12, 3))
  enc = kernels(0, CHANNELS)
  one = reflections.reflect(x, enc, enc, STRIDES, f=jax.nn.relu, dpn=True, reflections=1)
  two = reflections.reflect(x, enc, enc, STRIDES, f=jax.nn.relu, dpn=True, reflections=2)
  assert float(jnp.max(jnp.abs(one - two))) > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("channels,strides", [
    ((16, 32, 64, 128, 256), (1, 2, 2, 2, 2)),  # Table 2, STL10
    ((8,) * 12, (1,) * 12),                    # deep and narrow
])
def test_default_init_is_stable_for_many_reflections(channels, strides):
  x = jax.random.uniform(jax.random.key(0), (2, 32, 32, 3))
  outputs = []
  for r in (8, 32):
    model = CLmser(channels=channels, strides=strides, reflections=r)
    params = model.init(jax.random.key(1), x)
    y = model.apply(params, x)
    assert bool(jnp.all(jnp.isfinite(y)))
    assert bool(jnp.isfinite(jnp.mean((y - x) ** 2)))
    outputs.append(y)
  # A contraction converges to its equilibrium: 8 and 32 reflections agree.
  np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-4)


@pytest.mark.slow
def test_he_init_explodes_with_reflections():
  """Why the contractive init exists: the same model with He kernels blows up."""
  x = jax.random.uniform(jax.random.key(0), (2, 32, 32, 3))
  model = CLmser(channels=(16, 32, 64, 128, 256), strides=(1, 2, 2, 2, 2), reflections=8,
                 kernel_init="he")
  y = model.apply(model.init(jax.random.key(1), x), x)
  assert not bool(jnp.all(jnp.abs(y) < 1e4))


@pytest.mark.parametrize("stride", [1, 2])
def test_operator_norm_matches_dense_matrix(stride):
  """Power iteration against the top singular value of the explicit conv matrix."""
  w = he(jax.random.key(0), (3, 3, 2, 3))
  n = 8
  basis = jnp.eye(n * n * 2).reshape(-1, n, n, 2)
  matrix = conv(basis, w, stride).reshape(n * n * 2, -1)
  want = float(jnp.linalg.svd(matrix, compute_uv=False)[0])
  got = float(operator_norm(w, stride, size=n))
  # Power iteration approaches the top singular value from below.
  assert want * 0.99 <= got <= want * (1 + 1e-5)
