"""Config presets (Table 2-3) and the one place configs are validated.

`validate(config)` runs before any work and raises `ConfigError` with one line that names the
field, its value and what is allowed; code below it never re-checks the config.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import ml_collections
import optax

from clmser_jax.data import FILE_DATASETS, masks, tfds_sources
from clmser_jax.models import VARIANTS
from clmser_jax.models.activations import ACTIVATIONS
from clmser_jax.models.reflections import FUSIONS

# Table 2: depth d = len(channels); kernel 3; ReLU; one reflection.
ARCHITECTURES = {
    "stl10": dict(channels=(16, 32, 64, 128, 256), strides=(1, 2, 2, 2, 2)),
    "celeba": dict(channels=(16, 32, 64, 128, 256, 256, 256), strides=(1, 2, 2, 2, 2, 2, 2)),
}
ARCHITECTURES["places2"] = ARCHITECTURES["celeba"]

# The authors' official network (CMACH508/CLmser `model/*.py`, CelebA channels and strides):
# conv -> BatchNorm -> ReLU blocks, skips averaged after the activation, Tanh output, Xavier.
OFFICIAL = dict(norm="batch", fusion="post_mean", output_activation="tanh",
                kernel_init="xavier")

DATASETS = ("embedded", "digits")  # built in; see `data.load_dataset`
TFDS_DATASETS = tuple(tfds_sources.SOURCES)  # 'tfds:NAME[/CONFIG][:VERSION]'


@dataclasses.dataclass(frozen=True)
class Optimizer:
  """An optimizer of Table 3: its optax transformation (of the learning rate) and the
  paper's learning rate for it."""
  transform: Callable[[float], optax.GradientTransformation]
  learning_rate: float


# The one table of optimizers (Table 3; AMSGrad is the official code's `Adam(amsgrad=True)`).
OPTIMIZERS = {"adam": Optimizer(optax.adam, 1e-3), "amsgrad": Optimizer(optax.amsgrad, 1e-3),
              "sgd": Optimizer(optax.sgd, 0.01)}
MODELS = ("clmser", "unet", "cnn")
FEED_FORWARD = ("unet", "cnn")  # separate kernels, one pass
KERNEL_INITS = ("auto", "he", "contractive", "xavier")
NORMS = ("none", "batch")
MODEL_NAMES = (*VARIANTS, *FEED_FORWARD)
TASKS = ("reconstruct", "inpaint", "dsp")
PIXEL_RANGES = ("unit", "symmetric")
LOSSES = ("mse", "hole_valid")
LOSS_NORMS = ("l1", "l2")
DTYPES = ("float32", "bfloat16")  # compute dtype; parameters and optimizer state stay float32


class ConfigError(ValueError):
  """A config field holds a value that is not allowed; the message names the field."""


def model_config(name: str = "clmser", architecture: str = "stl10",
                 official: bool = False) -> ml_collections.ConfigDict:
  """A model config for one of `MODEL_NAMES` (Table 1, U-Net, Table 7's CNN) on a Table 2
  preset; `official` switches a CLmser variant to the authors' official network (`OFFICIAL`).
  `num_classes` > 0 adds the label layer of DSP (Table 7; the CNN needs it)."""
  if name not in MODEL_NAMES:
    raise ConfigError(f"model variant {name!r} is unknown; allowed: {', '.join(MODEL_NAMES)}")
  if architecture not in ARCHITECTURES:
    raise ConfigError(f"architecture {architecture!r} is unknown; allowed: "
                      f"{', '.join(ARCHITECTURES)}")
  if official and name not in VARIANTS:
    raise ConfigError(f"model variant {name!r} has no official network; allowed: "
                      f"{', '.join(VARIANTS)}")
  arch = ARCHITECTURES[architecture]
  dcw, dpn = VARIANTS.get(name, (False, False))
  config = ml_collections.ConfigDict(dict(
      name=name if name in FEED_FORWARD else "clmser",
      dcw=dcw, dpn=dpn, reflections=1,
      depth=len(arch["channels"]), channels=arch["channels"], strides=arch["strides"],
      kernel_size=3, activation="relu", output_activation="identity",
      kernel_init="auto", contraction_gain=0.9, norm="none", fusion="sum", num_classes=0,
      dtype="float32", remat=False))
  if official:
    config.update(OFFICIAL)
  return config


