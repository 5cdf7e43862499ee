"""`activations.relu`: the ReLU whose gradient is read from its output, against `jax.nn.relu`."""
import jax
import jax.numpy as jnp
import numpy as np

from clmser_jax.models import activations


def test_relu_value_and_gradient_equal_jax_nn_relu():
  x = jnp.concatenate([jnp.array([-2.0, -0.0, 0.0, 1e-30, 3.0]),
                       jax.random.normal(jax.random.key(0), (64,))])
  weights = jax.random.normal(jax.random.key(1), x.shape)
  loss = lambda f: lambda v: jnp.sum(f(v) * weights)
  np.testing.assert_array_equal(activations.relu(x), jax.nn.relu(x))
  np.testing.assert_array_equal(jax.grad(loss(activations.relu))(x),
                                jax.grad(loss(jax.nn.relu))(x))
  assert float(jax.grad(activations.relu)(0.0)) == 0.0  # as jax.nn.relu's at the kink


def test_relu_gradient_through_a_scan_keeps_no_mask():
  # Inside a scan the backward pass needs the outputs only: reverse mode stores no bool mask.
  def body(h, w):
    h = activations.relu(h * w)
    return h, None

  def loss(h0, ws):
    return jnp.sum(jax.lax.scan(body, h0, ws)[0])

  h0, ws = jnp.linspace(-1.0, 1.0, 8), jnp.linspace(0.5, 1.5, 3)[:, None] * jnp.ones((3, 8))
  jaxpr = jax.make_jaxpr(jax.grad(loss, argnums=1))(h0, ws)
  dtypes = {str(v.aval.dtype) for eqn in jaxpr.jaxpr.eqns if eqn.primitive.name == "scan"
            for v in eqn.outvars}
  assert "bool" not in dtypes
  reference = jax.grad(lambda h, w: jnp.sum(jax.lax.scan(
      lambda c, wi: (jax.nn.relu(c * wi), None), h, w)[0]), argnums=1)(h0, ws)
  np.testing.assert_allclose(jax.grad(loss, argnums=1)(h0, ws), reference, rtol=1e-6)
