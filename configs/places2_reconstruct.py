"""Places2 reconstruction, CLmser-n against CAE (Appendix B, Table 8): does DCW alone help a
network that only reconstructs, when data are plentiful?

The paper trains both on 180,346 Places2 training images and tests on 10,000 of its test
images, 256x256, with Table 2's C&P architecture and Table 3's C&P schedule (Adam 1e-3,
batch 16, 20 epochs). Give the images as an official list with its root, or a folder:
`--config.dataset=list:/data/places365_train_standard.txt --config.data.root=/data/data_256
--config.eval_dataset=list:/data/places365_val.txt --config.data.eval_root=/data/val_256`
(`docs/data.md`). `--config=configs/places2_reconstruct.py:cae` picks CAE (default CLmser-n);
`:cae,tiny` is a smoke test on the embedded photographs.

  python -m clmser_jax.experiments --config=configs/places2_reconstruct.py \
      --variants=clmser-n,cae --table=table8 --workdir=runs/table8 [--config.dataset=...]
"""
import ml_collections

from clmser_jax.config import task_config
from configs.inpainting import get_inpainting_config

TRAIN_IMAGES = 180_346  # Appendix B
EVAL_IMAGES = 10_000


def get_config(arg: str = "clmser-n") -> ml_collections.ConfigDict:
  """`arg` is `VARIANT` or `VARIANT,tiny`."""
  config = get_inpainting_config(arg, "data/places2", train_images=TRAIN_IMAGES,
                                 eval_images=EVAL_IMAGES)
  config.task = task_config("reconstruct")
  return config