def task_config(name: str = "reconstruct", **overrides) -> ml_collections.ConfigDict:
  """What the network is trained for (`tasks.py`): reconstruction, inpainting, or 'dsp', the
  supervised Lmser (Table 7: reconstruction plus `class_weight` times the cross-entropy).

  Inpainting fields: `mask` ('points' = the paper's dense point-shaped masks, 'rectangle',
  'strokes' or 'folder:/path' of PNG masks, read with `mask_polarity` 'known' or 'hole' for
  white), `mask_ratio` (hole fraction of generated masks), `mask_bank_size` (masks generated
  once and sampled per step), `mask_channel` (feed the mask as a fourth channel), `loss`
  ('mse' over the full image, as the authors, or 'hole_valid': `hole_weight` and
  `valid_weight` times the `loss_norm` error over holes and known pixels).
  """
  config = ml_collections.ConfigDict(dict(
      name=name, pixel_range="unit", mask="points", mask_ratio=0.25, mask_polarity="known",
      mask_bank_size=512, mask_channel=False, loss="mse", loss_norm="l1", hole_weight=6.0,
      valid_weight=1.0, class_weight=1.0))
  config.update(overrides)
  return config


def data_config(**overrides) -> ml_collections.ConfigDict:
  """The input pipeline's knobs (`data/pipeline.py`): `workers`, the processes that decode and
  crop (-1 = a worker per core less one, 0 = none: batches are made in the training process);
  `prefetch`, the batches each worker, and the queue onto the devices, hold ahead; `root` and
  `eval_root`, the folders that the entries of a `list:` `dataset` and `eval_dataset` are
  relative to ('' = the list file's folder); `train_images`, train on the first n training
  images only (0 = all): the training-set size of STL10-n (Table 4) for any dataset."""
  config = ml_collections.ConfigDict(dict(workers=-1, prefetch=2, root="", eval_root="",
                                          train_images=0))
  config.update(overrides)
  return config


