"""Photographs as uint8 RGB arrays (compact in memory): the embedded set, image files read
one at a time, and the fixed crops that evaluation uses."""
from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
from PIL import Image

# Colour photographs bundled with scikit-image and scikit-learn: real images, no download.
# `motorcycle_right` is left out: it is the other half of a stereo pair with `motorcycle_left`.
EMBEDDED_TRAIN = ("skimage:astronaut.png", "skimage:chelsea.png", "skimage:rocket.jpg",
                  "skimage:motorcycle_left.png", "skimage:hubble_deep_field.jpg",
                  "skimage:retina.jpg", "skimage:ihc.png", "sklearn:china.jpg")
EMBEDDED_TEST = ("skimage:coffee.png", "sklearn:flower.jpg")


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
  if resize and min(image.shape[:2]) != resize:
    image = resize_short_side(image, resize)
  return image if min(image.shape[:2]) >= size else resize_short_side(image, size)


def embedded_photos(size: int, resize: int = 0):
  """`(train, test)` lists of the embedded photographs, prepared for crops of `size`."""
  load = lambda names: [prepare(_embedded(n), size, resize) for n in names]
  return load(EMBEDDED_TRAIN), load(EMBEDDED_TEST)


def read_rgb(path, short_side: int = 0) -> np.ndarray:
  """An image file as uint8 RGB; grey, palette and RGBA are converted.

  With `short_side`, a JPEG is decoded at the smallest of libjpeg's DCT scales (1/1 to 1/8)
  that keeps its shorter side at least `short_side` (`Image.draft`): an image that is resized
  down anyway is never decoded at full size (CelebA-HQ's 1024x1024 bound for 256x256 decodes
  16x fewer pixels). 16-bit grey PNGs open as integer mode 'I;16' (or 'I'), which
  `convert('RGB')` would clip at 255, so they are scaled from 65535 to 255 instead; 16-bit
  colour PNGs open as 8-bit RGB(A).
  """
  with Image.open(path) as image:
    if short_side:
      image.draft("RGB", (short_side, short_side))
    if image.mode.startswith("I"):
      grey = np.round(np.asarray(image, np.float64) / 257.0).astype(np.uint8)
      return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def load(path, size: int, resize: int = 0) -> np.ndarray:
  """The image file at `path`, read and `prepare`d for crops of `size`."""
  return prepare(read_rgb(path, resize), size, resize)


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
  """The central `size x size` crop (the whole image when it is that size)."""
  y, x = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
  return image[y:y + size, x:x + size]


def tiles(image: np.ndarray, size: int) -> np.ndarray:
  """The non-overlapping `size x size` tiles of `image`, row-major, as `(n, size, size, 3)`:
  the fixed evaluation crops of a photograph."""
  h, w = image.shape[:2]
  return np.stack([image[y:y + size, x:x + size] for y in range(0, h - size + 1, size)
                   for x in range(0, w - size + 1, size)])
