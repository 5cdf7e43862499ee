"""Reconstruction metrics of Tables 4-5 on images in [0, 1]: L1, MSE, PSNR, SSIM (dm-pix);
the classification loss and accuracy of Table 7."""
from __future__ import annotations

import dm_pix
import jax
import jax.numpy as jnp
import optax


def reconstruction_loss(reconstruction: jax.Array, target: jax.Array) -> jax.Array:
  """Eq. 1 up to the constant: the mean squared reconstruction error."""
  return jnp.mean(jnp.square(reconstruction - target))


def image_metrics(prediction: jax.Array, target: jax.Array) -> dict[str, jax.Array]:
  """Per-image L1, MSE, PSNR (dB) and SSIM of NHWC `prediction`, clipped to [0, 1]."""
  prediction = jnp.clip(prediction, 0.0, 1.0)
  axes = (1, 2, 3)
  return {
      "l1": jnp.mean(jnp.abs(prediction - target), axes),
      "mse": jnp.mean(jnp.square(prediction - target), axes),
      "psnr": dm_pix.psnr(prediction, target),
      "ssim": dm_pix.ssim(prediction, target),
  }


def classification_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """The mean softmax cross-entropy of (N, K) `logits` against integer `labels` (N,)."""
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per image, 1 where the largest logit is the label's, else 0 (Table 7 is its mean)."""
  return (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
