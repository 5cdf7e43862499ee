"""A prepared copy of an image dataset: each image decoded and resized once and stored as raw
uint8 pixels in ArrayRecord shards, so that training reads it with no decode and no resize
(`dataset=records:/path`, written by `python -m clmser_jax.data.prepare`).

A prepared folder holds `manifest.json` and the shards it lists, in the source's order:

  {"format": FORMAT, "version": VERSION, "source": "folder:/raw", "resize": 256,
   "images": 27000, "shards": [["images-00000.array_record", 1024], ...],
   "skipped": ["unreadable.jpg", ...]}

Each record is one image: its height and width (two little-endian uint32) and then its
pixels, row-major RGB. The shards are written with `group_size:1` (one record per chunk,
zstd-compressed), the layout grain's `ArrayRecordDataSource` reads by index.
"""
from __future__ import annotations

import json
import os
import struct
from typing import Sequence

import grain
import numpy as np

from clmser_jax.faults import InputError

FORMAT = "clmser-jax prepared images"
VERSION = 1
MANIFEST = "manifest.json"
WRITER_OPTIONS = "group_size:1"
_HEADER = struct.Struct("<II")


def encode(image: np.ndarray) -> bytes:
  """One uint8 RGB image `(H, W, 3)` as a record."""
  return _HEADER.pack(*image.shape[:2]) + np.ascontiguousarray(image, np.uint8).tobytes()


def decode(record: bytes) -> np.ndarray:
  """The image of a record, `(H, W, 3)` uint8 (a read-only view of the record's bytes)."""
  h, w = _HEADER.unpack_from(record)
  return np.frombuffer(record, np.uint8, h * w * 3, _HEADER.size).reshape(h, w, 3)


def shard_name(index: int) -> str:
  return f"images-{index:05d}.array_record"


def read_manifest(folder: str) -> dict:
  """The manifest of a prepared folder; `InputError` when it is missing or not one of ours."""
  path = os.path.join(folder, MANIFEST)
  try:
    with open(path) as f:
      manifest = json.load(f)
  except FileNotFoundError:
    raise InputError(f"{folder!r} is not a prepared dataset (no {MANIFEST}; an interrupted "
                     "`python -m clmser_jax.data.prepare` resumes when run again)") from None
  except (OSError, ValueError) as error:
    raise InputError(f"{path!r} cannot be read ({error}); prepare the dataset again") from None
  if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
    raise InputError(f"{path!r} is not a manifest of `python -m clmser_jax.data.prepare`")
  if manifest.get("version") != VERSION:
    raise InputError(f"{path!r} has version {manifest.get('version')}, this code reads "
                     f"{VERSION}; prepare the dataset again")
  return manifest


class Records(Sequence[np.ndarray]):
  """The images of a prepared folder, read by index (lazily, in any process)."""

  def __init__(self, folder: str):
    manifest = read_manifest(folder)
    self.resize = manifest["resize"]
    shards = [os.path.join(folder, name) for name, _ in manifest["shards"]]
    missing = [s for s in shards if not os.path.isfile(s)]
    if missing:
      raise InputError(f"prepared dataset {folder!r} lacks {len(missing)} of its shards, "
                       f"e.g. {os.path.basename(missing[0])!r}; prepare it again")
    self._source = grain.sources.ArrayRecordDataSource(shards)
    if len(self._source) != manifest["images"]:
      raise InputError(f"prepared dataset {folder!r} holds {len(self._source)} images, its "
                       f"manifest says {manifest['images']}; prepare it again")

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, i: int) -> np.ndarray:
    return decode(self._source[i])
