"""FID between two image sets (Sec. 5.3, Table 5): pool3 Gaussians, then their distance."""
from __future__ import annotations

import jax
import numpy as np

from clmser_jax.fid.distance import frechet_distance, gaussian_stats
from clmser_jax.fid.inception import FIDInceptionV3, preprocess


@jax.jit
def _pool3(variables, images):
  return FIDInceptionV3().apply(variables, preprocess(images))


def pool3_features(images, variables, batch_size: int = 50) -> np.ndarray:
  """pool3 features `(N, 2048)` of NHWC `images` in `[0, 1]`, `batch_size` at a time.

  The last batch is padded to `batch_size` (and the padding dropped) so that one compiled
  network serves every batch.
  """
  images = np.asarray(images, np.float32)
  if images.min() < 0.0 or images.max() > 1.0:
    raise ValueError(f"FID images must lie in [0, 1], got [{images.min()}, {images.max()}]")
  features = []
  for start in range(0, len(images), batch_size):
    batch = images[start:start + batch_size]
    padded = np.pad(batch, [(0, batch_size - len(batch))] + [(0, 0)] * 3)
    features.append(np.asarray(_pool3(variables, padded))[:len(batch)])
  return np.concatenate(features)


def fid(images_a, images_b, variables, batch_size: int = 50) -> float:
  """Frechet Inception Distance between two sets of NHWC images in `[0, 1]` (RGB).

  `variables` come from `fid.weights.load_variables`. With the converted pytorch-fid weights
  the score is pytorch-fid's up to float32 round-off. FID is biased upwards on small sets
  (pytorch-fid advises at least 2048 images per set): report the set sizes with it.
  """
  stats = [gaussian_stats(pool3_features(x, variables, batch_size))
           for x in (images_a, images_b)]
  return frechet_distance(*stats[0], *stats[1])
