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

from clmser_jax import masks as mask_lib
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
  return batch["image"] * batch["mask"] if task.name == "inpaint" else batch["image"]


def mask_bank(task, size: int, seed: int, count: int) -> np.ndarray | None:
  """The masks inpainting samples from: `count` generated ones, or a folder's (`folder:`)."""
  if task.name != "inpaint":
    return None
  if task.mask.startswith("folder:"):
    return mask_lib.load_mask_folder(task.mask.split(":", 1)[1], task.mask_polarity,
                                     (size, size))
  return mask_lib.sample_masks(task.mask, seed, count, size, size, task.mask_ratio)


def train_batch(dataset: Dataset, bank, rng: jax.Array, batch_size: int,
                rows: slice = slice(None)) -> dict:
  """The step's images and labels (see `Dataset.train_batch`) and masks drawn from the bank;
  `rows`
  picks this process's part of the global batch."""
  batch = dataset.train_batch(rng, batch_size, rows)
  if bank is not None:
    k_masks = jax.random.fold_in(rng, 1)  # images keep the step key itself
    index = np.asarray(jax.random.randint(k_masks, (batch_size,), 0, len(bank)))[rows]
    batch["mask"] = bank[index]
  return batch


def eval_batches(dataset: Dataset, bank, batch_size: int):
  """Fixed evaluation batches (with labels when the dataset has them): tile `i` is paired
  with mask `i mod len(bank)`."""
  images = dataset.eval_images
  for start in range(0, len(images), batch_size):
    batch = {"image": images[start:start + batch_size]}
    if dataset.eval_labels is not None:
      batch["label"] = dataset.eval_labels[start:start + batch_size]
    if bank is not None:
      batch["mask"] = bank[np.arange(start, start + len(batch["image"])) % len(bank)]
    yield batch
