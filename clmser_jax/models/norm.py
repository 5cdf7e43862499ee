"""Batch normalisation with PyTorch's `nn.BatchNorm2d` semantics, the norm of the authors'
official blocks (CMACH508/CLmser `modules/nets_builders.py`: conv -> BatchNorm -> ReLU).

Training mode normalises with the batch mean and the *biased* batch variance over
`(N, H, W)` and updates the running averages with PyTorch's momentum 0.1 (flax's 0.9), the
running variance from the *unbiased* batch variance `n / (n - 1) * var` (flax's
`nn.BatchNorm` uses the biased one); evaluation mode normalises with the running averages.
`eps = 1e-5`. Parameters `scale`, `bias` (PyTorch `weight`, `bias`); batch statistics `mean`,
`var` (`running_mean`, `running_var`). With the batch sharded over devices, `jit` computes the
statistics of the global batch (synchronised BatchNorm); the official runs used one GPU.
In a bfloat16 network (`CLmser.dtype`) statistics, averages and the normalisation stay float32,
as in flax's `nn.BatchNorm`; only the output is cast back to the input's dtype.

Training mode differentiates through the batch statistics with the closed-form gradient
(`batch_normalize`), two passes over the signal instead of autodiff's six or more.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

MOMENTUM = 0.1  # PyTorch's convention: new = (1 - momentum) * old + momentum * batch
EPSILON = 1e-5


class BatchNorm(nn.Module):
  """`nn.BatchNorm2d` on NHWC inputs: per-channel statistics over batch and space."""

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    dtype, x = x.dtype, x.astype(jnp.float32)
    channels = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (channels,))
    bias = self.param("bias", nn.initializers.zeros, (channels,))
    running_mean = self.variable("batch_stats", "mean", jnp.zeros, (channels,))
    running_var = self.variable("batch_stats", "var", jnp.ones, (channels,))
    if not train:
      mean, var = running_mean.value, running_var.value
      return ((x - mean) * jax.lax.rsqrt(var + EPSILON) * scale + bias).astype(dtype)
    if not self.is_initializing():
      mean, var = jax.lax.stop_gradient(batch_moments(x))
      n = x.size // channels
      running_mean.value = (1 - MOMENTUM) * running_mean.value + MOMENTUM * mean
      running_var.value = (1 - MOMENTUM) * running_var.value + MOMENTUM * var * n / (n - 1)
    return batch_normalize(x, scale, bias).astype(dtype)


def batch_moments(x: jax.Array):
  """Per-channel mean and biased variance over `(N, H, W)`.

  Like PyTorch, it refuses a single value per channel: its variance would be 0 and the
  unbiased running variance undefined.
  """
  if x.size == x.shape[-1]:
    raise ValueError(f"BatchNorm in training mode needs more than one value per channel; "
                     f"got an input of shape {x.shape}")
  mean = jnp.mean(x, axis=(0, 1, 2))
  return mean, jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))


@jax.custom_vjp
def batch_normalize(x: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
  """`scale * (x - mean) / sqrt(var + eps) + bias` with the batch moments of float32 `x`."""
  return _batch_normalize_fwd(x, scale, bias)[0]


def _batch_normalize_fwd(x, scale, bias):
  mean, var = batch_moments(x)
  rstd = jax.lax.rsqrt(var + EPSILON)
  return (x - mean) * rstd * scale + bias, (x, mean, rstd, scale)


def _batch_normalize_bwd(res, g):
  """The gradient through the batch moments (Ioffe & Szegedy 2015, Sec. 3):
  `dx = scale * rstd * (g - mean(g) - x_hat * mean(g * x_hat))`, `dscale = sum(g * x_hat)`,
  `dbias = sum(g)`; the two sums share one pass over `g`, `dx` takes a second."""
  x, mean, rstd, scale = res
  x_hat = (x - mean) * rstd
  dbias, dscale = jnp.sum(g, axis=(0, 1, 2)), jnp.sum(g * x_hat, axis=(0, 1, 2))
  n = x.size // x.shape[-1]
  dx = scale * rstd * (g - dbias / n - x_hat * (dscale / n))
  return dx, dscale, dbias


batch_normalize.defvjp(_batch_normalize_fwd, _batch_normalize_bwd)
