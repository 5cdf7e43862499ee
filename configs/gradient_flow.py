"""Gradient-flow study (Sec. 4.2, Eq. 10-15) and convergence curves (Fig. 6).

Small by default (a few minutes on 2 CPU cores):
`python -m clmser_jax.analysis.gradient_flow --config=configs/gradient_flow.py --workdir=DIR`.
Any field can be overridden, e.g. `--config.train.num_steps=1000`.
"""
import ml_collections

from clmser_jax.config import data_config


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.dataset = "embedded"  # training crops of clmser_jax.data; or "folder:/path"
  config.eval_dataset = ""  # the study reads training crops only
  config.data = data_config()  # `list:` datasets' root
  config.num_eval_images = 1  # the study draws training crops only
  config.resize = 0  # photographs at native resolution (clmser_jax.data)
  config.image_size = 32
  config.batch_size = 8
  config.kernel_size = 3
  config.width = 8  # channels of layer 1; doubling per layer as in Table 2 ...
  config.max_width = 32  # ... up to this
  config.min_size = 4  # stride 2 until the feature map is this wide, then stride 1
  config.variants = ("clmser", "clmser-w", "clmser-n", "cae")
  config.init = ml_collections.ConfigDict(dict(
      depths=(3, 5, 10, 15), activations=("relu", "sigmoid"),
      kernel_inits=("auto", "he"),  # 'auto': the models' default, Xavier here (models/init.py)
      num_seeds=3))
  config.train = ml_collections.ConfigDict(dict(
      depths=(5, 15), activations=("relu", "sigmoid"), kernel_init="auto",
      optimizers=("sgd", "adam"),
      learning_rates=ml_collections.ConfigDict(dict(sgd=0.01, adam=1e-3)),  # Table 3
      num_steps=200, norm_every=20))
  config.table_depths = (5, 15)  # depths listed in the markdown table of init norms
  return config
