"""The authors' pretrained PyTorch weights (CMACH508/CLmser) as a checkpoint of our official
network: `python -m clmser_jax.convert_official --pth CLmser-celebahq.pth --variant clmser
--out DIR`, then `python -m clmser_jax.main --config=configs/official_celeba.py:clmser
--workdir=DIR` resumes (fine-tunes) from it, and evaluation loads it like any checkpoint. The
checkpoint holds the optimizer state of the config it was written for: pass the converter the
same `--config` (and overrides) as the run.

Their `Generator` (`model/*.py`) names its tensors by block. `DownBlocks.{i}` holds the encoder
kernel of layer `i + 1` (`conv2d.weight`, OIHW `(c_{i+1}, c_i, k, k)`) and its BatchNorm (`bn.*`,
our `bn_Y_{i+1}`); `UpBlocks.{j}` the kernel sent down from layer `j + 2` (`dconv2d.weight`,
used by `conv_transpose2d`, which reads the same array as `(in, out, k, k)` and computes the
adjoint of `conv2d` with it, exactly our `top_down` of the same kernel) and the BatchNorm of
`U_{j+1}` (our `bn_U_{j+1}`); `OutBlock.dconv2d.weight` the kernel of layer 1, used top-down
only. CLmser and CLmser-n share one kernel list, so their `UpBlocks`/`OutBlock` kernels are
the `DownBlocks` ones again (our `W_i`); CLmser-w and CAE build a second list (our `Wd_i`).
Every kernel is `W.transpose(2, 3, 1, 0)` in our HWIO layout. DPN leaves no trace in the
weights: only `--variant` tells CLmser from CLmser-n, and CLmser-w from CAE.
"""
from __future__ import annotations

import importlib.util
import os
import pickle
import re
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from ml_collections import config_flags

from clmser_jax import checkpoint
from clmser_jax.config import OFFICIAL, ConfigError, validate
from clmser_jax.faults import InputError, one_line
from clmser_jax.models import VARIANTS, build_model
from clmser_jax.train import make_optimizer, state_from_variables

BN_PARAMS = {"weight": "scale", "bias": "bias"}
BN_STATS = {"running_mean": "mean", "running_var": "var"}
IGNORED_SUFFIX = ".bn.num_batches_tracked"  # PyTorch's counter; unused with momentum 0.1
DEFAULT_CONFIG = "configs/official_celeba.py"
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


class ConversionError(InputError):
  """The file is not a state dict, or does not fit the requested variant; the message names
  the key."""


def _inert_class(name: str) -> type:
  return type(name.rsplit(".", 1)[-1], (), {"__init__": lambda self, *args, **kwargs: None,
                                            "__setstate__": lambda self, state: None})


def load_pth(path: str) -> dict:
  """`torch.load` of `path`, weights only. Their trainer pickles its `ConfigParser` (and
  `pathlib` paths) next to the weights: such objects become inert placeholders, so no code of
  theirs is imported or run."""
  try:
    import torch
  except ImportError as error:
    raise ImportError("reading .pth files needs PyTorch: pip install 'clmser-jax[torch]'"
                      ) from error
  placeholders = []
  while True:
    with torch.serialization.safe_globals(placeholders):
      try:
        return torch.load(path, map_location="cpu", weights_only=True)
      except pickle.UnpicklingError as error:
        match = _UNSUPPORTED_GLOBAL.search(str(error))
        if match is None or match[1] in {name for _, name in placeholders}:
          raise ConversionError(f"{path} is not a PyTorch checkpoint ("
                                f"{one_line(str(error), 200)})") from None
        placeholders.append((_inert_class(match[1]), match[1]))
      except (OSError, RuntimeError, EOFError, ValueError) as error:
        raise ConversionError(f"{path} is not a PyTorch checkpoint ("
                              f"{one_line(str(error), 200)})") from None


