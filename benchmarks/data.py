"""The input pipeline at the paper's dataset sizes (issue 22). Not a test.

  PYTHONPATH=. python -m benchmarks.data [--large 30000] [--small 300] [--size 512]
      [--root /tmp/clmser_data_bench] [--out benchmarks/RESULTS.md]

Generates (once, kept under `--root`) folders of `--large` and `--small` JPEGs of
`--size x --size` (`image_folder`) and a prepared copy of the large one at 256, then measures:

1. Start-up of `configs/celeba.py` (256x256, batch 16) on each folder: seconds from launching
   `python -m clmser_jax.main` to its first logged train step, and the peak resident memory of
   each process of the run (training process, data workers), summed, up to its third; the mask bank
   is made once beforehand and shared (`data/mask_banks.py`), so both runs start alike.
2. Loader-only images/s, in one process, interleaved rounds, median: this pipeline
   (`data.pipeline.train_batches`, the celeba config's crops, flips and masks) at 0, 1 and 2
   workers from the JPEG folder and from the prepared copy; beside it a bare loop of
   `PIL.Image.open(...).convert('RGB')` and a 256 crop on the same files, and the authors'
   kind of pipeline: a PyTorch `Dataset` (open, convert, resize the shorter side to 256 bicubic,
   random 256 crop, random flip, a mask from the same bank) under `torch.utils.data.DataLoader`
   with the same batch size and worker count.
3. `input_wait_fraction` of `configs/celeba.py` with the default workers over 100 training
   steps on the CPU (logged every 10 steps; the first row, which holds the compile, is left
   out of the mean).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
import psutil
from PIL import Image

from benchmarks import image_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 16
SIZE = 256


def _folder(root: str, count: int, size: int) -> str:
  folder = os.path.join(root, f"jpeg_{count}_{size}")
  if len(os.listdir(folder) if os.path.isdir(folder) else []) != count:
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    image_folder.write_folder(folder, count, size, workers=os.cpu_count() or 1)
    print(f"generated {count} JPEGs in {time.perf_counter() - started:.0f}s", flush=True)
  return folder


def _prepared(root: str, folder: str) -> tuple[str, float]:
  from clmser_jax.data import pipeline, prepare
  out = os.path.join(root, os.path.basename(folder) + f"_records{SIZE}")
  started = time.perf_counter()
  prepare.prepare(f"folder:{folder}", SIZE, out, pipeline.default_workers(), 1024)
  return out, time.perf_counter() - started


def _main_command(workdir: str, dataset: str, *flags: str) -> list[str]:
  return [sys.executable, "-m", "clmser_jax.main", "--config=configs/celeba.py",
          f"--workdir={workdir}", f"--config.dataset={dataset}", *flags]


def _peak_rss(process: psutil.Process) -> int:
  """The sum over `process` and its descendants of each one's peak resident memory (the
  kernel's high-water mark, `VmHWM`): no sampling, so a child caught between `fork` and
  `exec` (when it still maps its parent's pages) is never counted twice."""
  total = 0
  for p in [process, *process.children(recursive=True)]:
    try:
      with open(f"/proc/{p.pid}/status") as f:
        total += next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) * 1024
    except (OSError, StopIteration):
      pass
  return total


def _train_lines(workdir: str) -> list[dict]:
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(l) for l in f if l.endswith("\n") and '"train"' in l]


def startup(folder: str, masks: str, workdir: str) -> dict:
  """Seconds to the first train step, and the processes' peak RSS (GiB) up to the third."""
  shutil.rmtree(workdir, ignore_errors=True)
  shutil.copytree(masks, os.path.join(workdir, "masks"))
  command = _main_command(workdir, f"folder:{folder}", "--config.log_every_steps=1",
                          "--config.num_train_steps=1000", "--config.eval_every_steps=100000",
                          "--config.checkpoint_every_steps=100000")
  started = time.perf_counter()
  process = psutil.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  first = None
  try:
    while len(lines := _train_lines(workdir)) < 3:
      if process.poll() is not None:
        raise RuntimeError(f"the run ended early with {process.returncode}: {command}")
      if lines and first is None:
        first = time.perf_counter() - started
      time.sleep(0.05)
    peak = _peak_rss(process)
  finally:
    for child in process.children(recursive=True):
      child.kill()
    process.kill()
    process.wait()
  return {"first_step_s": first or time.perf_counter() - started, "peak_rss_gib": peak / 2**30}


