"""CelebA-HQ inpainting with dense point-shaped masks (Sec. 5.3, Table 5).

Data: the CelebA-HQ images (the public 30,000 at 1024x1024) in one folder:
`--config.dataset=folder:/path/to/celeba_hq`. The folder dataset holds out every 10th image
(3,000 of 30,000, the paper's 27,000 / 3,000 split) and resizes each to 256x256.
Or the prepared tfds dataset (a manual download): `--config.dataset=tfds:celeb_a_hq/256
--config.data_dir=DIR`, whose first 27,000 images train and last 3,000 evaluate.
`--config=configs/celeba.py:clmser-w` picks the variant; `:clmser-w,tiny` a smoke test.
"""
from configs.inpainting import get_inpainting_config


def get_config(arg: str = "clmser"):
  return get_inpainting_config(arg, "data/celeba_hq", train_images=27000, eval_images=3000)
