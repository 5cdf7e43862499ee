"""The command line the analysis scripts share: `--config=FILE` and `--workdir=DIR`."""
from absl import flags
from ml_collections import config_flags

from clmser_jax import cli


def run_with_config(name: str, run, default_config: str) -> None:
  """The command line `name`: calls `run(config, workdir)` (its flags are defined here, when
  it runs, so the libraries import side by side)."""
  cli.run(name, lambda values: run(values["config"], values["workdir"]), lambda: dict(
      config=config_flags.DEFINE_config_file("config", default_config),
      workdir=flags.DEFINE_string("workdir", None, "output folder", required=True)))
