"""The local Inception weights file: a flat `.npz` of `collection/module/.../leaf` arrays.

Nothing is ever downloaded at run time. The file is made once, offline, from pytorch-fid's
public PyTorch weights by `python -m clmser_jax.fid.convert` (see `MISSING_HINT`).
"""
from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from clmser_jax.fid.inception import FIDInceptionV3

PTH_NAME = "pt_inception-2015-12-05-6726825d.pth"
PTH_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
           + PTH_NAME)
MISSING_HINT = (f"download {PTH_URL} (pytorch-fid's port of the TF-FID Inception) and run "
                f"`python -m clmser_jax.fid.convert --pth {PTH_NAME} --out FILE.npz`")


def expected_shapes() -> dict[str, tuple[int, ...]]:
  """`{'params/Conv2d_1a_3x3/conv/kernel': (3, 3, 3, 32), ...}` of `FIDInceptionV3`."""
  shapes = jax.eval_shape(FIDInceptionV3().init, jax.random.PRNGKey(0),
                          jax.ShapeDtypeStruct((1, 75, 75, 3), jnp.float32))
  flat = traverse_util.flatten_dict(shapes, sep="/")
  return {k: tuple(v.shape) for k, v in flat.items()}


def check_variables(flat: dict[str, np.ndarray]) -> None:
  """Raise a ValueError naming every missing, unexpected or mis-shaped array."""
  expected = expected_shapes()
  problems = [f"missing {k}" for k in sorted(expected.keys() - flat.keys())]
  problems += [f"unexpected {k}" for k in sorted(flat.keys() - expected.keys())]
  problems += [f"{k}: shape {flat[k].shape}, expected {expected[k]}"
               for k in sorted(expected.keys() & flat.keys())
               if tuple(flat[k].shape) != expected[k]]
  if problems:
    raise ValueError("Inception weights do not match FIDInceptionV3: " + "; ".join(problems))


def save_variables(path, flat: dict[str, np.ndarray]) -> None:
  """Check `flat` against the model, then write it as float32 `.npz`."""
  check_variables(flat)
  np.savez(path, **{k: np.asarray(v, np.float32) for k, v in flat.items()})


def load_variables(path) -> dict:
  """The Flax variables `{'params': ..., 'batch_stats': ...}` stored at `path`."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"no Inception weights at {path}: {MISSING_HINT}")
  with np.load(path) as data:
    flat = {k: data[k] for k in data.files}
  check_variables(flat)
  return traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in flat.items()}, sep="/")
