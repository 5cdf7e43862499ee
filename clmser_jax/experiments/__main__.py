"""`python -m clmser_jax.experiments`: the runner's command line (`runner.py`)."""
from clmser_jax import cli
from clmser_jax.experiments import runner

if __name__ == "__main__":
  cli.run("clmser_jax.experiments", runner.main, runner.define_flags)
