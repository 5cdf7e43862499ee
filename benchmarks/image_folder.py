"""Folders of generated photographs, for measuring the input pipeline and smoke-testing the
main job without a dataset: `count` JPEGs of `size x size`, each a smooth random colour field
(a 6x6 grid of random colours, bicubic upsampled) with fine grain, so they compress and decode
like photographs, not like noise. Image `i` depends only on `(seed, i)`.

  PYTHONPATH=. python -m benchmarks.image_folder --out=/tmp/faces --count=30000 --size=512
"""
from __future__ import annotations

import argparse
import functools
import os
from concurrent import futures

import numpy as np
from PIL import Image


def photograph(index: int, size: int, seed: int = 0) -> np.ndarray:
  """Generated photograph `index`: uint8 RGB `(size, size, 3)`."""
  rng = np.random.default_rng([seed, index])
  coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
  smooth = np.asarray(coarse.resize((size, size), Image.BICUBIC), np.int16)
  grain = rng.integers(-6, 7, (size, size, 1), dtype=np.int16)
  return np.clip(smooth + grain, 0, 255).astype(np.uint8)


def _write(index: int, folder: str, size: int, seed: int) -> str:
  name = os.path.join(folder, f"{index:06d}.jpg")
  Image.fromarray(photograph(index, size, seed)).save(name, quality=90)
  return name


def write_folder(folder: str, count: int, size: int, seed: int = 0,
                 workers: int = 1) -> list[str]:
  """Writes `count` generated JPEGs into `folder` (created); returns their paths, sorted."""
  os.makedirs(folder, exist_ok=True)
  write = functools.partial(_write, folder=folder, size=size, seed=seed)
  if workers <= 1:
    return [write(i) for i in range(count)]
  with futures.ProcessPoolExecutor(workers) as pool:
    return list(pool.map(write, range(count), chunksize=64))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--count", type=int, default=300)
  parser.add_argument("--size", type=int, default=512)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
  args = parser.parse_args()
  write_folder(args.out, args.count, args.size, args.seed, args.workers)
  print(f"{args.out}: {args.count} JPEGs of {args.size}x{args.size}")


if __name__ == "__main__":
  main()
