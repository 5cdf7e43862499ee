"""The files of `clmser_jax.inpaint` and `clmser_jax.reconstruct`: which outputs the inputs
map to, images and masks read as float arrays, predictions written back.

`--image` is a file or a folder (PNG/JPEG, recursive, as `listing.find_images`); `--out` is a
file when it ends in `.png`, `.jpg` or `.jpeg`, a folder otherwise, and a folder input writes
each output under the same relative name. PNG outputs keep every known pixel exactly; JPEG
outputs are re-encoded (quality 95).
"""
from __future__ import annotations

import os
import pathlib
import zlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from clmser_jax.data import masks
from clmser_jax.data import listing, photos
from clmser_jax.faults import InputError

Path = pathlib.Path


def _is_image_name(path: Path) -> bool:
  return path.suffix.lower() in listing.IMAGE_SUFFIXES


def pairs(image: str, out: str) -> list[tuple[Path, Path, Path]]:
  """`(input, output, relative name)` of every image `image` names; in a folder, images
  below `out` are left out."""
  src, dst = Path(image), Path(out)
  if src.is_dir():
    if _is_image_name(dst):
      raise InputError(f"--out {out!r} names an image file but --image {image!r} is a "
                       "folder: give an output folder")
    inside_out = lambda f: dst.resolve() in f.resolve().parents  # outputs of an earlier run
    found = [(f, dst / f.relative_to(src), f.relative_to(src))
             for f in map(Path, listing.find_images(image)) if not inside_out(f)]
  elif src.is_file():
    found = [(src, dst if _is_image_name(dst) else dst / src.name, Path(src.name))]
  else:
    raise InputError(f"--image {image!r} does not exist")
  for source, target, _ in found:
    if target.resolve() == source.resolve():
      raise InputError(f"--out {out!r} would overwrite the input {str(source)!r}")
  return found


def prepare_outputs(targets) -> None:
  """Creates the output folders; raises `InputError` when one cannot be written to."""
  for folder in sorted({Path(t).parent for t in targets}):
    try:
      folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
      raise InputError(f"cannot create the output folder {str(folder)!r}: "
                       f"{error.strerror or error}") from None
    if not os.access(folder, os.W_OK):
      raise InputError(f"output folder {str(folder)!r} is not writable")


def read_image(path: Path) -> np.ndarray:
  """`(H, W, 3)` float32 in [0, 1]; an unreadable file raises `InputError`."""
  try:
    return photos.read_rgb(path).astype(np.float32) / 255.0
  except (OSError, UnidentifiedImageError) as error:
    raise InputError(f"cannot read the image {str(path)!r}: {error}") from None


def mask_file(mask: str, relative: Path) -> Path:
  """`mask` itself, or in a mask folder the file with the image's relative name (any image
  suffix)."""
  root = Path(mask)
  if root.is_file():
    return root
  if not root.is_dir():
    raise InputError(f"--mask {mask!r} does not exist")
  for suffix in listing.IMAGE_SUFFIXES:
    if (root / relative).with_suffix(suffix).is_file():
      return (root / relative).with_suffix(suffix)
  raise InputError(f"mask folder {mask!r} has no mask for {str(relative)!r} "
                   f"({', '.join(listing.IMAGE_SUFFIXES)})")


def read_mask(path: Path, polarity: str, shape: tuple[int, int]) -> np.ndarray:
  """The mask for an image of `shape = (H, W)`, `(H, W, 1)`, 1 = known (see
  `masks.read_mask`). A mask of another size is resized with nearest neighbour if its aspect
  ratio is the image's to within one mask pixel; otherwise it raises `InputError`."""
  try:
    mask = masks.read_mask(path, polarity)
  except (OSError, UnidentifiedImageError) as error:
    raise InputError(f"cannot read the mask {str(path)!r}: {error}") from None
  (h, w), (height, width) = mask.shape[:2], shape
  if (h, w) == (height, width):
    return mask
  if abs(h * width - height * w) >= max(height, width):
    raise InputError(f"mask {str(path)!r} is {h}x{w} but the image is {height}x{width}: "
                     "a different aspect ratio (give a mask of the image's shape)")
  return masks.read_mask(path, polarity, shape)


def generated_mask(kind: str, seed: int, relative: Path, shape: tuple[int, int],
                   ratio: float) -> np.ndarray:
  """A `masks.MASKS[kind]` mask of `shape` with `ratio` holes, seeded by `seed` and the
  image's relative name (the same image gets the same mask in any folder)."""
  key = np.random.SeedSequence([seed, zlib.crc32(relative.as_posix().encode())])
  return masks.MASKS[kind](key, *shape, ratio)


def write_image(path: Path, image01: np.ndarray) -> None:
  """`image01` in [0, 1] as 8-bit RGB at `path` (format from its suffix)."""
  pixels = np.round(np.clip(image01, 0.0, 1.0) * 255.0).astype(np.uint8)
  try:
    Image.fromarray(pixels).save(path, quality=95)
  except OSError as error:
    raise InputError(f"cannot write {str(path)!r}: {error.strerror or error}") from None


def masked_name(path: Path) -> Path:
  """Where `--save_masked` puts the masked input of the output `path`."""
  return path.with_name(f"{path.stem}_masked{path.suffix}")
