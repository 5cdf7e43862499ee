"""The Frechet distance of FID (Sec. 5.3) against closed forms and an independent sqrtm."""
import numpy as np
import pytest
import scipy.linalg

from clmser_jax.fid import distance


def random_psd(rng, d):
  a = rng.normal(size=(d, d))
  return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_diagonal_closed_form():
  rng = np.random.default_rng(0)
  mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
  s1, s2 = rng.uniform(0.1, 3, size=8), rng.uniform(0.1, 3, size=8)
  expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
  got = distance.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
  np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_frechet_scaled_covariance_closed_form():
  # S2 = c S1  =>  tr((S1 S2)^{1/2}) = sqrt(c) tr(S1),  d^2 = |dmu|^2 + (1 - sqrt(c))^2 tr(S1)
  rng = np.random.default_rng(1)
  s1, mu1, mu2 = random_psd(rng, 16), rng.normal(size=16), rng.normal(size=16)
  expected = np.sum((mu1 - mu2) ** 2) + (1 - np.sqrt(3.0)) ** 2 * np.trace(s1)
  np.testing.assert_allclose(distance.frechet_distance(mu1, s1, mu2, 3.0 * s1), expected,
                             rtol=1e-10)


def test_frechet_general_covariances_match_scipy_sqrtm():
  rng = np.random.default_rng(2)
  s1, s2 = random_psd(rng, 32), random_psd(rng, 32)
  assert not np.allclose(s1 @ s2, s2 @ s1)  # a case the diagonal forms do not cover
  mu1, mu2 = rng.normal(size=32), rng.normal(size=32)
  expected = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
              - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real)
  np.testing.assert_allclose(distance.frechet_distance(mu1, s1, mu2, s2), expected, rtol=1e-8)


@pytest.mark.parametrize("n", [1000, 3])  # full-rank and rank-deficient (n << D) covariances
def test_distance_of_a_set_to_itself_is_zero(n):
  rng = np.random.default_rng(3)
  features = rng.normal(size=(n, 256)) * rng.uniform(0.1, 100, size=256)
  mu, sigma = distance.gaussian_stats(features)
  d = distance.frechet_distance(mu, sigma, mu, sigma)
  assert abs(d) < 1e-10 * np.trace(sigma)
