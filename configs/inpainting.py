"""Shared shape of the Sec. 5.3 inpainting experiments (Tables 2-3, 5): the 7-layer
architecture at 256x256, Adam 1e-3, batch 16, 20 epochs, dense point-shaped masks."""
import ml_collections

from clmser_jax.config import model_config, task_config
from configs import default


def get_inpainting_config(arg: str, folder: str, train_images: int,
                          eval_images: int) -> ml_collections.ConfigDict:
  """`arg` is `VARIANT` or `VARIANT,tiny` (a smoke-test size on the embedded photographs)."""
  variant, _, size = arg.partition(",")
  config = default.get_config(variant)
  config.dataset = f"folder:{folder}"
  config.image_size = 256
  config.resize = 256
  config.batch_size = 16
  config.num_train_steps = 20 * train_images // 16
  config.eval_every_steps = 5000
  config.checkpoint_every_steps = 2500
  config.log_every_steps = 100
  config.num_eval_images = eval_images
  config.model = model_config(variant, "celeba")
  # The paper does not give the hole ratio of its point masks; Fig. 7 looks like ~25%.
  config.task = task_config("inpaint", mask="points", mask_ratio=0.25)
  if size == "tiny":
    config.dataset = "embedded"
    config.image_size = 64
    config.resize = 0
    config.batch_size = 4
    config.num_train_steps = 2
    config.eval_every_steps = config.checkpoint_every_steps = config.log_every_steps = 2
    config.num_eval_images = 4
    config.model.channels = (4, 4, 8, 8, 8, 8, 8)
    config.task.mask_bank_size = 8
  elif size:
    raise ValueError(f"config size {size!r} is unknown; allowed: 'tiny' or nothing")
  return config
