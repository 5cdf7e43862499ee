"""The authors' official CelebA-HQ run (CMACH508/CLmser `configs/celebahq.json`,
`trainer/trainer.py`, `data_loader/`), for `--config=configs/official_celeba.py:VARIANT`.

In place: the official network of each variant (`config.OFFICIAL`: 7 layers of Table 2's CelebA
preset, conv -> BatchNorm -> ReLU, skips averaged after the ReLU, Tanh output, Xavier init),
256 x 256 images, batch 16, Adam with AMSGrad at lr 1e-3, and their MultiStepLR
(x0.1 at epochs 20 and 40 of 50) in steps of their 27,000 training images. Their pretrained
weights load with `python -m clmser_jax.convert_official --pth FILE --variant VARIANT
--out DIR`, then `--workdir=DIR`.

The task is theirs: inpainting with `image * mask` in [-1, 1] (`Normalize(0.5, 0.5)`,
`task.pixel_range='symmetric'`), the loss the MSE between the raw Tanh output and the full
image (`task.loss='mse'`); masks are the paper's dense point-shaped ones
(`--config.task.mask=folder:/path` with `--config.task.mask_polarity` for a mask set).

Note on their trainer: the released `trainer/trainer.py` builds the MultiStepLR but never calls
`lr_scheduler.step()`, so their runs kept lr 1e-3 throughout; `--config.optimizer.decay_steps=()`
reproduces that, the default follows their config file. Set `--config.dataset=folder:/path/to/celeba_hq`.
"""
import math

import ml_collections

from configs.inpainting import get_inpainting_config

TRAIN_IMAGES = 27_000  # CelebA-HQ: 27,000 train / 3,000 test
BATCH_SIZE = 16
STEPS_PER_EPOCH = math.ceil(TRAIN_IMAGES / BATCH_SIZE)  # PyTorch keeps the last, short batch
EPOCHS = 50
DECAY_EPOCHS = (20, 40)


def get_config(arg: str = "clmser") -> ml_collections.ConfigDict:
  """`arg` is `VARIANT` or `VARIANT,tiny`."""
  config = get_inpainting_config(arg, "data/celeba_hq", TRAIN_IMAGES, eval_images=3000,
                                 official=True)
  config.seed = 123  # their SEED; torch and JAX draw different numbers from it
  config.optimizer = ml_collections.ConfigDict(dict(
      name="amsgrad", learning_rate=1e-3,
      decay_steps=tuple(e * STEPS_PER_EPOCH for e in DECAY_EPOCHS), decay_factor=0.1))
  config.task.pixel_range = "symmetric"
  if not arg.endswith(",tiny"):
    config.num_train_steps = EPOCHS * STEPS_PER_EPOCH
    config.eval_every_steps = config.checkpoint_every_steps = STEPS_PER_EPOCH
  return config
