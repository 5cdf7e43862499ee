"""The gradient-vanishing study (Sec. 4.2) and the convergence curves (Sec. 5.2, Fig. 6).

Every measurement is a list of flat rows (dicts) ready for a CSV: the per-layer norms of the
use terms of `gradient_terms` at initialisation, and along training with SGD or Adam, for
the four variants of Table 1 at several depths and activations.
"""
from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import optax
from absl import logging

from clmser_jax import tasks
from clmser_jax.analysis.gradient_terms import USES, gradient_terms, term_norms
from clmser_jax.config import OPTIMIZERS
from clmser_jax.data import Dataset, pipeline
from clmser_jax.models import VARIANTS
from clmser_jax.models.clmser import CLmser

_TRAIN_STREAM, _INIT_STREAM = 0, 1  # batches for training never repeat those at init


def batch(config, dataset: Dataset, stream: int, index: int) -> jax.Array:
  """Training crops of batch `index` of `stream`, in [0, 1]: the pipeline's sampler seeded
  with `(config.seed, stream)`."""
  sampler = pipeline.Sampler(pipeline.Reader(dataset.train), config.image_size, dataset.flip,
                             (config.seed, stream))
  rows = pipeline.host_batch(sampler, index, slice(0, config.batch_size))
  return jnp.asarray(tasks.unit_batch(rows)["image"])


def architecture(depth: int, config) -> tuple[tuple[int, ...], tuple[int, ...]]:
  """Table 2's pattern at any depth: channels double from `config.width` up to
  `config.max_width`; stride 1, then 2 until the map is `config.min_size` wide, then 1."""
  channels = tuple(min(config.width * 2 ** k, config.max_width) for k in range(depth))
  strides, size = [1], config.image_size
  for _ in range(depth - 1):
    strides.append(2 if size > config.min_size else 1)
    size //= strides[-1]
  return channels, tuple(strides)


def build(config, variant: str, depth: int, activation: str, kernel_init: str) -> CLmser:
  """A Table 1 variant with `depth` layers of `architecture` and one reflection (Sec. 4.2)."""
  dcw, dpn = VARIANTS[variant]
  channels, strides = architecture(depth, config)
  return CLmser(channels=channels, strides=strides, kernel_size=config.kernel_size, dcw=dcw,
                dpn=dpn, reflections=1, activation=activation, kernel_init=kernel_init)


@functools.partial(jax.jit, static_argnums=0)
def _terms(model, params, x):
  return gradient_terms(model, params, x)


def _mean_rows(runs: list[list[dict]]) -> list[dict]:
  """Averages the norm columns of rows that describe the same kernel in several runs."""
  return [{**rows[0], **{c: sum(r[c] for r in rows) / len(rows) for c in (*USES, "total")}}
          for rows in zip(*runs)]


def init_norms(config, dataset: Dataset) -> list[dict]:
  """Per-layer term norms at initialisation, averaged over `config.init.num_seeds` draws of
  the kernels, each on its own batch."""
  rows = []
  c = config.init
  for init, act, depth, variant in itertools.product(
      c.kernel_inits, c.activations, c.depths, config.variants):
    logging.info("init: kernel_init=%s %s d=%d %s", init, act, depth, variant)
    model = build(config, variant, depth, act, init)
    runs = []
    for seed in range(c.num_seeds):
      x = batch(config, dataset, _INIT_STREAM, seed)
      params = model.init(jax.random.key(config.seed + seed), x)["params"]
      # `kernel_init` only matters to `init`: one compile serves every initialiser.
      runs.append(term_norms(_terms(model.clone(kernel_init="he"), params, x)[1]))
    key = dict(kernel_init=init, activation=act, depth=depth, variant=variant)
    rows += [{**key, **row} for row in _mean_rows(runs)]
  return rows


def _train_step(model, optimizer):
  @jax.jit
  def step(params, opt_state, x):
    loss, terms = gradient_terms(model, params, x)
    grads = jax.tree.map(lambda *t: sum(t), *(terms[u] for u in USES))
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, terms
  return step


def train(config, dataset: Dataset, model: CLmser, optimizer_name: str):
  """Trains `model` from its initialisation; returns the loss rows (every step) and the
  term-norm rows (every `config.train.norm_every` steps, and at step 0). A run whose loss
  turns non-finite ends there, its last row holding the non-finite loss."""
  c = config.train
  optimizer = OPTIMIZERS[optimizer_name].transform(c.learning_rates[optimizer_name])
  params = model.init(jax.random.key(config.seed),
                      batch(config, dataset, _TRAIN_STREAM, 0))["params"]
  opt_state, step = optimizer.init(params), _train_step(model, optimizer)
  losses, norms = [], []
  for t in range(c.num_steps + 1):
    new_params, new_state, loss, terms = step(params, opt_state,
                                              batch(config, dataset, _TRAIN_STREAM, t))
    losses.append({"step": t, "loss": float(loss)})
    if not jnp.isfinite(loss):  # a result of the study, not a bug: say so and stop this run
      logging.warning("non-finite loss at step %d, run stopped", t)
      break
    if t % c.norm_every == 0 or t == c.num_steps:
      norms += [{"step": t, **row} for row in term_norms(terms)]
    params, opt_state = new_params, new_state
  return losses, norms


def training_runs(config, dataset: Dataset):
  """`train` for every optimizer, depth, activation and variant of `config.train`."""
  c = config.train
  losses, norms = [], []
  for opt, act, depth, variant in itertools.product(
      c.optimizers, c.activations, c.depths, config.variants):
    key = dict(optimizer=opt, activation=act, depth=depth, variant=variant)
    logging.info("train: %s", key)
    model = build(config, variant, depth, act, c.kernel_init)
    run_losses, run_norms = train(config, dataset, model, opt)
    losses += [{**key, **r} for r in run_losses]
    norms += [{**key, **r} for r in run_norms]
  return losses, norms
