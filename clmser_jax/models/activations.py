"""Activation functions by config name (`f` of Eq. 3-5 and the output `g`)."""
import jax
import jax.numpy as jnp

ACTIVATIONS = {
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,  # the `s` of the classic Lmser (Eq. 1-2)
    "tanh": jnp.tanh,
    "identity": lambda x: x,
}
