"""Reconstruction of your own images with a trained run (Sec. 5.1-5.2):

`python -m clmser_jax.reconstruct --workdir=RUN --image=photo.jpg --out=out.png`

`--image` and `--out` may be folders; any image size (see `inference.py`, `image_files.py`).
"""
from clmser_jax import inference_cli

if __name__ == "__main__":
  inference_cli.main("reconstruct")
