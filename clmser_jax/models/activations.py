"""Activation functions by config name (`f` of Eq. 3-5 and the output `g`)."""
import jax
import jax.numpy as jnp


@jax.custom_vjp
def relu(x: jax.Array) -> jax.Array:
  """`max(x, 0)`, its gradient `g * (y > 0)` taken from the output `y` (0 at `x = 0`, as
  `jax.nn.relu`'s). The output is a state `H_i` the backward pass keeps anyway (the next
  convolution's input), so the reflection loop stacks no separate mask per layer."""
  return jnp.maximum(x, 0)


def _relu_fwd(x):
  y = jnp.maximum(x, 0)
  return y, y


def _relu_bwd(y, g):
  return (jnp.where(y > 0, g, jnp.zeros_like(g)),)


relu.defvjp(_relu_fwd, _relu_bwd)

ACTIVATIONS = {
    "relu": relu,
    "sigmoid": jax.nn.sigmoid,  # the `s` of the classic Lmser (Eq. 1-2)
    "tanh": jnp.tanh,
    "identity": lambda x: x,
}
