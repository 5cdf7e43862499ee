"""The input pipeline, on grain: training batches that are a pure function of `(seed, step)`,
made in worker processes ahead of the step that needs them, and the fixed evaluation batches,
streamed in order.

Training: row `r` of the batch of step `t` is `Sampler((t, r))`, drawn with the generator
seeded by `(seed, t, r)` (which image, where to crop, whether to flip, which mask). A process
of a multi-process job builds only its own rows, and a run resumed at step `t` starts the
chain at `t`: the batches are those of an uninterrupted run, whatever the number of workers
and processes. The chain is `MapDataset` (one element per row) -> `.batch` (one per step) ->
`.to_iter_dataset` -> `.mp_prefetch` (`workers` processes, each holding `prefetch` batches
ahead); `workers=0` builds the batches in the training process.

Images and masks travel as uint8 (a quarter of float32's bytes through the workers' shared
memory and onto the devices); the jitted steps scale them to [0, 1] (`tasks.unit_batch`).

An image that cannot be read is skipped by name: the row takes the next image of the source
instead (still a function of the step), the warning names the file once per process, and the
row's `skipped` field counts it for the training log.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import threading
import time
from typing import Iterator, Sequence

import grain
import numpy as np
from absl import flags, logging

from clmser_jax.data import photos, sources
from clmser_jax.faults import InputError, WorkerError, one_line

MAX_UNREADABLE_IN_A_ROW = 64  # more than this many in a row: the dataset is damaged, stop
# A reading thread in each worker decodes (outside the GIL) while the worker's own thread
# hands the previous batch over to the training process.
READ_THREADS = 1
EVAL_THREADS = 4  # the evaluation set is decoded by this many threads of the training process
PARENT_POLL_S = 1.0  # how often a worker looks whether the process it works for is still there


def default_workers() -> int:
  """`data.workers=-1`: a worker per core, less one for the training loop, at most 16."""
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return max(1, min(16, (cores or 1) - 1))


def workers(config_workers: int) -> int:
  return default_workers() if config_workers < 0 else config_workers


def in_processes(batches: grain.IterDataset, num_workers: int,
                 prefetch: int) -> grain.IterDataset:
  """`batches` made by `num_workers` processes (grain's `mp_prefetch`), `prefetch` ahead each;
  `num_workers=0` leaves them to the calling process."""
  if num_workers and not flags.FLAGS.is_parsed():
    # grain reads its absl flags when it starts workers; outside an absl program (a notebook,
    # the tests) they keep their defaults.
    flags.FLAGS.mark_as_parsed()
  return batches.mp_prefetch(
      grain.MultiprocessingOptions(num_workers=num_workers, per_worker_buffer_size=prefetch),
      worker_init_fn=functools.partial(_end_with, os.getpid()))


def _end_with(parent: int, worker: int, num_workers: int) -> None:
  """In each worker: ends it once process `parent` is gone. grain stops its workers when the
  iterator closes; a parent killed outright (SIGKILL, the kernel's OOM killer) never closes it,
  and its workers would wait for good, each holding its memory and shared batches."""
  del worker, num_workers

  def watch():
    while os.getppid() == parent:
      time.sleep(PARENT_POLL_S)
    os._exit(1)  # pylint: disable=protected-access

  threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


class Reader:
  """Reads image `i` of a source, or, when it cannot be read, the next readable one."""

  def __init__(self, images: Sequence[np.ndarray]):
    self.images = images
    self._reported = set()  # names already warned about, in this process

  def __call__(self, i: int) -> tuple[int, np.ndarray, int]:
    """`(index read, image, images skipped)`, starting at image `i`."""
    first = None
    for skipped in range(MAX_UNREADABLE_IN_A_ROW + 1):
      index = (i + skipped) % len(self.images)
      try:
        return index, self.images[index], skipped
      # A damaged file can make a decoder raise almost anything.
      except Exception as error:  # pylint: disable=broad-except
        name = sources.name(self.images, index)
        if name not in self._reported:
          self._reported.add(name)
          logging.warning("skipping unreadable image %s: %s", name, error)
        first = first or f"{name} ({error})"
    raise InputError(f"{MAX_UNREADABLE_IN_A_ROW + 1} images in a row cannot be read, from "
                     f"{first}; is the dataset damaged?")


@dataclasses.dataclass
class Sampler:
  """Row `r` of the training batch of step `t`: a random crop of `size` (flipped with
  probability 1/2 when `flip`), its label and a mask drawn from `masks` when there are any."""
  reader: Reader
  size: int
  flip: bool
  seed: tuple[int, ...]  # `(config.seed,)`; a study adds its stream: `(seed, stream)`
  labels: np.ndarray | None = None
  masks: Sequence[np.ndarray] | None = None

  def __call__(self, step_row: tuple[int, int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([*self.seed, *step_row])
    first = int(rng.integers(len(self.reader.images)))
    u_y, u_x, u_flip = rng.random(3)
    mask = int(rng.integers(len(self.masks))) if self.masks is not None else None
    index, image, skipped = self.reader(first)
    s = self.size
    y, x = int(u_y * (image.shape[0] - s + 1)), int(u_x * (image.shape[1] - s + 1))
    crop = image[y:y + s, x:x + s]
    row = {"image": crop[:, ::-1] if self.flip and u_flip < 0.5 else crop,
           "skipped": np.int32(skipped)}
    if self.labels is not None:
      row["label"] = np.int32(self.labels[index])
    if mask is not None:
      row["mask"] = np.asarray(self.masks[mask], np.uint8)
    return row


def _step_row(k: int, first_step: int, rows: slice) -> tuple[int, int]:
  """Element `k` of this process's rows, in step order: `(step, row)`."""
  n = rows.stop - rows.start
  return first_step + k // n, rows.start + k % n


def host_batch(sampler: Sampler, step: int, rows: slice) -> dict[str, np.ndarray]:
  """`rows` of the batch of `step`, made here and now: what the pipeline delivers for it."""
  made = [sampler((step, r)) for r in range(rows.start, rows.stop)]
  return {k: np.stack([row[k] for row in made]) for k in made[0]}


def train_batches(sampler: Sampler, rows: slice, first_step: int, last_step: int,
                  num_workers: int, prefetch: int) -> grain.IterDataset:
  """This process's `rows` of the batches of steps `first_step..last_step`, in order; each
  batch a dict of arrays with `rows` rows."""
  n = rows.stop - rows.start
  batches = (grain.MapDataset.range((last_step - first_step + 1) * n)
             .map(functools.partial(_step_row, first_step=first_step, rows=rows))
             .map(sampler)
             .batch(n)
             .to_iter_dataset(grain.ReadOptions(num_threads=READ_THREADS,
                                                prefetch_buffer_size=prefetch)))
  return in_processes(batches, num_workers, prefetch)


def next_batch(batches: Iterator, num_workers: int):
  """`next(batches)`; a worker process that died (killed for memory, say) ends the run with
  `faults.WorkerError` instead of grain's traceback."""
  try:
    return next(batches)
  except RuntimeError as error:
    if "Worker process was terminated" not in str(error):
      raise
    raise WorkerError(
        f"a data worker process died ({one_line(str(error).split('.')[0])}), e.g. "
        f"killed for memory; the checkpoints are kept, and a rerun resumes (fewer workers: "
        f"--config.data.workers, now {num_workers})") from None


def prefetch_to_device(batches: grain.IterDataset, place, prefetch: int) -> grain.IterDataset:
  """`place(batch)` (onto the devices) in a background thread, `prefetch` batches ahead of
  the training loop, the host batches in another (grain's `device_put`, with our placement:
  a multi-process job assembles global arrays from each process's rows)."""
  batches = grain.experimental.ThreadPrefetchIterDataset(batches, prefetch_buffer_size=prefetch)
  return grain.experimental.ThreadPrefetchIterDataset(batches.map(place),
                                                      prefetch_buffer_size=prefetch)


@dataclasses.dataclass
class EvalCrops:
  """The fixed evaluation crops of image `i`: its tiles (photographs) or its centre crop
  (datasets of one object per image), with its label repeated; none when it is unreadable."""
  images: Sequence[np.ndarray]
  size: int
  centre: bool
  labels: np.ndarray | None = None

  def __call__(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
    try:
      image = self.images[i]
    except Exception as error:  # pylint: disable=broad-except  (see `Reader`)
      logging.warning("skipping unreadable evaluation image %s: %s",
                      sources.name(self.images, i), error)
      return np.zeros((0, self.size, self.size, 3), np.uint8), None
    crops = (photos.centre_crop(image, self.size)[None] if self.centre
             else photos.tiles(image, self.size))
    labels = None if self.labels is None else np.full(len(crops), self.labels[i], np.int32)
    return crops, labels


def _first_crops(read, limit: int):
  """The first `limit` `(crop, label or None)` of the per-image crops `read` yields."""
  for crops, labels in read:
    for k in range(len(crops)):
      if limit == 0:
        return
      limit -= 1
      yield crops[k], None if labels is None else labels[k]


def eval_batches(crops: EvalCrops, masks: Sequence[np.ndarray] | None, batch_size: int,
                 limit: int) -> Iterator[dict[str, np.ndarray]]:
  """The first `limit` evaluation crops in batches of `batch_size` (the last may be smaller),
  in a fixed order, crop `k` with mask `k mod len(masks)`; images are decoded by threads,
  a few ahead, so the set is never all in memory."""
  read = iter(grain.MapDataset.range(len(crops.images)).map(crops)
              .to_iter_dataset(grain.ReadOptions(num_threads=EVAL_THREADS,
                                                 prefetch_buffer_size=2 * EVAL_THREADS)))
  try:
    pairs, start = _first_crops(read, limit), 0
    while chunk := list(itertools.islice(pairs, batch_size)):
      yield _eval_batch(chunk, start, masks)
      start += len(chunk)
  finally:
    read.close()


def _eval_batch(chunk, start: int, masks) -> dict[str, np.ndarray]:
  batch = {"image": np.stack([image for image, _ in chunk])}
  if chunk[0][1] is not None:
    batch["label"] = np.array([label for _, label in chunk], np.int32)
  if masks is not None:
    batch["mask"] = np.stack([np.asarray(masks[(start + k) % len(masks)], np.uint8)
                              for k in range(len(chunk))])
  return batch
