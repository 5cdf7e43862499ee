"""The batches a run sees, made in the test process: a step's training rows and the whole
evaluation set, as float32 in [0, 1] (what the jitted steps compute from the pipeline's
uint8)."""
from __future__ import annotations

import numpy as np

from clmser_jax import tasks, train
from clmser_jax.data import pipeline


def sampler(config, dataset, masks=None) -> pipeline.Sampler:
  """The training sampler `train.train_and_evaluate` builds for `config`."""
  return pipeline.Sampler(pipeline.Reader(dataset.train), config.image_size, dataset.flip,
                          (config.seed,), dataset.train_labels, masks)


def train_batch(config, dataset, step: int, rows: slice | None = None) -> dict:
  """The (unit-range) training batch of `step`, or its `rows`."""
  rows = rows or slice(0, config.batch_size)
  return tasks.unit_batch(pipeline.host_batch(sampler(config, dataset), step, rows))


def eval_images(config, dataset) -> np.ndarray:
  """Every evaluation crop of `config`, in order, in [0, 1]."""
  return np.concatenate([tasks.unit_batch(b)["image"]
                         for b in train.eval_batches(config, dataset, None)])
