"""STL10-n reconstruction (Sec. 5.1-5.2, Tables 2-4, Figs. 5-6).

Data: tfds `stl10`, prepared once with `tfds build stl10 --data_dir=DIR
--file_format=array_record` and read from `--config.data_dir=DIR`. Its 5,000 training images
are divided 4:1 per class (Sec. 5; every 5th image of each class held out): 400 per class to
train on, and 100 per class (1,000 images) held out, the one test set of every STL10-n.
STL10-n trains on the first n training images of each class.

`--config=configs/stl10.py:VARIANT[,N][,sgd|adam][,tiny]`: N is 400 | 100 | 10 (Table 4; any
1..400 works; default 400); the optimizer (Table 3: learning rate 0.01 for both; Fig. 6
compares them on STL10-100; default sgd); `tiny` is a smoke-test size on the embedded
photographs. Table 3: 20 epochs of the 10 n training images at batch 100, i.e. 2 n steps
(n a multiple of 10).
"""
import ml_collections

from configs import default

EPOCHS = 20  # Table 3
BATCH_SIZE = 100  # Table 3
NUM_CLASSES = 10


def get_config(arg: str = "clmser") -> ml_collections.ConfigDict:
  variant, *options = arg.split(",")
  n, optimizer, tiny = 400, "sgd", False
  for option in options:
    if option.isdigit():
      n = int(option)
    elif option in ("sgd", "adam"):
      optimizer = option
    elif option == "tiny":
      tiny = True
    else:
      raise ValueError(f"config option {option!r} is unknown; allowed: a number of images per "
                       "class (400, 100, 10), 'sgd', 'adam', 'tiny'")
  config = default.get_config(variant)  # Table 2: the STL10 architecture
  config.dataset = "tfds:stl10"
  config.per_class = n
  config.image_size = 96
  config.batch_size = BATCH_SIZE
  # Steps follow `per_class` by reference, so `--config.per_class=N` and `--sweep=per_class=...`
  # keep 20 epochs: an epoch is ceil(10 n / 100) steps.
  epoch = (config.get_ref("per_class") * NUM_CLASSES + BATCH_SIZE - 1) // BATCH_SIZE
  config.num_train_steps = epoch * EPOCHS
  config.eval_every_steps = epoch
  config.checkpoint_every_steps = 5 * epoch
  config.log_every_steps = 1  # Fig. 6's loss curves
  config.num_eval_images = 1000  # the whole held-out set
  config.optimizer = ml_collections.ConfigDict(dict(name=optimizer, learning_rate=0.01))
  if tiny:
    config.dataset = "embedded"
    config.per_class = 0
    config.image_size = 32
    config.batch_size = 4
    config.num_train_steps = 2
    config.eval_every_steps = config.checkpoint_every_steps = 2
    config.num_eval_images = 4
    config.model.channels = (4, 4, 8, 8, 8)
  return config
