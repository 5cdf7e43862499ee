"""Inpainting of your own images with a trained run (Sec. 5.3):

`python -m clmser_jax.inpaint --workdir=RUN --image=photo.jpg --out=out.png
[--mask=mask.png [--mask_polarity=hole] | --mask-ratio=0.2 [--seed=1]] [--save_masked]`

`--image` and `--out` may be folders; any image size (see `inference.py`, `image_files.py`).
"""
from clmser_jax import inference_cli

if __name__ == "__main__":
  inference_cli.main("inpaint")
