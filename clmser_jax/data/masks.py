"""Inpainting masks (Sec. 5.3): `1` = known pixel, `0` = hole, float32 arrays `(H, W, 1)`.

The paper evaluates inpainting with "irregularly and densely distributed point-shaped masks"
(Fig. 7, left column): many small specks scattered over the whole image, which stays
recognisable. `point_mask` draws them; `rectangle_mask` and `stroke_mask` give the other two
families Sec. 5.3 mentions (rectangular and irregular holes, as in PConv [16]), and
`MaskFolder` reads a public mask set from PNG files.

Every generator is `fn(seed, height, width, ratio)`, `seed` being anything
`np.random.default_rng` takes; the same arguments give the same mask,
and `ratio` is the requested fraction of hole pixels, in `[0, 1)`. `sample_masks` stacks a
batch in which mask `i` depends only on `(seed, i)`.
"""
from __future__ import annotations

import math
import pathlib
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

_MOVES = np.array([[0, 1], [0, -1], [1, 0], [-1, 0]], np.int32)
_WALK_CHUNK = 64  # steps drawn per walker at a time; fixed so that seeds stay reproducible


def _check_ratio(ratio: float) -> None:
  if not 0.0 <= ratio < 1.0:
    raise ValueError(f"mask ratio must be in [0, 1) (fraction of hole pixels), got {ratio}")


def _check_size(height: int, width: int) -> None:
  if height < 1 or width < 1:
    raise ValueError(f"mask size must be positive, got {height}x{width}")


def _known(hole: np.ndarray) -> np.ndarray:
  """The `(H, W, 1)` float32 mask, `1` = known, of a boolean hole map."""
  return (~hole)[..., None].astype(np.float32)


