"""Default run: CLmser (Table 2, STL10 preset, d=5) on the embedded photographs.

`--config=configs/default.py:VARIANT` picks clmser | clmser-w | clmser-n | cae | unet; options
after it: `sgd`, Table 3's SGD at 0.01 instead of Adam at 1e-3; `contractive`, contractive
kernels instead of `auto` (the authors' Xavier at one reflection, `models/init.py`), the base of
the fidelity study (`docs/fidelity.md`).
Any field can be overridden: `--config.model.reflections=4`.
"""
import ml_collections

from clmser_jax.config import data_config, model_config, task_config


def get_config(arg: str = "clmser") -> ml_collections.ConfigDict:
  variant, *options = arg.split(",")
  if set(options) - {"sgd", "contractive"}:
    raise ValueError(f"config options {options} are unknown; allowed: 'sgd', 'contractive'")
  config = ml_collections.ConfigDict()
  config.dataset = "embedded"  # or "digits", "folder:/path", "list:/path/list.txt", ...
  config.eval_dataset = ""  # "" = held out from `dataset`; or "folder:", "list:", "records:"
  config.data = data_config()  # workers=-1 (a worker per core less one), prefetch=2, roots
  config.data_dir = ""  # where tfds datasets are prepared; "" = $TFDS_DATA_DIR or TFDS's default
  config.per_class = 0  # labelled tfds datasets: the first n images of each class; 0 = all
  config.image_size = 64
  config.resize = 0  # shorter side resized to this before cropping; 0 = native resolution
  config.batch_size = 16
  config.num_train_steps = 1500
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 500
  config.log_every_steps = 50
  config.num_eval_images = 64
  config.seed = 0
  config.optimizer = ml_collections.ConfigDict(dict(name="adam", learning_rate=1e-3))  # Table 3
  if "sgd" in options:
    config.optimizer = ml_collections.ConfigDict(dict(name="sgd", learning_rate=0.01))
  config.model = model_config(variant, "stl10")
  if "contractive" in options:
    config.model.kernel_init = "contractive"
  config.task = task_config("reconstruct")
  return config
