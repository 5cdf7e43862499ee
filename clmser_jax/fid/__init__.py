"""Frechet Inception Distance (Sec. 5.3, [8]) in JAX, with pytorch-fid's TF-FID Inception."""
from clmser_jax.fid.distance import frechet_distance, gaussian_stats
from clmser_jax.fid.inception import FIDInceptionV3, preprocess
from clmser_jax.fid.score import fid, pool3_features
from clmser_jax.fid.weights import load_variables
