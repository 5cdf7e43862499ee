"""Reconstruction of your own images with a trained run (Sec. 5.1-5.2):

`python -m clmser_jax.reconstruct --workdir=RUN --image=photo.jpg --out=out.png`

`--image` and `--out` may be folders; any image size (`clmser_jax/inference/`).
"""
from clmser_jax.inference import cli

if __name__ == "__main__":
  cli.main("reconstruct")
