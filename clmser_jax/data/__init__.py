"""Datasets: which images train and which evaluate, as random-access sources that read an
image only when the pipeline (`pipeline.py`) asks for it.

`config.dataset` names the training images: `embedded` (photographs inside scikit-image and
scikit-learn), `digits` (scikit-learn's, labelled), `folder:/path` (PNG/JPEG, recursive),
`list:/path/list.txt` (an image list), `records:/path` (a prepared copy, `prepare.py`) or
`tfds:NAME` (a prepared tensorflow-datasets dataset). `config.eval_dataset` names the
evaluation images (`folder:`, `list:` or `records:`); empty, a folder, list or prepared copy
holds out every 10th of its images (in its order), and the others their own test split.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from clmser_jax.data import digits, listing, photos, sources, tfds_sources
from clmser_jax.faults import InputError

FILE_DATASETS = ("folder", "list", "records")  # `KIND:/path`, the datasets read from files


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Training and evaluation images: uint8 RGB, any size whose shorter side is at least
  `image_size`, random access (`sources`); labelled datasets also carry one class per image.

  `flip` turns on random horizontal flips of training crops (photographs, not digits);
  `centre` makes each evaluation image one centre crop instead of its tiles.
  """
  train: Sequence[np.ndarray]
  eval: Sequence[np.ndarray]
  image_size: int
  train_labels: np.ndarray | None = None  # (len(train),) int32
  eval_labels: np.ndarray | None = None  # (len(eval),) int32
  num_classes: int = 0
  flip: bool = True
  centre: bool = False


def file_source(spec: str, root: str, config) -> Sequence[np.ndarray]:
  """The images of `folder:`, `list:` or `records:` `spec`, read lazily; `list:` entries
  relative to `root` ('' = the list file's folder)."""
  kind, _, where = spec.partition(":")
  size, resize = config.image_size, config.resize
  if kind == "records":
    return sources.Prepared(where, size, resize)
  paths = listing.find_images(where) if kind == "folder" else listing.read_list(where, root)
  return sources.ImageFiles(paths, size, resize)


def _from_files(config) -> Dataset:
  images = file_source(config.dataset, config.data.root, config)
  if config.eval_dataset:
    return Dataset(images, file_source(config.eval_dataset, config.data.eval_root, config),
                   config.image_size)
  if len(images) < 2:
    raise InputError(f"dataset {config.dataset!r} has {len(images)} image; need at least 2 "
                     "(one to train on, one to evaluate on) or --config.eval_dataset")
  return Dataset(*sources.hold_out(images), config.image_size)


def first_images(dataset: Dataset, n: int) -> Dataset:
  """`dataset` training on its first `n` images only (0 = all), as STL10-n (Table 4) trains
  on fewer images against the same test set."""
  if not n:
    return dataset
  if n > len(dataset.train):
    raise InputError(f"data.train_images={n}, but the dataset has {len(dataset.train)} "
                     "training images")
  labels = None if dataset.train_labels is None else dataset.train_labels[:n]
  return dataclasses.replace(dataset, train=sources.Subset(dataset.train, np.arange(n)),
                             train_labels=labels)


def load_dataset(config) -> Dataset:
  """The dataset `config.dataset` (and `config.eval_dataset`) names, training on its first
  `config.data.train_images`; no image is decoded."""
  return first_images(_named(config), config.data.train_images)


def _named(config) -> Dataset:
  size = config.image_size
  kind = config.dataset.partition(":")[0]
  if kind == "tfds":
    return Dataset(image_size=size, centre=True, **tfds_sources.load(
        config.dataset.split(":", 1)[1], config.data_dir, config.per_class, size,
        config.resize, config.num_eval_images))
  if config.dataset == "digits":
    (train, train_labels), (test, test_labels) = digits.embedded_digits(size)
    return Dataset(train, test, size, train_labels, test_labels, digits.NUM_CLASSES,
                   flip=False, centre=True)
  if config.dataset == "embedded":
    train, test = photos.embedded_photos(size, config.resize)
    return Dataset(tuple(train), tuple(test), size)
  return _from_files(config)
