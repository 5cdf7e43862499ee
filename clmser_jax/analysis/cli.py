"""The command line the analysis scripts share: `--config=FILE` and `--workdir=DIR`."""
from absl import app, flags
from ml_collections import config_flags


def run_with_config(run, default_config: str) -> None:
  """Defines the two flags (here, not at import, so the libraries import side by side) and
  calls `run(config, workdir)`."""
  config = config_flags.DEFINE_config_file("config", default_config)
  workdir = flags.DEFINE_string("workdir", None, "output folder", required=True)
  app.run(lambda argv: run(config.value, workdir.value))