def make_masks(root: str, folder: str) -> str:
  """A workdir's `masks/` with the celeba config's banks, made once."""
  workdir = os.path.join(root, "masks_run")
  if not os.path.isdir(os.path.join(workdir, "masks")):
    subprocess.run(_main_command(workdir, f"folder:{folder}", "--config.num_train_steps=1",
                                 "--config.num_eval_images=4"), cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  return os.path.join(workdir, "masks")


class TorchFolder:
  """The authors' kind of `Dataset`: PIL decode, resize, random crop and flip, a mask."""

  def __init__(self, files, bank, seed=0):
    self.files, self.bank, self.seed = files, np.array(bank), seed

  def __len__(self):
    return len(self.files)

  def __getitem__(self, i):
    import torch  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng([self.seed, i])
    image = Image.open(self.files[i]).convert("RGB")
    w, h = image.size
    scale = SIZE / min(w, h)
    image = np.asarray(image.resize((max(SIZE, round(w * scale)), max(SIZE, round(h * scale))),
                                    Image.BICUBIC))
    y = rng.integers(image.shape[0] - SIZE + 1)
    x = rng.integers(image.shape[1] - SIZE + 1)
    crop = image[y:y + SIZE, x:x + SIZE]
    crop = crop[:, ::-1] if rng.random() < 0.5 else crop
    return (torch.from_numpy(np.ascontiguousarray(crop)),
            torch.from_numpy(self.bank[rng.integers(len(self.bank))]))


def _rate(iterator, batches: int, warmup: int) -> float:
  """Images per second over `batches` batches after `warmup` untimed ones."""
  for _ in range(warmup):
    next(iterator)
  started = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return batches * BATCH / (time.perf_counter() - started)


def _ours(spec: str, workers: int, bank, first: int, batches: int):
  from clmser_jax.data import load_dataset, pipeline
  from configs import celeba
  config = celeba.get_config()
  config.dataset = spec
  dataset = load_dataset(config)
  sampler = pipeline.Sampler(pipeline.Reader(dataset.train), SIZE, True, (first,), None, bank)
  ds = pipeline.train_batches(sampler, slice(0, BATCH), 1, batches + 2 * (workers + 1),
                              workers, prefetch=2)
  return iter(ds)


def _torch(files, workers: int, bank, first: int):
  import torch  # pylint: disable=g-import-not-at-top
  loader = torch.utils.data.DataLoader(
      TorchFolder(files, bank, first), batch_size=BATCH, shuffle=True, num_workers=workers,
      generator=torch.Generator().manual_seed(first), prefetch_factor=2 if workers else None)
  return iter(loader)


def _bare(files, first: int):
  """Batches of `Image.open(...).convert('RGB')` and a crop, in this process."""
  rng = np.random.default_rng(first)
  while True:
    for _ in range(BATCH):
      image = np.asarray(Image.open(files[rng.integers(len(files))]).convert("RGB"))
      y, x = rng.integers(image.shape[0] - SIZE + 1), rng.integers(image.shape[1] - SIZE + 1)
      np.ascontiguousarray(image[y:y + SIZE, x:x + SIZE])
    yield


def loader_rates(folder: str, records: str, bank, rounds: int, batches: int) -> dict:
  """Median images/s of each loader over `rounds` interleaved rounds."""
  files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
  loaders = {"bare PIL loop": lambda r: (_bare(files, r), 1)}
  for w in (0, 1, 2):
    loaders[f"ours, JPEG folder, {w} workers"] = (
        lambda r, w=w: (_ours(f"folder:{folder}", w, bank, r, batches), 2 * (w + 1)))
    loaders[f"ours, prepared copy, {w} workers"] = (
        lambda r, w=w: (_ours(f"records:{records}", w, bank, r, batches), 2 * (w + 1)))
    loaders[f"PyTorch DataLoader, {w} workers"] = (
        lambda r, w=w: (_torch(files, w, bank, r), 2 * (w + 1)))
  rates = {name: [] for name in loaders}
  for r in range(rounds):
    for name, make in loaders.items():
      iterator, warmup = make(r)
      rates[name].append(_rate(iterator, batches, warmup))
      if hasattr(iterator, "close"):
        iterator.close()
      del iterator
      print(f"round {r}: {name}: {rates[name][-1]:.0f} img/s", flush=True)
  return {name: statistics.median(v) for name, v in rates.items()}


def input_wait(folder: str, masks: str, workdir: str, steps: int) -> list[dict]:
  """The train rows of `steps` steps of the celeba config with the default workers."""
  shutil.rmtree(workdir, ignore_errors=True)
  shutil.copytree(masks, os.path.join(workdir, "masks"))
  subprocess.run(_main_command(workdir, f"folder:{folder}", f"--config.num_train_steps={steps}",
                               "--config.log_every_steps=10", "--config.num_eval_images=16",
                               f"--config.eval_every_steps={steps}",
                               f"--config.checkpoint_every_steps={steps}"),
                 cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  return _train_lines(workdir)


def report(args, starts, prepare_s, rates, rows) -> str:
  from clmser_jax.data import pipeline
  small, large = starts[args.small], starts[args.large]
  bare, one = rates["bare PIL loop"], rates["ours, JPEG folder, 1 workers"]
  lines = [
      f"### Input pipeline ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} "
      f"UTC, {platform.processor() or platform.machine()}, {os.cpu_count()} cores)", "",
      f"`python -m benchmarks.data --large {args.large} --small {args.small} --size "
      f"{args.size}`: generated JPEGs of {args.size}x{args.size}, `configs/celeba.py` "
      f"(256x256, batch {BATCH}, point masks); default workers here: "
      f"{pipeline.default_workers()}.", "",
      "| start-up of configs/celeba.py | first train step (s), median (runs) "
      "| peak RSS summed over processes (GiB), median (runs) |",
      "|---|---|---|"]
  median = lambda runs, key: float(np.median([v[key] for v in runs]))
  for count in (args.small, args.large):
    each = lambda key, f: ", ".join(f.format(v[key]) for v in starts[count])
    lines.append(f"| {count} images | {median(starts[count], 'first_step_s'):.1f} "
                 f"({each('first_step_s', '{:.1f}')}) | "
                 f"{median(starts[count], 'peak_rss_gib'):.2f} "
                 f"({each('peak_rss_gib', '{:.2f}')}) |")
  ratio_t = median(large, "first_step_s") / median(small, "first_step_s")
  ratio_m = median(large, "peak_rss_gib") / median(small, "peak_rss_gib")
  lines += ["", f"{args.large} against {args.small} images: first step {ratio_t:.2f}x "
            f"(target <= 1.3x), peak RSS {ratio_m:.2f}x (target <= 1.2x). Preparing the "
            f"{args.large}-image copy took {prepare_s:.0f} s.", "",
            f"| loader ({args.rounds} interleaved rounds of {args.batches} batches, median) "
            "| images/s | vs bare PIL loop |", "|---|---|---|"]
  for name, rate in rates.items():
    lines.append(f"| {name} | {rate:.0f} | {rate / bare:.2f} |")
  torch = {w: rates[f"PyTorch DataLoader, {w} workers"] for w in (0, 1, 2)}
  ours = {w: rates[f"ours, JPEG folder, {w} workers"] for w in (0, 1, 2)}
  waits = [r["input_wait_fraction"] for r in rows[1:]]
  lines += ["", f"Targets: 1 worker / bare loop {one / bare:.2f} (>= 0.8); 2 workers / 1 worker "
            f"{ours[2] / one:.2f} (>= 1.6); ours / PyTorch at 0, 1, 2 workers "
            f"{', '.join(f'{ours[w] / torch[w]:.2f}' for w in (0, 1, 2))} (>= 1).", "",
            f"Training {rows[-1]['step']} steps of configs/celeba.py on the CPU with the "
            f"default workers: input_wait_fraction {np.mean(waits):.3f} mean, "
            f"{max(waits):.3f} at most over rows 2-{len(rows)} (target <= 0.05); "
            f"{np.mean([r['images_per_sec'] for r in rows[1:]]):.1f} images/s.", ""]
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--large", type=int, default=30000)
  parser.add_argument("--small", type=int, default=300)
  parser.add_argument("--size", type=int, default=512)
  parser.add_argument("--root", default="/tmp/clmser_data_bench")
  parser.add_argument("--repeats", type=int, default=4, help="start-up runs per folder")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--batches", type=int, default=30)
  parser.add_argument("--steps", type=int, default=100)
  parser.add_argument("--out", default=None, help="append the report to this file")
  args = parser.parse_args()
  folders = {n: _folder(args.root, n, args.size) for n in (args.small, args.large)}
  records, prepare_s = _prepared(args.root, folders[args.large])
  masks = make_masks(args.root, folders[args.small])
  bank = np.load(next(os.path.join(masks, f) for f in sorted(os.listdir(masks))
                      if "seed0-" in f))
  starts = {n: [] for n in folders}
  for _ in range(args.repeats):
    for n, folder in folders.items():
      starts[n].append(startup(folder, masks, os.path.join(args.root, f"start_{n}")))
      print(f"start-up, {n} images: {starts[n][-1]}", flush=True)
  rates = loader_rates(folders[args.large], records, bank, args.rounds, args.batches)
  rows = input_wait(folders[args.small], masks, os.path.join(args.root, "train"), args.steps)
  text = report(args, starts, prepare_s, rates, rows)
  print(text)
  if args.out:
    with open(args.out, "a") as f:
      f.write("\n" + text)


if __name__ == "__main__":
  main()
