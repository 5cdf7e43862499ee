"""Metrics against hand-derived values."""
import jax.numpy as jnp
import numpy as np

from clmser_jax import metrics


def test_known_values():
  target = jnp.full((2, 16, 16, 3), 0.5)
  prediction = target + 0.1  # error 0.1 everywhere: L1 0.1, MSE 0.01, PSNR 20 dB
  m = metrics.image_metrics(prediction, target)
  np.testing.assert_allclose(m["l1"], [0.1, 0.1], rtol=1e-5)
  np.testing.assert_allclose(m["mse"], [0.01, 0.01], rtol=1e-4)
  np.testing.assert_allclose(m["psnr"], [20.0, 20.0], rtol=1e-4)


def test_ssim_of_identical_images_is_one_and_clipping():
  x = jnp.linspace(0, 1, 2 * 16 * 16 * 3).reshape(2, 16, 16, 3)
  np.testing.assert_allclose(metrics.image_metrics(x, x)["ssim"], [1.0, 1.0], rtol=1e-5)
  # predictions are clipped to [0, 1] before scoring
  np.testing.assert_allclose(metrics.image_metrics(x + 5.0, jnp.ones_like(x))["mse"], 0.0)
  np.testing.assert_allclose(metrics.reconstruction_loss(x + 0.2, x), 0.04, rtol=1e-5)
