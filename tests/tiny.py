"""A tiny run for tests: depth-2 model on 16x16 crops, 6 steps, everything logged.

In-process: `tiny.get_config(variant)`; on the command line: `--config=tests/tiny.py:VARIANT`
(run from the repository root, which must be on PYTHONPATH).
"""
from configs import official_celeba
from configs.default import get_config as default_config


def get_config(variant: str = "clmser", steps: int = 6):
  """`variant` of configs/default.py, or 'official': the authors' network (BatchNorm) and
  inpainting task with their AMSGrad and a step decay inside the run."""
  if variant == "official":
    config = official_celeba.get_config("clmser,tiny")
    config.optimizer.decay_steps = (2, 5)
  else:
    config = default_config(variant)
  config.image_size = 16
  config.batch_size = 8
  config.num_train_steps = steps
  config.eval_every_steps = 3
  config.checkpoint_every_steps = 3
  config.log_every_steps = 1
  config.num_eval_images = 8
  config.model.depth = 2
  config.model.channels = (4, 8)
  config.model.strides = (1, 2)
  return config