def point_mask(seed: int, height: int, width: int, ratio: float, scale: int = 4,
               walker_spacing: int = 8) -> np.ndarray:
  """Irregular, densely distributed point-shaped holes (Sec. 5.3, Fig. 7).

  Pixel-level random walks on a canvas `scale` times larger than the image, subsampled with
  nearest neighbour. One walker starts at a uniform random canvas site per
  `walker_spacing x walker_spacing` image pixels, so the holes cover the whole image; all
  walkers take unit steps (up/down/left/right) in lock-step, wrapping around the canvas
  edges. Image pixel `(i, j)` becomes a hole once a walker visits the canvas site it samples,
  `(i * scale + scale // 2, j * scale + scale // 2)`. A walk's trail is a connected,
  fractal blob on the canvas; the subsampling keeps roughly one site in `scale**2`, which
  breaks every trail into small scattered specks (a few pixels each).

  The walk stops at the first visit that makes `round(ratio * H * W)` holes, so every mask has
  exactly that many: over 1000 seeds at 256x256 the hole ratio is the requested one to within
  `1 / (H * W)`, with zero spread (about 1700 specks at ratios 0.1-0.25, 950 at 0.5). The
  walks are long: training draws from a bank made once (`mask_banks.py`). Larger
  `walker_spacing` or smaller `scale` gives fewer, larger blobs; small `ratio` gives isolated
  dots, ratios above ~0.5 merge them into a net.
  """
  _check_ratio(ratio)
  _check_size(height, width)
  rng = np.random.default_rng(seed)
  canvas = np.array([height * scale, width * scale], np.int32)
  walkers = max(1, (height * width) // (walker_spacing * walker_spacing))
  position = rng.integers(0, canvas, size=(walkers, 2), dtype=np.int32)
  target = round(ratio * height * width)
  hole = np.zeros(height * width, bool)
  count = 0
  while count < target:
    steps = _MOVES[rng.integers(0, len(_MOVES), size=(_WALK_CHUNK, walkers), dtype=np.int8)]
    path = (position + np.cumsum(steps, axis=0)) % canvas
    position = path[-1]
    path = path.reshape(-1, 2)  # step-major: the order in which sites are visited
    sampled = np.all(path % scale == scale // 2, axis=1)
    pixel = (path[sampled, 0] // scale) * width + path[sampled, 1] // scale
    pixel, first = np.unique(pixel, return_index=True)
    fresh = ~hole[pixel]
    new = pixel[fresh][np.argsort(first[fresh])][:target - count]
    hole[new] = True
    count += len(new)
  return _known(hole.reshape(height, width))


def rectangle_mask(seed: int, height: int, width: int, ratio: float) -> np.ndarray:
  """One axis-aligned rectangular hole of area `ratio * H * W` at a uniform random position.

  The hole's height is log-uniform over the heights for which the rectangle fits, the width
  follows from the area; rounding both to pixels makes the hole ratio differ from `ratio` by
  at most `1 / (2 W)` (half a column of the rectangle).
  """
  _check_ratio(ratio)
  _check_size(height, width)
  rng = np.random.default_rng(seed)
  area = ratio * height * width
  hole = np.zeros((height, width), bool)
  if round(area) > 0:
    lo, hi = max(1.0, area / width), min(float(height), area)
    h = min(height, max(1, round(math.exp(rng.uniform(math.log(lo), math.log(hi))))))
    w = min(width, round(area / h))
    top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
    hole[top:top + h, left:left + w] = True
  return _known(hole)


def stroke_mask(seed: int, height: int, width: int, ratio: float, max_vertices: int = 8,
                max_width: float = 0.08, max_length: float = 0.15) -> np.ndarray:
  """Free-form brush strokes (the irregular holes of PConv [16] / DeepFill v2 style).

  A stroke starts at a uniform random pixel and is a polyline of up to `max_vertices`
  segments, each with a uniform random direction and a length up to `max_length` of the
  shorter image side, drawn with a round brush up to `max_width` of that side wide. Segments
  are added one at a time until the hole ratio reaches `ratio`, so it overshoots by at most
  one segment: at 256x256, over 1000 seeds and ratios 0.1 / 0.25 / 0.5, the hole ratio
  exceeds the requested one by 0.2-0.3% on average and by at most 1.2%.
  """
  _check_ratio(ratio)
  _check_size(height, width)
  rng = np.random.default_rng(seed)
  side = min(height, width)
  image = Image.new("1", (width, height), 0)
  draw = ImageDraw.Draw(image)
  target = round(ratio * height * width)
  count = 0
  while count < target:
    x, y = rng.uniform(0, width), rng.uniform(0, height)
    brush = max(1, round(rng.uniform(0.2, 1.0) * max_width * side))
    for _ in range(rng.integers(1, max_vertices + 1)):
      angle, length = rng.uniform(0, 2 * math.pi), rng.uniform(0.2, 1.0) * max_length * side
      x_end, y_end = x + length * math.cos(angle), y + length * math.sin(angle)
      draw.line([(x, y), (x_end, y_end)], fill=1, width=brush)
      r = brush / 2
      draw.ellipse([x_end - r, y_end - r, x_end + r, y_end + r], fill=1)
      x, y = np.clip(x_end, 0, width - 1), np.clip(y_end, 0, height - 1)
      count = int(np.count_nonzero(np.asarray(image)))
      if count >= target:
        break
  return _known(np.asarray(image, dtype=bool))


MASKS = {"points": point_mask, "rectangle": rectangle_mask, "strokes": stroke_mask}


def mask_of(kind: str, seed: int, index: int, height: int, width: int,
            ratio: float) -> np.ndarray:
  """Mask `index` of the bank of `kind` seeded by `seed`: seeded by `(seed, index)`, so any
  mask of a bank can be made alone, in any process."""
  if kind not in MASKS:
    raise ValueError(f"unknown mask kind {kind!r}; expected one of {sorted(MASKS)}")
  return MASKS[kind](np.random.SeedSequence([seed, index]), height, width, ratio)


def sample_masks(kind: str, seed: int, count: int, height: int, width: int,
                 ratio: float) -> np.ndarray:
  """`count` masks `(N, H, W, 1)` of one family of `MASKS`: masks `0..count-1` of `mask_of`."""
  return np.stack([mask_of(kind, seed, i, height, width, ratio) for i in range(count)])


POLARITIES = ("known", "hole")


def _check_polarity(polarity: str) -> None:
  if polarity not in POLARITIES:
    raise ValueError(f"polarity must be one of {POLARITIES} (what a white pixel marks), "
                     f"got {polarity!r}")


def read_mask(path, polarity: str, size: tuple[int, int] | None = None) -> np.ndarray:
  """One mask file as `(H, W, 1)`, `1` = known pixel: `polarity` `'known'` when a white pixel
  (grey level > 127) is a known pixel, `'hole'` when white marks a hole. With `size = (H, W)`
  it is resized with nearest neighbour."""
  _check_polarity(polarity)
  with Image.open(path) as image:
    image = image.convert("L")
    if size is not None:
      image = image.resize((size[1], size[0]), Image.NEAREST)
    white = np.asarray(image) > 127
  return _known(white if polarity == "hole" else ~white)


class MaskFolder(Sequence[np.ndarray]):
  """The `*.png` masks of `folder`, sorted by name, each read when indexed (`read_mask`):
  `(H, W, 1)`, `1` = known pixel, resized with nearest neighbour to `size = (H, W)`. A public
  mask set (12,000 masks) is never all in memory.

  Public mask sets disagree on what white means, so `polarity` is required (see `read_mask`).
  """

  def __init__(self, folder, polarity: str, size: tuple[int, int]):
    _check_polarity(polarity)
    folder = pathlib.Path(folder)
    if not folder.is_dir():
      raise FileNotFoundError(f"mask folder {folder} does not exist")
    self._files = sorted(str(p) for p in folder.iterdir() if p.suffix.lower() == ".png")
    if not self._files:
      raise ValueError(f"mask folder {folder} holds no .png files")
    self.polarity, self.size = polarity, tuple(size)

  def __len__(self) -> int:
    return len(self._files)

  def __getitem__(self, i: int) -> np.ndarray:
    return read_mask(self._files[i], self.polarity, self.size)
