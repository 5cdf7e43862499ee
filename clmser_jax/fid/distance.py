"""The Frechet distance between two Gaussians, the core of FID (Sec. 5.3, [8]).

  d^2 = ||mu_1 - mu_2||^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^{1/2})

`S_1 S_2` is not symmetric, and `scipy.linalg.sqrtm` of it (pytorch-fid's route) returns
complex noise or fails on the rank-deficient covariances of small feature sets. Here the
trace term is a nuclear norm: `S_1 S_2` is similar to `S_1^{1/2} S_2 S_1^{1/2} = A^T A` with
`A = S_2^{1/2} S_1^{1/2}`, so `tr((S_1 S_2)^{1/2})` is the sum of the singular values of `A`.
Singular values carry an absolute error of `eps * sigma_max`, where square roots of
eigenvalues would carry `sqrt(eps)`: a 3-image set's distance to itself is 2e-7 instead
of -13 (with `tr S = 7e6`).
"""
from __future__ import annotations

import numpy as np


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
  """Mean and (unbiased) covariance of `features (N, D)`, float64, as pytorch-fid."""
  features = np.asarray(features, np.float64)
  return features.mean(axis=0), np.cov(features, rowvar=False)


def psd_sqrt(sigma: np.ndarray) -> np.ndarray:
  """The symmetric square root of a positive semi-definite matrix (round-off clipped)."""
  values, vectors = np.linalg.eigh(np.asarray(sigma, np.float64))
  return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
  """`tr((S_1 S_2)^{1/2})` for symmetric positive semi-definite `S_1`, `S_2`."""
  return float(np.linalg.norm(psd_sqrt(sigma2) @ psd_sqrt(sigma1), "nuc"))


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """Squared Frechet distance between `N(mu1, sigma1)` and `N(mu2, sigma2)`."""
  diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2)
               - 2.0 * trace_sqrt_product(sigma1, sigma2))
