"""Command line: `python -m clmser_jax.main --config=configs/default.py --workdir=DIR`.

Parses flags and calls `train.train_and_evaluate`; nothing else.
"""
import sys

from absl import app, flags
from ml_collections import config_flags

from clmser_jax import train
from clmser_jax.config import ConfigError

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/default.py", "Config file; `path:variant` picks a model variant.")
_WORKDIR = flags.DEFINE_string("workdir", "workdir", "Outputs and checkpoints; resumes here.")


def main(argv):
  del argv
  try:
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except ConfigError as error:
    sys.exit(f"clmser_jax: config error: {error}")
  except FileNotFoundError as error:
    sys.exit(f"clmser_jax: {error}")


if __name__ == "__main__":
  app.run(main)