def state_dict_arrays(checkpoint_dict: Mapping) -> dict[str, np.ndarray]:
  """The model tensors as numpy arrays: `checkpoint['state_dict']` of their trainer,
  or a bare state dict; a `module.` prefix (`nn.DataParallel`) is dropped."""
  state_dict = (checkpoint_dict.get("state_dict", checkpoint_dict)
                if isinstance(checkpoint_dict, Mapping) else checkpoint_dict)
  if not (isinstance(state_dict, Mapping) and state_dict
          and all(isinstance(k, str) and hasattr(v, "shape") for k, v in state_dict.items())):
    raise ConversionError(f"the file holds a {type(state_dict).__name__}, not a state dict "
                          "(a mapping of names to tensors), nor a checkpoint with one under "
                          "'state_dict'")
  if all(k.startswith("module.") for k in state_dict):
    state_dict = {k[len("module."):]: v for k, v in state_dict.items()}
  return {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
          for k, v in state_dict.items()}


def expected_shapes(model_config, in_channels: int = 3) -> dict[str, tuple[int, ...]]:
  """Every key of their state dict (but `num_batches_tracked`) and its shape."""
  channels = (in_channels, *model_config.channels)
  k = model_config.kernel_size
  kernel = lambda layer: (channels[layer], channels[layer - 1], k, k)  # OIHW of W_layer
  bn = lambda prefix, c: {f"{prefix}.bn.{n}": (c,) for n in (*BN_PARAMS, *BN_STATS)}
  shapes = {"OutBlock.dconv2d.weight": kernel(1)}
  for i in range(model_config.depth):
    shapes[f"DownBlocks.{i}.conv2d.weight"] = kernel(i + 1)
    shapes.update(bn(f"DownBlocks.{i}", channels[i + 1]))
  for j in range(model_config.depth - 1):
    shapes[f"UpBlocks.{j}.dconv2d.weight"] = kernel(j + 2)
    shapes.update(bn(f"UpBlocks.{j}", channels[j + 1]))
  return shapes


def check_keys_and_shapes(arrays: Mapping[str, np.ndarray], model_config) -> None:
  """Raises `ConversionError` naming missing keys, unexpected keys or a wrong shape."""
  shapes = expected_shapes(model_config)
  used = {k for k in arrays if not k.endswith(IGNORED_SUFFIX)}
  missing, extra = sorted(shapes.keys() - used), sorted(used - shapes.keys())
  if missing or extra:
    raise ConversionError(
        f"state dict does not match the official {model_config.depth}-layer network: "
        + "; ".join(part for part in (missing and f"missing keys {missing}",
                                      extra and f"unexpected keys {extra}") if part))
  for key, shape in shapes.items():
    if arrays[key].shape != shape:
      raise ConversionError(f"{key} has shape {arrays[key].shape}, expected {shape} "
                            f"(channels {tuple(model_config.channels)})")


def decoder_kernel_keys(depth: int) -> list[str]:
  """The keys of the top-down kernels of layers 1..d (`OutBlock`, then `UpBlocks`)."""
  return ["OutBlock.dconv2d.weight", *(f"UpBlocks.{j}.dconv2d.weight" for j in range(depth - 1))]


def check_kernel_sharing(arrays: Mapping[str, np.ndarray], variant: str, depth: int) -> None:
  """DCW variants reuse the `DownBlocks` kernels top-down; the others own a second set."""
  dcw, _ = VARIANTS[variant]
  pairs = [(f"DownBlocks.{i}.conv2d.weight", key)
           for i, key in enumerate(decoder_kernel_keys(depth))]
  shared = [np.array_equal(arrays[enc], arrays[dec]) for enc, dec in pairs]
  if dcw and not all(shared):
    enc, dec = pairs[shared.index(False)]
    raise ConversionError(f"--variant {variant} shares its kernels (DCW), but {dec} differs "
                          f"from {enc}: this looks like a clmser-w or cae checkpoint")
  if not dcw and all(shared):
    raise ConversionError(f"--variant {variant} has a second kernel set, but every UpBlocks/"
                          "OutBlock kernel equals its DownBlocks kernel: this looks like a "
                          "clmser or clmser-n checkpoint")


def _hwio(oihw: np.ndarray) -> jax.Array:
  return jnp.asarray(np.transpose(oihw, (2, 3, 1, 0)), jnp.float32)


def _batch_norm(arrays, prefix):
  params = {ours: jnp.asarray(arrays[f"{prefix}.bn.{theirs}"], jnp.float32)
            for theirs, ours in BN_PARAMS.items()}
  stats = {ours: jnp.asarray(arrays[f"{prefix}.bn.{theirs}"], jnp.float32)
           for theirs, ours in BN_STATS.items()}
  return params, stats


