"""Where a dataset's images are, without opening one: a folder listed recursively, or an image
list file (the authors' and most inpainting codebases' splits), as a compact table of paths.

Listing is the only start-up cost that grows with the dataset: names are read from the
directories (one `scandir` per folder), never from the files, so a million files take
seconds, and the table keeps each path as bytes in one buffer, not as a Python object.
"""
from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np

from clmser_jax.faults import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SHOWN = 3  # names quoted in an error about many files


class Paths(Sequence[str]):
  """File paths `root/relative[i]`, kept as one UTF-8 buffer and its offsets (about a byte
  per character: 1.8M Places2 paths take ~80 MB, not ~400 MB of `str` objects, in the
  training process and in every data worker it is pickled to)."""

  def __init__(self, root: str, relative: Iterable[str]):
    encoded = [name.encode() for name in relative]
    self.root = root
    self._blob = np.frombuffer(b"".join(encoded), np.uint8)
    self._offsets = np.cumsum([0, *map(len, encoded)], dtype=np.int64)

  def __len__(self) -> int:
    return len(self._offsets) - 1

  def __getitem__(self, i: int) -> str:
    if not -len(self) <= i < len(self):
      raise IndexError(i)
    i %= len(self)
    name = self._blob[self._offsets[i]:self._offsets[i + 1]].tobytes().decode()
    return os.path.join(self.root, name)


def _sort_key(relative: str) -> list[str]:
  """Folder by folder, as `sorted(pathlib.Path...)` orders paths (`a/b` before `a-c`)."""
  return relative.split("/")


def find_images(root: str) -> Paths:
  """The PNG/JPEG files below `root`, recursively, in a fixed (sorted) order."""
  if not os.path.isdir(root):
    raise InputError(f"dataset folder {root!r} does not exist or is not a folder "
                     "(set --config.dataset=folder:/path/to/your/images)")
  found = []
  for folder, _, files in os.walk(root):
    prefix = os.path.relpath(folder, root)
    found.extend(name if prefix == "." else f"{prefix}/{name}" for name in files
                 if name.lower().endswith(IMAGE_SUFFIXES))
  if not found:
    raise InputError(f"dataset folder {root!r} holds no PNG or JPEG images "
                     f"(looked recursively for {', '.join(IMAGE_SUFFIXES)})")
  return Paths(root, sorted(found, key=_sort_key))


def _list_entry(line: str) -> str:
  """The path of one line of an image list: `path` or `path label` (Places2's lists)."""
  head, _, last = line.rpartition(" ")
  return head.strip() if head and last.lstrip("-").isdigit() else line


def _files_in(folder: str) -> frozenset[str]:
  try:
    return frozenset(e.name for e in os.scandir(folder or ".") if not e.is_dir())
  except OSError:
    return frozenset()


def _missing(paths: Sequence[str]) -> list[str]:
  """The entries of `paths` that are not files, in order: one listing per folder, not one
  `stat` per file."""
  listings = {}
  missing = []
  for path in paths:
    folder, name = os.path.split(path)
    if folder not in listings:
      listings[folder] = _files_in(folder)
    if name not in listings[folder]:
      missing.append(path)
  return missing


def read_list(list_file: str, root: str = "") -> Paths:
  """The images an image list names, one per line (blank lines skipped), in its order.

  A path is relative to `root` when it is given (a leading `/` too, as in Places2's
  `/a/airfield/00000001.jpg`), else to the list file's folder; absolute paths stay absolute
  without `root`. A missing or empty list, or one naming files that do not exist, raises
  `InputError` saying how many and naming the first few.
  """
  try:
    with open(list_file) as f:
      entries = [_list_entry(line.strip()) for line in f if line.strip()]
  except (OSError, UnicodeDecodeError) as error:
    raise InputError(f"image list {list_file!r} cannot be read: "
                     f"{getattr(error, 'strerror', None) or error}") from None
  if not entries:
    raise InputError(f"image list {list_file!r} names no images")
  base = root or os.path.dirname(os.path.abspath(list_file))
  if root:
    entries = [e.lstrip("/") for e in entries]
  paths = Paths(base, entries)
  missing = _missing([os.path.join(base, e) for e in entries])
  if missing:
    raise InputError(
        f"image list {list_file!r} names {len(missing)} of {len(entries)} files that do not "
        f"exist, e.g. {', '.join(map(repr, missing[:SHOWN]))} (paths are relative to "
        f"{base!r}; set --config.data.root to the folder they are relative to)")
  return paths
