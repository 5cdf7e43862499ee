"""`python -m clmser_jax.convert_official --pth=FILE.pth --variant=clmser --out=WORKDIR`: the
authors' PyTorch weights as a checkpoint of ours (`official/convert.py`)."""
from clmser_jax import cli
from clmser_jax.official import convert

if __name__ == "__main__":
  cli.run("convert_official", convert.main, convert.define_flags)
