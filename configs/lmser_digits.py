"""The classic Lmser (Sec. 3, Eq. 1-2) on scikit-learn's 8x8 digits, learned by autodiff and
by the Eq. 2 rule: `python -m clmser_jax.analysis.lmser_digits --config=configs/lmser_digits.py
--workdir=DIR`."""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.networks = ml_collections.ConfigDict(dict(  # hidden sizes n_1..n_d (n_0 = 64)
      one_layer=(36,), two_layer=(36, 16)))
  config.init_scale = 0.1  # small kernels: what is left of the random start stays faint
  config.relaxations = 4  # simultaneous updates after the bottom-up pass (Eq. 3, Eq. 6)
  config.learning_rate = 0.1  # plain gradient steps, the same for both rules
  config.batch_size = 64
  config.num_steps = 3000
  config.log_every = 50
  return config
