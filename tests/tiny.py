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
  config.data.workers = 0  # batches made in the test process (tests of workers set their own)
  config.model.depth = 2
  config.model.channels = (4, 8)
  config.model.strides = (1, 2)
  return config


def two_train_steps(jit, channels, reflections: int = 2):
  """Losses and parameters after two Adam steps of a tiny CLmser with `channels` at
  `reflections`, the step compiled by `jit`: to compare two ways of building the same step."""
  import functools

  import jax
  import jax.numpy as jnp
  import optax

  from clmser_jax import train
  from clmser_jax.models import build_model
  config = get_config()
  config.model.update(channels=channels, reflections=reflections)
  model = build_model(config.model)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
  batch = {"image": jax.random.uniform(jax.random.key(1), (4, 16, 16, 3))}
  state = train.state_from_variables(model, optax.adam(1e-3), variables)
  step, losses = jit(functools.partial(train.train_step, task=config.task)), []
  for _ in range(2):
    state, metrics = step(state, batch)
    losses.append(float(metrics["loss"]))
  return losses, state.params
