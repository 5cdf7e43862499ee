"""A trained run applied to images of any size (Sec. 5.1-5.3 tasks on the user's own photos).

`load_run(workdir)` reads the run's `config.json` (written by `train.train_and_evaluate`) and
its latest checkpoint, read-only, so a run that is still training can be used.
`image_predictor(run, task_name)` returns a function from one image `(H, W, 3)` in [0, 1]
(and, for inpainting, its mask `(H, W, 1)`, 1 = known pixel) to the task's prediction
`(H, W, 3)`, computed by `train.eval_step`: the training's pixel range, mask channel and
composite.

Any size: image and mask are padded at the bottom and right to the next multiple of the
model's total stride by reflection (`np.pad(mode='reflect')`: mirror images without repeating
the edge row, so the padding looks like more of the photo rather than a border the network
never saw), the network runs on the whole padded image and the result is cropped back.

No tiling: the network is fully convolutional and inference keeps no activations for a
backward pass, so time and memory grow linearly with the pixels (`docs/inference.md`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Callable

import jax
import ml_collections
import numpy as np
from absl import logging

from clmser_jax import checkpoint, ops, tasks, train
from clmser_jax.config import validate, with_defaults
from clmser_jax.faults import InputError, one_line
from clmser_jax.models import build_model

CONFIG_FILE = "config.json"


@dataclasses.dataclass(frozen=True)
class Run:
  """A run's config and its train state at checkpoint `step`."""
  config: ml_collections.ConfigDict
  state: train.TrainState
  step: int


def _tuples(value):
  """JSON's lists back to the tuples the config had."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """`workdir/config.json` as the run's validated config."""
  if not os.path.isdir(workdir):
    raise InputError(f"workdir {workdir!r} does not exist")
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise InputError(f"workdir {workdir!r} has no {CONFIG_FILE} (clmser_jax.main writes it; "
                     "for a converted checkpoint pass the run's --config)")
  try:
    with open(path) as f:
      config = with_defaults(ml_collections.ConfigDict(_tuples(json.load(f))))
  except (OSError, ValueError, TypeError) as error:
    raise InputError(f"{path} cannot be read ({one_line(str(error), 200)}); pass the run's "
                     "config with --config=FILE") from None
  validate(config)
  return config


def abstract_state(config: ml_collections.ConfigDict):
  """The shapes of `config`'s train state, placed on the first local device."""
  shape = tasks.input_shape(config.task, config.image_size)
  model, tx = build_model(config.model), train.make_optimizer(config.optimizer)
  state = jax.eval_shape(lambda rng: train.create_train_state(rng, model, tx, shape),
                         jax.random.key(0))
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device), state)


def load_run(workdir: str, config: ml_collections.ConfigDict | None = None) -> Run:
  """The latest checkpoint of `workdir` with its `config.json`, or with `config` (a
  converted checkpoint has no `config.json`)."""
  if config is None:
    config = load_config(workdir)
  else:
    validate(config)
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    raise InputError(f"workdir {workdir!r} has no checkpoints folder: nothing to load")
  state, step, _ = checkpoint.restore_latest(checkpoint.reader(workdir),
                                             abstract_state(config))
  if state is None:
    raise InputError(f"workdir {workdir!r} holds no finished checkpoint yet")
  return Run(config, state, step)


def inference_task(task: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """The run's task for `name`. A reconstruction run can inpaint (it fills the holes with
  its reconstruction of `image * mask`, which it was not trained for: a warning); an
  inpainting run cannot reconstruct (the composite of a mask without holes is the input)."""
  if task.name == name:
    return task
  if name == "reconstruct":
    raise InputError("this run was trained for inpainting: use python -m clmser_jax.inpaint "
                     "(reconstructing would return the input unchanged)")
  logging.warning("this run was trained for reconstruction, not inpainting: its holes are "
                  "filled with its reconstruction of the masked image")
  task = task.copy_and_resolve_references()
  task.name, task.mask_channel = "inpaint", False
  return task


def pad_to_multiple(array: np.ndarray, multiple: int) -> np.ndarray:
  """`(H, W, C)` reflected at the bottom and right up to multiples of `multiple`."""
  h, w = array.shape[:2]
  return np.pad(array, ((0, -h % multiple), (0, -w % multiple), (0, 0)), mode="reflect")


def image_predictor(run: Run, task_name: str) -> Callable[..., np.ndarray]:
  """`predict(image, mask=None)` of `task_name` ('reconstruct' or 'inpaint') for one image of
  any size; compiled once per padded size."""
  task = inference_task(run.config.task, task_name)
  stride = math.prod(run.config.model.strides)
  ops.prepare()
  step = train.jit_eval_step(task, metrics=False)

  def predict(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    if task.name == "inpaint" and mask is None:
      raise ValueError("inpainting needs a mask")
    batch = {"image": image} if task.name == "reconstruct" else {"image": image, "mask": mask}
    padded = {k: pad_to_multiple(np.asarray(v, np.float32), stride)[None]
              for k, v in batch.items()}
    h, w = image.shape[:2]
    predicted = np.asarray(step(run.state, padded))[0, :h, :w]
    if not np.all(np.isfinite(predicted)):
      raise InputError(f"the checkpoint at step {run.step} gives non-finite outputs: the run "
                       "diverged before it; use a run that did not")
    return predicted

  return predict
