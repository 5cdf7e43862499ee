"""The classic fully connected Lmser (Sec. 3, Eq. 1-2; Xu 1991, 1993) with sigmoid units.

Layer `k` holds `n_k` neurons `z_k`; `z_0 = x` is the clamped input. `W_k` is the
`n_k x n_{k-1}` matrix of the paper (row `i` is the receptive field of unit `i` of layer `k`)
and serves both ways (DCW): bottom-up `y_k = W_k z_{k-1}`, top-down
`u_{k-1} = W_k^T z_k`. Every hidden neuron sums both (DPN), `z_k = s(y_k + u_k)`; the top
layer has no `u`. Perception (`perceive`) starts with one bottom-up pass (Eq. 3) and then
relaxes all layers at once (the simultaneous update of Eq. 6) towards the equilibrium of
the Lmser dynamics. Eq. 6 as printed also applies `f` to `Y` and `U`; Eq. 3-5 and Xu's
dynamics do not, nor does this file. The reconstruction is the linear top-down signal to the input,
`x_hat = W_1^T z_1`, and the loss is Eq. 1, `J = 1/2 E ||x - W_1^T z_1||^2`.

Learning either differentiates `J` through the perception (`loss` with `jax.grad`) or applies
the original rule of Eq. 2 (`eq2_update`), with `eps_0 = x - x_hat`, `eps_k = W_k eps_{k-1}`:

    -dJ/dW_k ~ (s'_k * eps_k) z_{k-1}^T + z_k (s'_{k-1} * eps_{k-1})^T,   s'_0 = 1.

Where Eq. 2 and the exact gradient differ, and why:
- One layer (d = 1): `z_1 = s(W_1 x)` and Eq. 2 *is* the exact gradient: the first term is
  the encoder use of `W_1` (through `y_1`), the second its decoder use (through `x_hat`).
- Deeper: Eq. 2 keeps only each kernel's direct uses. It drops that `z_k` depends on `W_k`
  through the dynamics too (`u_k` comes from `z_{k+1}`, which `W_k` drives from below; the
  Eq. 13-15 terms `du/dW`), and its `eps_k = W_k eps_{k-1}` back-projects the error without
  the `s'` of the layers it crosses, where backpropagation down the top-down chain gives
  `-dJ/dz_k = W_k (s'_{k-1} * (-dJ/dz_{k-1}))`. For `W_1` both simplifications vanish
  (`x_hat` is linear, so `eps_1 = -dJ/dz_1`): its update is the exact gradient with `u_1`
  held at its perceived value (a test checks this).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

s = jax.nn.sigmoid
Params = list  # [W_1, ..., W_d], W_k of shape (n_k, n_{k-1})


def init_params(key: jax.Array, sizes: Sequence[int], scale: float = 1.0) -> Params:
  """`W_k ~ N(0, scale^2 / n_{k-1})` for `sizes = (n_0, n_1, ..., n_d)`."""
  keys = jax.random.split(key, len(sizes) - 1)
  return [scale * jax.random.normal(k, (n, m)) / jnp.sqrt(m)
          for k, m, n in zip(keys, sizes[:-1], sizes[1:])]


def _signals(params: Params, x: jax.Array, zs):
  """`y_k = W_k z_{k-1}` and `u_k = W_{k+1}^T z_{k+1}` (`u_d = 0`) from the states `zs`."""
  ys = [z @ w.T for z, w in zip([x, *zs[:-1]], params)]
  us = [z @ w for z, w in zip(zs[1:], params[1:])] + [jnp.zeros_like(zs[-1])]
  return ys, us


def perceive(params: Params, x: jax.Array, relaxations: int):
  """Eq. 3, then `relaxations` simultaneous updates `z_k = s(W_k z_{k-1} + W_{k+1}^T z_{k+1})`.

  `x` is `(batch, n_0)`. Returns `(ys, us)`: the signals of the last update of layers 1..d,
  so the perceived states are `z_k = s(y_k + u_k)` (`neurons`).
  """
  ys, zs = [], [x]
  for w in params:  # Eq. 3: bottom-up only, no top-down signal yet
    ys.append(zs[-1] @ w.T)
    zs.append(s(ys[-1]))
  us = [jnp.zeros_like(y) for y in ys]
  for _ in range(relaxations):
    ys, us = _signals(params, x, neurons(ys, us))
  return ys, us


def neurons(ys, us) -> list[jax.Array]:
  """`z_k = s(y_k + u_k)` for k = 1..d."""
  return [s(y + u) for y, u in zip(ys, us)]


def reconstruct(params: Params, x: jax.Array, relaxations: int) -> jax.Array:
  """`x_hat = W_1^T z_1`, the top-down signal to the (linear) input layer."""
  return neurons(*perceive(params, x, relaxations))[0] @ params[0]


def loss(params: Params, x: jax.Array, relaxations: int) -> jax.Array:
  """Eq. 1: `J = 1/2 E ||x - W_1^T z_1||^2`, `E` the batch mean."""
  return 0.5 * jnp.mean(jnp.sum(jnp.square(x - reconstruct(params, x, relaxations)), -1))


def eq2_update(params: Params, x: jax.Array, relaxations: int) -> Params:
  """The original learning rule, Eq. 2: an estimate of `-dJ/dW_k` for every layer."""
  zs = neurons(*perceive(params, x, relaxations))
  eps = [x - zs[0] @ params[0]]
  for w in params:
    eps.append(eps[-1] @ w.T)
  slopes = [jnp.ones_like(x)] + [z * (1 - z) for z in zs]  # s' = s (1 - s); input linear
  z = [x, *zs]
  n = x.shape[0]
  return [((slopes[k] * eps[k]).T @ z[k - 1] + z[k].T @ (slopes[k - 1] * eps[k - 1])) / n
          for k in range(1, len(params) + 1)]


def exact_update(params: Params, x: jax.Array, relaxations: int) -> Params:
  """`-dJ/dW_k` by autodiff through the perception."""
  return jax.tree.map(jnp.negative, jax.grad(loss)(params, x, relaxations))
