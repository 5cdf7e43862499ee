"""Photographs as uint8 RGB arrays (compact in memory): the embedded set and image folders."""
from __future__ import annotations

import importlib.util
import pathlib
from typing import Sequence

import numpy as np
from absl import logging
from PIL import Image, UnidentifiedImageError

from clmser_jax.faults import InputError

# Colour photographs bundled with scikit-image and scikit-learn: real images, no download.
# `motorcycle_right` is left out: it is the other half of a stereo pair with `motorcycle_left`.
EMBEDDED_TRAIN = ("skimage:astronaut.png", "skimage:chelsea.png", "skimage:rocket.jpg",
                  "skimage:motorcycle_left.png", "skimage:hubble_deep_field.jpg",
                  "skimage:retina.jpg", "skimage:ihc.png", "sklearn:china.jpg")
EMBEDDED_TEST = ("skimage:coffee.png", "sklearn:flower.jpg")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _embedded(name: str) -> np.ndarray:
  """`package:file`, a photograph shipped inside an installed package's data folder."""
  package, file = name.split(":")
  folder = "data" if package == "skimage" else "datasets/images"
  return read_rgb(pathlib.Path(importlib.util.find_spec(package).origin).parent / folder / file)


def resize_short_side(image: np.ndarray, size: int) -> np.ndarray:
  """Resizes (bicubic, antialiased) so the shorter side is `size`, keeping the aspect."""
  h, w = image.shape[:2]
  scale = size / min(h, w)
  new = (max(size, round(w * scale)), max(size, round(h * scale)))
  return np.asarray(Image.fromarray(image).resize(new, Image.BICUBIC))


def prepare(image: np.ndarray, size: int, resize: int = 0) -> np.ndarray:
  """Optionally resizes the shorter side to `resize` (0 keeps the native resolution), then
  upscales anything whose shorter side is still below the crop `size`."""
  if resize:
    image = resize_short_side(image, resize)
  return image if min(image.shape[:2]) >= size else resize_short_side(image, size)


def embedded_photos(size: int, resize: int = 0):
  """`(train, test)` lists of the embedded photographs, prepared for crops of `size`."""
  load = lambda names: [prepare(_embedded(n), size, resize) for n in names]
  return load(EMBEDDED_TRAIN), load(EMBEDDED_TEST)


def find_images(root: str) -> list[pathlib.Path]:
  """PNG/JPEG files below `root`, recursively, in a fixed (sorted) order."""
  path = pathlib.Path(root)
  if not path.is_dir():
    raise InputError(f"dataset folder {root!r} does not exist or is not a folder "
                     "(set --config.dataset=folder:/path/to/your/images)")
  files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
  if not files:
    raise InputError(f"dataset folder {root!r} holds no PNG or JPEG images "
                     f"(looked recursively for {', '.join(IMAGE_SUFFIXES)})")
  return files


def read_rgb(path: pathlib.Path) -> np.ndarray:
  """An image file as uint8 RGB; grey, palette and RGBA are converted.

  16-bit grey PNGs open as integer mode 'I;16' (or 'I'), which `convert('RGB')` would clip
  at 255, so they are scaled from 65535 to 255 instead; 16-bit colour PNGs open as 8-bit
  RGB(A).
  """
  with Image.open(path) as image:
    if image.mode.startswith("I"):
      grey = np.round(np.asarray(image, np.float64) / 257.0).astype(np.uint8)
      return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"))


def folder_photos(root: str, size: int, resize: int = 0, test_every: int = 10):
  """`(train, test)` from an image folder: every `test_every`-th file (sorted) is held out.

  Unreadable files are reported by name and skipped.
  """
  images = []
  for path in find_images(root):
    try:
      images.append(prepare(read_rgb(path), size, resize))
    except (OSError, UnidentifiedImageError) as error:
      logging.warning("skipping unreadable image %s: %s", path, error)
  if len(images) < 2:
    raise InputError(f"dataset folder {root!r} has {len(images)} readable image(s); "
                     "need at least 2 (one to train on, one to evaluate on)")
  held_out = [i % test_every == test_every - 1 for i in range(len(images))]
  if not any(held_out):
    held_out[-1] = True
  train = [im for im, out in zip(images, held_out) if not out]
  test = [im for im, out in zip(images, held_out) if out]
  return train, test


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
  """The central `size x size` crop (the whole image when it is that size)."""
  y, x = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
  return image[y:y + size, x:x + size]


def tiles(images: Sequence[np.ndarray], size: int, limit: int) -> np.ndarray:
  """Up to `limit` non-overlapping `size x size` tiles, row-major over each image in turn,
  as float32 in [0, 1]: a fixed evaluation set."""
  out = []
  for image in images:
    h, w = image.shape[:2]
    for y in range(0, h - size + 1, size):
      for x in range(0, w - size + 1, size):
        out.append(image[y:y + size, x:x + size])
  return np.stack(out[:limit]).astype(np.float32) / 255.0
