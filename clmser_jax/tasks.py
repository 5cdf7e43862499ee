"""What the network sees and is scored on: reconstruction (Sec. 5.1-5.2), inpainting
(Sec. 5.3) and the supervised Lmser (DSP, Sec. 6, Table 7).

A batch is a dict of host arrays: `image` (N, H, W, 3) in [0, 1], for inpainting `mask`
(N, H, W, 1) with 1 = known pixel, and for labelled datasets `label` (N,) int32. The model
works in `task.pixel_range` ('unit' = [0, 1], or 'symmetric' = [-1, 1] as the authors' code);
metrics always see images in [0, 1].

Inpainting feeds `image * mask` (optionally with the mask as a fourth channel, which the
network then also reconstructs, Lmser-style, since DCW ties input and output channels) and
scores the *composite*: known pixels from the input, holes from the network (Table 5).

DSP feeds the image at the bottom and, while training only, the label at the top (the model's
`label` argument, `clamped_label`); the model returns `(reconstruction, logits)`, or
`(None, logits)` for the plain CNN. The loss is Eq. 1 on the reconstruction plus
`class_weight` times the cross-entropy; evaluation adds the accuracy to the image metrics.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from clmser_jax import metrics
from clmser_jax.data import Dataset
from clmser_jax.faults import InputError


def to_model_range(image01: jax.Array, task) -> jax.Array:
  return image01 * 2.0 - 1.0 if task.pixel_range == "symmetric" else image01


def to_unit_range(image: jax.Array, task) -> jax.Array:
  return (image + 1.0) / 2.0 if task.pixel_range == "symmetric" else image


def model_input(batch, task) -> jax.Array:
  """The network's input: the image, or for inpainting `image * mask` (+ the mask)."""
  image = to_model_range(batch["image"], task)
  if task.name != "inpaint":
    return image
  masked = image * batch["mask"]
  return jnp.concatenate([masked, batch["mask"]], -1) if task.mask_channel else masked


def clamped_label(batch, task) -> dict:
  """The model's keyword arguments in training: for 'dsp' the label to clamp on the label
  layer, else none. Evaluation never passes them, so no label reaches a test prediction."""
  return {"label": batch["label"]} if task.name == "dsp" else {}


def split_output(output, task):
  """`(image output or None, logits or None)`: DSP models return both (the CNN no image)."""
  return output if task.name == "dsp" else (output, None)


def loss(output, batch, task) -> jax.Array:
  """The image loss of the output (none for the CNN), plus for 'dsp' `task.class_weight`
  times the softmax cross-entropy of the logits (Table 7)."""
  image_output, logits = split_output(output, task)
  total = 0.0 if image_output is None else image_loss(image_output, batch, task)
  if logits is not None:
    total += task.class_weight * metrics.classification_loss(logits, batch["label"])
  return total


def image_loss(output: jax.Array, batch, task) -> jax.Array:
  """Eq. 1 (MSE of the whole image, as the authors train inpainting too), or a weighted
  sum of the L1/L2 error over holes and over known pixels."""
  target = to_model_range(batch["image"], task)
  if task.loss == "mse":
    return metrics.reconstruction_loss(output[..., :3], target)
  error = output[..., :3] - target
  per_pixel = jnp.abs(error) if task.loss_norm == "l1" else jnp.square(error)
  known = batch["mask"]
  return (task.hole_weight * jnp.mean(per_pixel * (1 - known))
          + task.valid_weight * jnp.mean(per_pixel * known))


def prediction(output, batch, task) -> jax.Array | None:
  """The image the task delivers, in [0, 1]: the reconstruction, or the inpainting
  composite `mask * image + (1 - mask) * output`; None for the CNN, which has no image."""
  image_output, _ = split_output(output, task)
  if image_output is None:
    return None
  image = to_unit_range(image_output[..., :3], task)
  if task.name != "inpaint":
    return image
  return batch["mask"] * batch["image"] + (1 - batch["mask"]) * image


def eval_metrics(output, predicted, batch, task) -> dict[str, jax.Array]:
  """Per-image metrics: L1, MSE, PSNR, SSIM of the `predicted` image (Tables 4-5), and for
  'dsp' the accuracy of the logits (Table 7)."""
  values = {} if predicted is None else metrics.image_metrics(predicted, batch["image"])
  _, logits = split_output(output, task)
  if logits is not None:
    values["accuracy"] = metrics.accuracy(logits, batch["label"])
  return values


def check_labels(dataset: Dataset, task, num_classes: int) -> None:
  """'dsp' needs a labelled dataset with `config.model.num_classes` classes."""
  if task.name != "dsp":
    return
  if dataset.train_labels is None:
    raise InputError("config.dataset has no labels; task.name='dsp' needs a labelled dataset")
  if dataset.num_classes != num_classes:
    raise InputError(f"config.model.num_classes={num_classes} but the dataset has "
                     f"{dataset.num_classes} classes")


def shown_input(batch, task) -> np.ndarray:
  """What to draw as the input column of the evaluation grid, in [0, 1]."""
  batch = unit_batch(batch)
  return batch["image"] * batch["mask"] if task.name == "inpaint" else batch["image"]


def unit_batch(batch: dict) -> dict:
  """`batch` with `image` as float32 in [0, 1] and `mask` as float32: the input pipeline
  ships both as uint8 (a quarter of the bytes to move), and the steps scale them here, on the
  device; float batches (inference, tests) pass through."""
  out = dict(batch)
  if batch["image"].dtype == np.uint8:
    out["image"] = batch["image"].astype(np.float32) / np.float32(255)
  if "mask" in batch and batch["mask"].dtype == np.uint8:
    out["mask"] = batch["mask"].astype(np.float32)
  return out


def input_shape(task, size: int) -> tuple[int, int, int, int]:
  """The network's input shape for one `size x size` image (four channels when inpainting
  feeds the mask too)."""
  return (1, size, size, 4 if task.name == "inpaint" and task.mask_channel else 3)
