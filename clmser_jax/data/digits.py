"""scikit-learn's handwritten digits (1,797 images of 8x8, ten classes) as a labelled image
set that ships with the package: the embedded data of the supervised experiments (Table 7)."""
from __future__ import annotations

import numpy as np
from PIL import Image
from sklearn import datasets

NUM_CLASSES = 10
TEST_EVERY = 5  # every 5th image held out: the paper's 4:1 train/test split (Sec. 5)


def _upscale(digit: np.ndarray, size: int) -> np.ndarray:
  """One 8x8 digit (0..16) as a `size x size` uint8 RGB image, bicubic."""
  grey = Image.fromarray(np.round(digit * (255 / 16)).astype(np.uint8))
  grey = np.asarray(grey.resize((size, size), Image.BICUBIC))
  return np.repeat(grey[..., None], 3, axis=2)


def embedded_digits(size: int):
  """`((train_images, train_labels), (test_images, test_labels))`: uint8 (N, size, size, 3)
  images and int32 labels; every `TEST_EVERY`-th digit is a test image."""
  bunch = datasets.load_digits()
  images = np.stack([_upscale(d, size) for d in bunch.images])
  labels = bunch.target.astype(np.int32)
  test = np.arange(len(images)) % TEST_EVERY == TEST_EVERY - 1
  return (images[~test], labels[~test]), (images[test], labels[test])