def with_defaults(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`config` (a run's `config.json`) with the input fields it lacks set to their defaults:
  a config written without them meant those."""
  config = config.copy_and_resolve_references()
  with config.unlocked():
    if "eval_dataset" not in config:
      config.eval_dataset = ""
    if "data" not in config:
      config.data = ml_collections.ConfigDict()
    for field, value in data_config().items():
      if field not in config.data:
        config.data[field] = value
  return config


def _fail(field, value, allowed):
  raise ConfigError(f"config.{field}={value!r} is not allowed: {allowed}")


def _positive_int(config, field):
  value = config
  for part in field.split("."):
    value = value[part]
  if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
    _fail(field, value, "a positive integer")


def _validate_model(config):
  m = config.model
  if m.name not in MODELS:
    _fail("model.name", m.name, f"one of {MODELS}")
  _positive_int(config, "model.depth")
  for field in ("channels", "strides"):
    values = tuple(m[field])
    if len(values) != m.depth:
      raise ConfigError(f"config.model.{field} has {len(values)} entries but "
                        f"config.model.depth={m.depth}: give one entry per layer")
    if not all(isinstance(v, int) and v > 0 for v in values):
      _fail(f"model.{field}", values, "positive integers")
  if not (isinstance(m.kernel_size, int) and m.kernel_size > 0 and m.kernel_size % 2):
    _fail("model.kernel_size", m.kernel_size, "a positive odd integer")
  for field in ("activation", "output_activation"):
    if m[field] not in ACTIVATIONS:
      _fail(f"model.{field}", m[field], f"one of {tuple(ACTIVATIONS)}")
  _positive_int(config, "model.reflections")
  if m.reflections > 1 and not m.dpn:
    _fail("model.reflections", m.reflections,
          "1 when model.dpn=False (without paired neurons nothing feeds back, so every "
          "reflection repeats the first)")
  if m.name in FEED_FORWARD and (m.dcw or m.dpn or m.reflections != 1 or m.remat):
    raise ConfigError(f"config.model.name={m.name!r} needs model.dcw=False, model.dpn=False, "
                      "model.reflections=1 and model.remat=False (U-Net and the CNN have "
                      f"separate kernels and one pass); got dcw={m.dcw}, dpn={m.dpn}, "
                      f"reflections={m.reflections}, remat={m.remat}")
  if m.kernel_init not in KERNEL_INITS:
    _fail("model.kernel_init", m.kernel_init, f"one of {KERNEL_INITS}")
  if not 0 < m.contraction_gain < 1:
    _fail("model.contraction_gain", m.contraction_gain, "a number in (0, 1)")
  if m.dtype not in DTYPES:
    _fail("model.dtype", m.dtype, f"one of {DTYPES}")
  _validate_official_options(m)


def _validate_official_options(m):
  """`norm` and `fusion`: the official network's options, CLmser only, one pass."""
  if m.norm not in NORMS:
    _fail("model.norm", m.norm, f"one of {NORMS}")
  if m.fusion not in FUSIONS:
    _fail("model.fusion", m.fusion, f"one of {FUSIONS}")
  for field, default in (("norm", "none"), ("fusion", "sum")):
    if m[field] == default:
      continue
    if m.name in FEED_FORWARD:
      _fail(f"model.{field}", m[field], f"{default!r} with model.name={m.name!r}")
    if m.reflections != 1:
      _fail(f"model.{field}", m[field],
            f"{default!r} when model.reflections={m.reflections} (the official network is "
            "one pass; BatchNorm and post-activation averaging are not defined for feedback)")


def _validate_decay(opt):
  """Optional step decay: `decay_steps` strictly increasing positive steps, `decay_factor`."""
  steps = tuple(opt.get("decay_steps", ()))
  if not all(isinstance(s, int) and s > 0 for s in steps) or list(steps) != sorted(set(steps)):
    _fail("optimizer.decay_steps", steps, "strictly increasing positive integers (steps)")
  if steps and not 0 < opt.get("decay_factor", 0) <= 1:
    _fail("optimizer.decay_factor", opt.get("decay_factor"), "a number in (0, 1]")


def _validate_task(config):
  t = config.task
  for field, allowed in (("name", TASKS), ("pixel_range", PIXEL_RANGES), ("loss", LOSSES),
                         ("loss_norm", LOSS_NORMS), ("mask_polarity", masks.POLARITIES)):
    if t[field] not in allowed:
      _fail(f"task.{field}", t[field], f"one of {allowed}")
  if t.name != "inpaint":
    return
  if not (t.mask in masks.MASKS or t.mask.startswith("folder:")):
    _fail("task.mask", t.mask, f"one of {tuple(masks.MASKS)} or 'folder:/path/to/masks'")
  if not 0 <= t.mask_ratio < 1:
    _fail("task.mask_ratio", t.mask_ratio, "a hole fraction in [0, 1)")
  _positive_int(config, "task.mask_bank_size")
  for field in ("hole_weight", "valid_weight"):
    if t[field] < 0:
      _fail(f"task.{field}", t[field], "a non-negative number")


def _tfds_source(config):
  """The `tfds_sources.Source` of a `tfds:NAME` dataset; None for anything else."""
  name = str(config.dataset)
  if not name.startswith("tfds:"):
    return None
  return tfds_sources.SOURCES.get(tfds_sources.base_name(name.split(":", 1)[1]))


def _is_file_dataset(spec) -> bool:
  """`folder:/path`, `list:/path/list.txt` or `records:/path`, with a path."""
  kind, _, where = str(spec).partition(":")
  return kind in FILE_DATASETS and bool(where)


def _validate_data(config):
  """`eval_dataset` (a file dataset beside a file dataset, or '') and the pipeline's knobs."""
  if config.eval_dataset and not (_is_file_dataset(config.eval_dataset)
                                  and _is_file_dataset(config.dataset)):
    _fail("eval_dataset", config.eval_dataset, "'' (held out from config.dataset), or "
          "'folder:/path', 'list:/path/list.txt' or 'records:/path' when config.dataset is "
          "one of those too")
  workers = config.data.workers
  if not isinstance(workers, int) or isinstance(workers, bool) or workers < -1:
    _fail("data.workers", workers, "-1 (a worker per core less one), 0 (none: batches are "
          "made in the training process) or a number of worker processes")
  _positive_int(config, "data.prefetch")
  train_images = config.data.train_images
  if not isinstance(train_images, int) or isinstance(train_images, bool) or train_images < 0:
    _fail("data.train_images", train_images, "a non-negative integer (0 = all training images)")
  for field in ("root", "eval_root"):
    if not isinstance(config.data[field], str):
      _fail(f"data.{field}", config.data[field], "a folder, or '' (list entries are relative "
            "to the list file's folder)")


def _validate_dataset(config):
  """`dataset`, `data_dir` (tfds) and `per_class` (STL10-n and the like: labelled tfds only)."""
  name = str(config.dataset)
  source = _tfds_source(config)
  if not (name in DATASETS or _is_file_dataset(name) or source):
    _fail("dataset", config.dataset, f"one of {DATASETS}, 'folder:/path/to/images', "
          "'list:/path/list.txt', 'records:/path' (a prepared copy) or 'tfds:NAME' with NAME "
          f"(optionally '/config:version') one of {TFDS_DATASETS}")
  _validate_data(config)
  if not isinstance(config.data_dir, str):
    _fail("data_dir", config.data_dir, "a directory path, or '' for TFDS's default "
          "($TFDS_DATA_DIR or ~/tensorflow_datasets)")
  per_class = config.per_class
  if not (isinstance(per_class, int) and not isinstance(per_class, bool) and per_class >= 0):
    _fail("per_class", per_class, "a non-negative integer (0 = all training images)")
  if per_class and not (source and source.per_class):
    labelled = tuple(n for n, s in tfds_sources.SOURCES.items() if s.per_class)
    _fail("per_class", per_class, f"0 with dataset={name!r}: per_class picks the first images "
          f"of each class of a labelled 'tfds:NAME', NAME one of {labelled}")
  if source and per_class > source.per_class:
    _fail("per_class", per_class, f"at most {source.per_class}, the training images of the "
          f"smallest class of {name!r} (0 = all)")


def _validate_dsp(config):
  """DSP (Table 7): a label layer exactly when the task is 'dsp', on a labelled dataset; the
  CNN only there (it reconstructs nothing)."""
  m, t = config.model, config.task
  if not (isinstance(m.num_classes, int) and not isinstance(m.num_classes, bool)
          and m.num_classes >= 0):
    _fail("model.num_classes", m.num_classes, "a non-negative integer")
  if t.name != "dsp":
    if m.num_classes:
      _fail("model.num_classes", m.num_classes,
            f"0 with task.name={t.name!r} (the label layer is for task.name='dsp')")
    if m.name == "cnn":
      _fail("model.name", m.name, f"'clmser' or 'unet' with task.name={t.name!r} (the CNN "
            "only classifies: task.name='dsp')")
    return
  if m.name == "unet":
    _fail("model.name", m.name, "'clmser' or 'cnn' with task.name='dsp'")
  if m.num_classes < 2:
    _fail("model.num_classes", m.num_classes,
          "the number of classes (>= 2) with task.name='dsp'")
  source = _tfds_source(config)
  if not (config.dataset == "digits" or source and source.per_class):
    labelled = ("digits", *(f"tfds:{n}" for n, s in tfds_sources.SOURCES.items() if s.per_class))
    _fail("dataset", config.dataset, f"a labelled dataset with task.name='dsp': one of {labelled}")
  if not t.class_weight > 0:
    _fail("task.class_weight", t.class_weight, "a positive number")


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks every field the run uses; raises `ConfigError` naming the first bad one."""
  _validate_dataset(config)
  for field in ("image_size", "batch_size", "num_train_steps", "eval_every_steps",
                "checkpoint_every_steps", "log_every_steps", "num_eval_images"):
    _positive_int(config, field)
  if not (isinstance(config.resize, int) and (config.resize == 0 or
                                              config.resize >= config.image_size)):
    _fail("resize", config.resize, f"0 (native resolution) or an integer >= image_size="
          f"{config.image_size} (the shorter side is resized to it before cropping)")
  if not isinstance(config.seed, int):
    _fail("seed", config.seed, "an integer")
  if config.optimizer.name not in OPTIMIZERS:
    _fail("optimizer.name", config.optimizer.name, f"one of {tuple(OPTIMIZERS)}")
  if not config.optimizer.learning_rate > 0:
    _fail("optimizer.learning_rate", config.optimizer.learning_rate, "a positive number")
  _validate_decay(config.optimizer)
  _validate_model(config)
  _validate_task(config)
  _validate_dsp(config)
  total_stride = math.prod(config.model.strides)
  if config.image_size % total_stride:
    _fail("image_size", config.image_size,
          f"a multiple of the total stride {total_stride} of model.strides")
