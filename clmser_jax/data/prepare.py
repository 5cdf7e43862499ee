"""Writes a prepared copy of an image dataset (`records.py`), for training without decoding:

  python -m clmser_jax.data.prepare --dataset=folder:/raw/celeba_hq --image_size=256 \
      --out=/data/celeba_hq_256

then train with `--config.dataset=records:/data/celeba_hq_256`. The images are read in the
dataset's order (`folder:` sorted, `list:` as listed), the shorter side of each resized to
`--image_size` (as `config.resize`: bicubic, antialiased), and written to ArrayRecord shards of
`--shard_size` images by `--workers` processes, with a progress bar.

Nothing is lost to an interruption: each shard is written under a temporary name and renamed
when complete, so a rerun of the same command resumes at the first shard that is missing, and
the manifest, which makes the folder a dataset, is written last. Unreadable images are skipped
by name and listed in the manifest.
"""
from __future__ import annotations

import functools
import itertools
import json
import os
import sys

import grain
import numpy as np
import tqdm
from absl import flags
from array_record.python import array_record_module

from clmser_jax import cli
from clmser_jax.data import listing, photos, pipeline, records
from clmser_jax.faults import InputError

def define_flags() -> dict:
  return dict(
      dataset=flags.DEFINE_string("dataset", None, "The images: folder:/path or "
                                  "list:/path/list.txt.", required=True),
      root=flags.DEFINE_string("root", "", "list: datasets: the folder entries are relative "
                               "to ('' = the list file's folder)."),
      image_size=flags.DEFINE_integer("image_size", None, "The shorter side of every stored "
                                      "image.", required=True),
      out=flags.DEFINE_string("out", None, "The folder to write (created; resumed if it holds "
                              "an interrupted copy of the same dataset).", required=True),
      workers=flags.DEFINE_integer("workers", -1, "Processes decoding and resizing (-1: a "
                                   "worker per core less one)."),
      shard_size=flags.DEFINE_integer("shard_size", 1024, "Images per shard: the unit of "
                                      "resumption."))


PLAN = ".prepare.json"  # what an unfinished copy is a copy of; a rerun must ask the same


def _read(index: int, paths: listing.Paths, size: int):
  """`(index, record or None, why not)` of image `index`, in a worker process."""
  try:
    return index, records.encode(photos.load(paths[index], size, size)), ""
  # A damaged file can make a decoder raise almost anything.
  except Exception as error:  # pylint: disable=broad-except
    return index, None, f"{paths[index]}: {error}"


def _recorded(path: str) -> dict | None:
  """A JSON file of an earlier run in `--out`; None when there is none."""
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as error:
    raise InputError(f"{path!r} cannot be read ({error}); remove it, or choose another "
                     "--out") from None


def _check_out(out: str, plan: dict) -> None:
  """Refuses an `out` that is a file, another dataset, or another plan's unfinished copy."""
  if os.path.exists(out) and not os.path.isdir(out):
    raise InputError(f"--out {out!r} is a file, not a folder")
  for name, keys in ((records.MANIFEST, ("source", "resize")), (PLAN, tuple(plan))):
    found = _recorded(os.path.join(out, name))
    if found is not None and {k: found.get(k) for k in keys} != {k: plan[k] for k in keys}:
      raise InputError(f"--out {out!r} holds a prepared copy of {found.get('source')!r} "
                       f"({', '.join(f'{k}={found.get(k)}' for k in keys)}; this run: "
                       f"{', '.join(f'{k}={plan[k]}' for k in keys)}); choose another --out")


def _write_shard(out: str, index: int, rows, bar: tqdm.tqdm) -> None:
  """Writes the records of `rows` as shard `index`, renamed into place when complete, with
  the reasons of the images it skipped beside it."""
  target = os.path.join(out, records.shard_name(index))
  partial = target + ".partial"
  writer = array_record_module.ArrayRecordWriter(partial, records.WRITER_OPTIONS)
  skipped = []
  for _, record, why in rows:
    if record is None:
      skipped.append(why)
    else:
      writer.write(record)
    bar.update(1)
  writer.close()
  with open(target + ".skipped.json", "w") as f:
    json.dump(skipped, f)
  os.replace(partial, target)


def _shard_done(out: str, index: int) -> bool:
  target = os.path.join(out, records.shard_name(index))
  return os.path.isfile(target) and os.path.isfile(target + ".skipped.json")


def prepare(spec: str, size: int, out: str, num_workers: int, shard_size: int,
            root: str = "") -> dict:
  """Writes (or finishes) the prepared copy of `spec` in `out`; returns its manifest."""
  kind, _, where = spec.partition(":")
  if kind not in ("folder", "list") or not where:
    raise InputError(f"--dataset={spec!r}: folder:/path or list:/path/list.txt")
  if size <= 0 or shard_size <= 0:
    raise InputError(f"--image_size={size} and --shard_size={shard_size} must be positive")
  paths = listing.find_images(where) if kind == "folder" else listing.read_list(where, root)
  plan = {"source": spec, "resize": size, "listed": len(paths), "shard_size": shard_size}
  _check_out(out, plan)
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, PLAN), "w") as f:
    json.dump(plan, f)
  shards = -(-len(paths) // shard_size)
  todo = [k for k in range(shards) if not _shard_done(out, k)]
  index = np.concatenate([np.arange(k * shard_size, min((k + 1) * shard_size, len(paths)))
                          for k in todo] or [np.zeros(0, np.int64)])
  rows = (grain.MapDataset.source(index)
          .map(functools.partial(_read, paths=paths, size=size))
          .to_iter_dataset(grain.ReadOptions(num_threads=0)))
  made = iter(pipeline.in_processes(rows, num_workers, prefetch=8)) if len(index) else None
  with tqdm.tqdm(total=len(paths), initial=len(paths) - len(index), unit="img",
                 desc=f"preparing {spec}", file=sys.stderr) as bar:
    for k in todo:
      count = min((k + 1) * shard_size, len(paths)) - k * shard_size
      _write_shard(out, k, itertools.islice(made, count), bar)
  return _write_manifest(out, plan, shards)


def _write_manifest(out: str, plan: dict, shards: int) -> dict:
  counts, skipped = [], []
  for k in range(shards):
    path = os.path.join(out, records.shard_name(k))
    counts.append(array_record_module.ArrayRecordReader(path).num_records())
    with open(path + ".skipped.json") as f:
      skipped += json.load(f)
  manifest = {"format": records.FORMAT, "version": records.VERSION, "source": plan["source"],
              "resize": plan["resize"], "images": sum(counts),
              "shards": [[records.shard_name(k), n] for k, n in enumerate(counts)],
              "skipped": skipped}
  with open(os.path.join(out, records.MANIFEST + ".partial"), "w") as f:
    json.dump(manifest, f, indent=1)
  os.replace(os.path.join(out, records.MANIFEST + ".partial"),
             os.path.join(out, records.MANIFEST))
  return manifest


def main(values: dict) -> None:
  manifest = prepare(values["dataset"], values["image_size"], values["out"],
                     pipeline.workers(values["workers"]), values["shard_size"], values["root"])
  skipped = manifest["skipped"]
  print(f"{values['out']}: {manifest['images']} images of {manifest['resize']} pixels on the "
        f"shorter side in {len(manifest['shards'])} shard(s)"
        + (f"; {len(skipped)} unreadable skipped, e.g. {skipped[0]}" if skipped else ""))


if __name__ == "__main__":
  cli.run("clmser_jax.data.prepare", main, define_flags)
