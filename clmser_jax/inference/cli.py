"""The command line of `clmser_jax.inpaint` and `clmser_jax.reconstruct`: a trained run on
the user's own images (`inference/__init__.py`), a file or a folder in, a file or a folder
out (`files.py`). Errors the user can fix end the run with one line."""
from __future__ import annotations

import time

from absl import flags, logging
from ml_collections import config_flags

from clmser_jax import cli, cpu, inference
from clmser_jax.data import masks
from clmser_jax.inference import files as image_files
from clmser_jax.faults import InputError


def _common_flags(task_name: str) -> dict:
  return dict(
      workdir=flags.DEFINE_string("workdir", None, "The trained run (config.json and "
                                  "checkpoints/; a run still training works).", required=True),
      image=flags.DEFINE_string("image", None, "A PNG/JPEG file or a folder of them "
                                "(recursive).", required=True),
      out=flags.DEFINE_string("out", None, "An output file (.png/.jpg/.jpeg) or a folder: a "
                              "folder input keeps the relative names.", required=True),
      config=config_flags.DEFINE_config_file(
          "config", None, "Instead of WORKDIR/config.json (a converted checkpoint has none): "
          f"the run's config file, e.g. configs/official_celeba.py:clmser. Task: {task_name}."))


def _inpaint_flags() -> dict:
  ratio = flags.DEFINE_float("mask_ratio", None, "Generate a mask with this fraction of "
                             "holes, in [0, 1) (default: the run's task.mask_ratio).")
  flags.DEFINE_alias("mask-ratio", "mask_ratio")
  return dict(
      mask=flags.DEFINE_string("mask", None, "A mask file for every image, or a folder of "
                               "masks with the images' relative names; instead of "
                               "--mask_ratio."),
      mask_polarity=flags.DEFINE_enum("mask_polarity", None, list(masks.POLARITIES),
                                      "What white means in --mask (default: the run's "
                                      "task.mask_polarity)."),
      mask_ratio=ratio,
      mask_kind=flags.DEFINE_enum("mask_kind", None, list(masks.MASKS), "Generated mask "
                                  "family (default: the run's task.mask, else points, the "
                                  "paper's)."),
      seed=flags.DEFINE_integer("seed", 0, "Seed of generated masks (with each image's "
                                "relative name)."),
      save_masked=flags.DEFINE_bool("save_masked", False, "Also write the masked input "
                                    "beside each output, as NAME_masked.EXT."))


def mask_source(task, values: dict):
  """`fn(relative, shape) -> mask` from the flags, defaults from the run's `task`."""
  if values["mask"] is not None:
    if values["mask_ratio"] is not None:
      raise InputError("give --mask or --mask_ratio, not both")
    polarity = values["mask_polarity"] or task.mask_polarity
    return lambda relative, shape: image_files.read_mask(
        image_files.mask_file(values["mask"], relative), polarity, shape)
  ratio = task.mask_ratio if values["mask_ratio"] is None else values["mask_ratio"]
  if not 0.0 <= ratio < 1.0:
    raise InputError(f"--mask_ratio={ratio} is not a hole fraction in [0, 1)")
  kind = values["mask_kind"] or (task.mask if task.mask in masks.MASKS else "points")
  return lambda relative, shape: image_files.generated_mask(kind, values["seed"], relative,
                                                            shape, ratio)


def run(task_name: str, values: dict) -> None:
  """Predicts every image `--image` names and writes it to `--out`. Unreadable images in a
  folder are skipped, then reported as an error at the end."""
  found = image_files.pairs(values["image"], values["out"])
  loaded = inference.load_run(values["workdir"], values["config"])
  print(f"loaded {values['workdir']} at step {loaded.step}")
  predict = inference.image_predictor(loaded, task_name)
  mask_for = mask_source(loaded.config.task, values) if task_name == "inpaint" else None
  image_files.prepare_outputs(target for _, target, _ in found)
  unreadable = []
  for source, target, relative in found:
    try:
      image = image_files.read_image(source)
    except InputError as error:
      if len(found) == 1:
        raise
      logging.warning("skipping: %s", error)
      unreadable.append(str(relative))
      continue
    start = time.perf_counter()
    mask = None if mask_for is None else mask_for(relative, image.shape[:2])
    image_files.write_image(target, predict(image, mask))
    if values.get("save_masked"):
      image_files.write_image(image_files.masked_name(target), image * mask)
    print(f"{source} -> {target} ({image.shape[0]}x{image.shape[1]}, "
          f"{time.perf_counter() - start:.2f}s)", flush=True)
  if unreadable:
    raise InputError(f"{len(unreadable)} of {len(found)} images could not be read and were "
                     f"skipped: {', '.join(unreadable[:5])}{' ...' if len(unreadable) > 5 else ''}")


def main(task_name: str) -> None:
  """The command line of `task_name` ('inpaint' or 'reconstruct')."""

  def define_flags() -> dict:
    definitions = _common_flags(task_name)
    if task_name == "inpaint":
      definitions.update(_inpaint_flags())
    return definitions

  def entry(values: dict) -> None:
    cpu.setup()
    if not flags.FLAGS["verbosity"].present:  # orbax logs every restore at INFO
      logging.set_verbosity(logging.WARNING)
    run(task_name, values)

  cli.run(f"clmser_jax.{task_name}", entry, define_flags)
