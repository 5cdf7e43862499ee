"""Metrics against hand-derived values."""
import jax.numpy as jnp
import numpy as np
import pytest

from clmser_jax import metrics


@pytest.mark.slow
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


@pytest.mark.slow
def test_psnr_and_ssim_match_scikit_image():
  """An independent implementation: scikit-image's PSNR and the Gaussian SSIM of Wang et al.
  (sigma 1.5, 11x11 window, population covariances), per colour photograph."""
  from skimage import data
  from skimage.metrics import peak_signal_noise_ratio, structural_similarity
  rng = np.random.default_rng(0)
  target = np.stack([data.astronaut()[100:196, 150:246], data.chelsea()[50:146, 100:196]]
                    ).astype(np.float64) / 255
  prediction = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1)
  ours = metrics.image_metrics(jnp.asarray(prediction, jnp.float32),
                               jnp.asarray(target, jnp.float32))
  for i in range(2):
    np.testing.assert_allclose(
        ours["psnr"][i], peak_signal_noise_ratio(target[i], prediction[i], data_range=1),
        rtol=1e-5)
    np.testing.assert_allclose(
        ours["ssim"][i], structural_similarity(
            target[i], prediction[i], data_range=1, channel_axis=-1, gaussian_weights=True,
            sigma=1.5, use_sample_covariance=False), rtol=1e-4)
