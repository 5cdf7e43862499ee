"""The authors' official CelebA-HQ run (CMACH508/CLmser `configs/celebahq.json`,
`trainer/trainer.py`, `data_loader/`), for `--config=configs/official_celeba.py:VARIANT`.

In place: the official network of each variant (`config.OFFICIAL`: 7 layers of Table 2's CelebA
preset, conv -> BatchNorm -> ReLU, skips averaged after the ReLU, Tanh output, Xavier init),
256 x 256 images, batch 16, Adam with AMSGrad at lr 1e-3, and their MultiStepLR
(x0.1 at epochs 20 and 40 of 50) in steps of their 27,000 training images. Their pretrained
weights load with `python -m clmser_jax.convert_official --pth FILE --variant VARIANT
--out DIR`, then `--workdir=DIR`.

PENDING, not faked: the official task is inpainting. The network sees `image * mask` with
images in [-1, 1] (`Normalize(0.5, 0.5)`) and random masks (1 = known), and the loss is the
MSE between its raw Tanh output and the full image. That needs the inpainting task and masks
another engineer is building; until they land, this config trains the official network on
the reconstruction task of `train.py` (no mask, images in [0, 1]).

Note on their trainer: the released `trainer/trainer.py` builds the MultiStepLR but never calls
`lr_scheduler.step()`, so their runs kept lr 1e-3 throughout; `--config.optimizer.decay_steps=()`
reproduces that, the default follows their config file. Set `dataset` to a CelebA-HQ folder.
"""
import math

import ml_collections

from clmser_jax.config import model_config

TRAIN_IMAGES = 27_000  # CelebA-HQ: 27,000 train / 3,000 test
BATCH_SIZE = 16
STEPS_PER_EPOCH = math.ceil(TRAIN_IMAGES / BATCH_SIZE)  # PyTorch keeps the last, short batch
EPOCHS = 50
DECAY_EPOCHS = (20, 40)


def get_config(variant: str = "clmser") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "embedded"  # "folder:/path/to/celeba-hq/train"
  config.image_size = 256
  config.batch_size = BATCH_SIZE
  config.num_train_steps = EPOCHS * STEPS_PER_EPOCH
  config.eval_every_steps = STEPS_PER_EPOCH
  config.checkpoint_every_steps = STEPS_PER_EPOCH
  config.log_every_steps = 100
  config.num_eval_images = 64
  config.seed = 123  # their SEED; torch and JAX draw different numbers from it
  config.optimizer = ml_collections.ConfigDict(dict(
      name="amsgrad", learning_rate=1e-3,
      decay_steps=tuple(e * STEPS_PER_EPOCH for e in DECAY_EPOCHS), decay_factor=0.1))
  config.model = model_config(variant, "celeba", official=True)
  return config
