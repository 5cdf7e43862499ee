"""Inpainting of your own images with a trained run (Sec. 5.3):

`python -m clmser_jax.inpaint --workdir=RUN --image=photo.jpg --out=out.png
[--mask=mask.png [--mask_polarity=hole] | --mask-ratio=0.2 [--seed=1]] [--save_masked]`

`--image` and `--out` may be folders; any image size (`clmser_jax/inference/`).
"""
from clmser_jax.inference import cli

if __name__ == "__main__":
  cli.main("inpaint")
