"""Which models the experiment runner trains: variants x optimizers x values of one field.

`plan` turns the runner's flags into a list of `Run`s, each a validated config and its own
folder `WORKDIR/[FIELD=VALUE/][OPTIMIZER/]VARIANT`, so every error in the flags shows before
anything trains.

Learning rates of `--optimizers` (Table 3): `NAME:LR` sets one explicitly; a bare `NAME`
keeps the config's learning rate (and step decay) when the config already uses that
optimizer, and otherwise takes Table 3's: SGD 0.01, Adam 1e-3 (AMSGrad, the authors'
variant of Adam, 1e-3 too). Table 3 lists 0.01 for both optimizers on STL10; like
`configs/gradient_flow.py` we read it as SGD's, since Adam at 0.01 is far above its usual
step size and the inpainting runs use Adam at 1e-3.
"""
from __future__ import annotations

import copy

import dataclasses
import os

import ml_collections

from clmser_jax.config import OPTIMIZERS, ConfigError, model_config, validate



@dataclasses.dataclass(frozen=True)
class Run:
  """One model to train: its config and folder, and where it sits in the sweep: `keys` are
  the table's columns before the model (`{FIELD: value, 'optimizer': name}`, each only when
  swept), `group` the folder levels above the variant (`('per_class=100', 'sgd')`)."""
  variant: str
  config: ml_collections.ConfigDict
  workdir: str
  keys: dict
  group: tuple[str, ...]


def variant_config(base, variant: str):
  """`base` with its model switched to `variant`: the name and the two dualities (Table 1)
  from `model_config`, every other model field of `base` (architecture, init, norm,
  reflections, ...) kept, so one setting is compared across the variants."""
  config = base.copy_and_resolve_references()
  identity = model_config(variant)
  config.model.update({field: identity[field] for field in ("name", "dcw", "dpn")})
  return config


def parse_sweep(spec: str) -> tuple[str, list[str]]:
  """`'per_class=400,100,10'` -> `('per_class', ['400', '100', '10'])`."""
  field, _, values = spec.partition("=")
  if not field or not values or "" in values.split(","):
    raise ConfigError(f"--sweep={spec!r} is not allowed: FIELD=v1,v2,... (for example "
                      "per_class=400,100,10 or task.mask_ratio=0.1,0.25)")
  return field, values.split(",")


def _parse_value(field: str, current, raw: str):
  """`raw` read as the type of the field's `current` value (bool, int, float or str)."""
  if isinstance(current, bool) and raw.lower() in ("true", "false"):
    return raw.lower() == "true"
  if isinstance(current, (int, float, str)) and not isinstance(current, bool):
    try:
      return type(current)(raw)
    except ValueError:
      pass
  raise ConfigError(f"--sweep: {raw!r} is not allowed for config.{field}={current!r}: a "
                    f"value of the same type ({type(current).__name__})")


def with_field(config, field: str, raw: str):
  """A copy of `config` with the existing scalar `config.FIELD` (dotted) set to `raw`, read
  as the field's type; returns the copy and the value. Fields that refer to it follow
  (`configs/stl10.py`'s steps follow `per_class`)."""
  config = copy.deepcopy(config)
  *path, leaf = field.split(".")
  parent = config
  for part in path:
    parent = parent.get(part) if isinstance(parent, ml_collections.ConfigDict) else None
  if not isinstance(parent, ml_collections.ConfigDict) or leaf not in parent:
    raise ConfigError(f"--sweep: config.{field} does not exist in this config; sweep an "
                      "existing field")
  value = _parse_value(field, parent[leaf], raw)
  parent[leaf] = value
  return config.copy_and_resolve_references(), value


def parse_optimizer(spec: str, config) -> tuple[str, float]:
  """`'sgd'` or `'sgd:0.05'` -> the optimizer and its learning rate (see the module doc)."""
  name, _, rate = spec.partition(":")
  if name not in OPTIMIZERS:
    raise ConfigError(f"--optimizers: {name!r} is not allowed: one of {tuple(OPTIMIZERS)}, "
                      "optionally NAME:LEARNING_RATE")
  if rate:
    try:
      return name, float(rate)
    except ValueError:
      raise ConfigError(f"--optimizers: learning rate {rate!r} of {name} is not a "
                        "number") from None
  if name == config.optimizer.name:
    return name, config.optimizer.learning_rate
  return name, OPTIMIZERS[name].learning_rate


def with_optimizer(config, name: str, learning_rate: float):
  config = config.copy_and_resolve_references()
  config.optimizer.name = name
  config.optimizer.learning_rate = learning_rate
  return config


def plan(base, variants, workdir: str, optimizers=(), sweep: str | None = None) -> list[Run]:
  """Every run of the experiment, sweep value by optimizer by variant, each config
  validated (`ConfigError` on the first bad one)."""
  names = [spec.partition(":")[0] for spec in optimizers]
  if len(set(names)) != len(names):
    raise ConfigError(f"--optimizers={','.join(optimizers)} is not allowed: each optimizer "
                      "once (they name the runs' folders)")
  field, raws = parse_sweep(sweep) if sweep else (None, [None])
  runs = []
  for raw in raws:
    swept, keys, group = base, {}, ()
    if field:
      swept, value = with_field(base, field, raw)
      keys, group = {field: value}, (f"{field}={value}",)
    for spec in optimizers or [None]:
      config, run_keys, run_group = swept, keys, group
      if spec:
        name, rate = parse_optimizer(spec, swept)
        config = with_optimizer(swept, name, rate)
        run_keys, run_group = {**keys, "optimizer": name}, group + (name,)
      for variant in variants:
        run_config = variant_config(config, variant)
        validate(run_config)
        runs.append(Run(variant, run_config, os.path.join(workdir, *run_group, variant),
                        run_keys, run_group))
  return runs
