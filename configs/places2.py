"""Places2 inpainting with dense point-shaped masks (Sec. 5.3, Table 5).

Data: a 256x256 Places365 subset in one folder (the paper trains on 180k training images and
tests on 10k): `--config.dataset=folder:/path/to/places2`; every 10th image is held out.
Or the prepared tfds dataset: `--config.dataset=tfds:places365_small --config.data_dir=DIR`
(all 1.8M training images, read lazily; evaluated on the first images of its test split).
`--config=configs/places2.py:clmser-w` picks the variant; `:clmser-w,tiny` a smoke test.
"""
from configs.inpainting import get_inpainting_config


def get_config(arg: str = "clmser"):
  return get_inpainting_config(arg, "data/places2", train_images=180000, eval_images=10000)
