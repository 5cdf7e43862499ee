"""A tiny run for tests: depth-2 model on 16x16 crops, 6 steps, everything logged.

In-process: `tiny.get_config(variant)`; on the command line: `--config=tests/tiny.py:VARIANT`
(run from the repository root, which must be on PYTHONPATH).
"""
from configs.default import get_config as default_config


def get_config(variant: str = "clmser"):
  config = default_config(variant)
  config.image_size = 16
  config.batch_size = 8
  config.num_train_steps = 6
  config.eval_every_steps = 3
  config.checkpoint_every_steps = 3
  config.log_every_steps = 1
  config.num_eval_images = 8
  config.model.depth = 2
  config.model.channels = (4, 8)
  config.model.strides = (1, 2)
  return config
