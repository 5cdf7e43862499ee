"""Table 7: the supervised Lmser (DSP) against a plain CNN, classification plus reconstruction.

`--config=configs/mnist_dsp.py:VARIANT[,DATASET][,tiny]`: VARIANT is clmser | clmser-w |
clmser-n | cae (the label layer on the Table 1 variants) or cnn (the baseline: the same encoder
and label layer, cross-entropy only); DATASET is `digits` (default: scikit-learn's 8x8 digits,
shipped with it, upscaled to 16x16, every 5th held out) or `mnist`, `fashion_mnist`, `cifar10`
(TensorFlow Datasets, all 10,000 test images). `tiny` is a smoke test on the digits.

The paper gives no architecture for Table 7. Ours: d = 3, 3x3 kernels, channels (16, 32, 64),
strides (1, 2, 2), so `H_3` is (S/4) x (S/4) x 64 (4x4 on the 16x16 digits, 7x7 on MNIST, 8x8
on CIFAR-10), flattened into the 10 label neurons. Adam 1e-3 (Table 3), batch 64; the digits
run is a CPU-sized budget, the tfds runs 20 epochs.
"""
import ml_collections

from clmser_jax.config import task_config
from configs import default

TFDS = {"mnist": (28, 60000), "fashion_mnist": (28, 60000), "cifar10": (32, 50000)}
EPOCHS = 20


def get_config(arg: str = "clmser") -> ml_collections.ConfigDict:
  variant, *options = arg.split(",")
  tiny = "tiny" in options
  datasets = [o for o in options if o != "tiny"] or ["digits"]
  name = datasets[0]
  if len(datasets) > 1 or name not in ("digits", *TFDS):
    raise ValueError(f"config options {options!r} are unknown; allowed: one of 'digits', "
                     f"{', '.join(repr(n) for n in TFDS)} and/or 'tiny'")
  config = default.get_config(variant)
  config.model.update(depth=3, channels=(16, 32, 64), strides=(1, 2, 2), num_classes=10)
  config.task = task_config("dsp")
  config.batch_size = 64
  if name == "digits":
    config.dataset = "digits"
    config.image_size = 16
    config.num_train_steps = 1500
    config.num_eval_images = 360  # the whole held-out fifth
  else:
    size, train_images = TFDS[name]
    config.dataset = f"tfds:{name}"
    config.image_size = size
    config.num_train_steps = EPOCHS * train_images // config.batch_size
    config.num_eval_images = 10000
  config.eval_every_steps = config.checkpoint_every_steps = config.num_train_steps // 3
  if tiny:
    config.dataset = "digits"
    config.image_size = 16
    config.batch_size = 8
    config.num_train_steps = config.eval_every_steps = config.checkpoint_every_steps = 3
    config.log_every_steps = 1
    config.num_eval_images = 8
    config.model.update(depth=2, channels=(4, 8), strides=(1, 2))
  return config