def to_variables(arrays: Mapping[str, np.ndarray], variant: str, model_config) -> dict:
  """`{'params', 'batch_stats'}` of our official network from their state dict (see the
  module docstring for the mapping); checks keys, shapes and kernel sharing first."""
  depth = model_config.depth
  check_keys_and_shapes(arrays, model_config)
  check_kernel_sharing(arrays, variant, depth)
  encoder = [_hwio(arrays[f"DownBlocks.{i}.conv2d.weight"]) for i in range(depth)]
  if VARIANTS[variant][0]:
    params = {f"W_{i + 1}": w for i, w in enumerate(encoder)}
  else:
    params = {f"We_{i + 1}": w for i, w in enumerate(encoder)}
    params |= {f"Wd_{i + 1}": _hwio(arrays[key])
               for i, key in enumerate(decoder_kernel_keys(depth))}
  stats = {}
  blocks = [(f"bn_Y_{i + 1}", f"DownBlocks.{i}") for i in range(depth)]
  blocks += [(f"bn_U_{j + 1}", f"UpBlocks.{j}") for j in range(depth - 1)]
  for name, prefix in blocks:
    params[name], stats[name] = _batch_norm(arrays, prefix)
  return {"params": params, "batch_stats": stats}


def check_official(config, variant: str) -> None:
  """The config must describe `variant`'s official network, or the weights mean nothing."""
  validate(config)
  m = config.model
  if (m.name, m.dcw, m.dpn) != ("clmser", *VARIANTS[variant]):
    raise ConfigError(f"config.model (name={m.name!r}, dcw={m.dcw}, dpn={m.dpn}) is not "
                      f"--variant {variant}")
  for field, value in OFFICIAL.items():
    if field != "kernel_init" and m[field] != value:
      raise ConfigError(f"config.model.{field}={m[field]!r} is not the official network's "
                        f"{value!r}")


def official_state(config, variables):
  """The step-0 train state of `config` at the converted variables, its tree checked
  against the model's own."""
  model = build_model(config.model)
  shape = (1, config.image_size, config.image_size, 3)
  reference = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(shape, jnp.float32))
  got = jax.tree.map(lambda a: (a.shape, a.dtype), variables)
  want = jax.tree.map(lambda a: (a.shape, a.dtype), reference)
  if got != want:
    raise ConversionError(f"converted variables do not fit the model: {got} vs {want}")
  return state_from_variables(model, make_optimizer(config.optimizer), variables)


def convert(pth: str, variant: str, out: str, config) -> None:
  """Reads `pth`, converts it for `variant` and writes `out/checkpoints/0`."""
  check_official(config, variant)
  variables = to_variables(state_dict_arrays(load_pth(pth)), variant, config.model)
  state = official_state(config, variables)
  mngr = checkpoint.manager(out)
  if mngr.all_steps():
    raise InputError(f"{os.path.join(out, 'checkpoints')} already holds checkpoints "
                          f"(steps {list(mngr.all_steps())}); pick an empty --out")
  checkpoint.save(mngr, 0, state)
  mngr.wait_until_finished()


def load_config(path: str, variant: str):
  """`get_config(variant)` of the config file at `path`, like `--config=path:variant`."""
  spec = importlib.util.spec_from_file_location("_official_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def define_flags() -> dict:
  return dict(
      pth=flags.DEFINE_string("pth", None, "The authors' .pth file (their trainer's checkpoint "
                              "or a bare state dict).", required=True),
      variant=flags.DEFINE_enum("variant", None, list(VARIANTS), "Which network it holds.",
                                required=True),
      out=flags.DEFINE_string("out", None, "Workdir to create; the checkpoint goes to "
                              "OUT/checkpoints/0.", required=True),
      config=config_flags.DEFINE_config_file(
          "config", None, "The run to resume from the checkpoint (its model and optimizer "
          f"shape the train state); default {DEFAULT_CONFIG}:VARIANT. Fields can be "
          "overridden as for main."))


def main(values: dict) -> None:
  config = values["config"]
  if config is None:
    config = load_config(DEFAULT_CONFIG, values["variant"])
  convert(values["pth"], values["variant"], values["out"], config)
