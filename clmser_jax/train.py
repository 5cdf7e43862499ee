"""`train_and_evaluate(config, workdir)`: the one entry that launchers, tests and notebooks
share. A row of small pure helpers and one loop (Sec. 4.1 learning phase: minimise Eq. 1 by
backpropagation through the reflections)."""
from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax.training import train_state

from clmser_jax import checkpoint, faults, metrics, parallel, writers
from clmser_jax.config import validate
from clmser_jax.data import load_dataset
from clmser_jax.models import build_model

TrainState = train_state.TrainState


def make_optimizer(opt: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Table 3: SGD (lr 0.01) or Adam (lr 1e-3)."""
  return {"adam": optax.adam, "sgd": optax.sgd}[opt.name](opt.learning_rate)


def create_train_state(rng, model, tx, image_shape) -> TrainState:
  params = model.init(rng, jnp.zeros(image_shape, jnp.float32))["params"]
  return TrainState.create(apply_fn=model.apply, params=params, tx=tx)


def train_step(state: TrainState, images: jax.Array):
  """One update on the Eq. 1 loss; returns the new state and `{loss, grad_norm}`."""
  def loss_fn(params):
    return metrics.reconstruction_loss(state.apply_fn({"params": params}, images), images)

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  return state.apply_gradients(grads=grads), {"loss": loss,
                                               "grad_norm": optax.tree.norm(grads)}


def eval_step(state: TrainState, images: jax.Array):
  """Reconstructions and per-image metrics of a batch of evaluation images."""
  reconstruction = state.apply_fn({"params": state.params}, images)
  return reconstruction, metrics.image_metrics(reconstruction, images)


def evaluate(eval_fn, state, images: np.ndarray, batch_size: int, mesh):
  """Mean metrics over the evaluation set and the reconstructions of its first batch."""
  per_image, first = [], None
  for start in range(0, len(images), batch_size):
    batch = jax.device_put(images[start:start + batch_size], parallel.replicated(mesh))
    reconstruction, values = eval_fn(state, batch)
    per_image.append(jax.device_get(values))
    first = reconstruction if first is None else first
  means = {k: float(np.mean(np.concatenate([v[k] for v in per_image]))) for k in per_image[0]}
  return means, np.asarray(first)


def _report_progress(step, total, start_step, start_time, loss):
  elapsed = time.perf_counter() - start_time
  rate = (step - start_step) / max(elapsed, 1e-9)
  eta = (total - step) / max(rate, 1e-9)
  logging.info("step %d/%d  loss %.5f  %.2f steps/s  ETA %dm%02ds",
               step, total, loss, rate, eta // 60, eta % 60)
  return rate


def _write_config(config, workdir):
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Trains `config.model` on `config.dataset`, evaluating and checkpointing into `workdir`;
  resumes from the latest checkpoint there. Returns the final state."""
  validate(config)
  parallel.check_batch_size(config.batch_size, jax.device_count(), jax.process_count())
  checkpoint.ensure_writable(workdir)
  _write_config(config, workdir)
  dataset = load_dataset(config)
  model = build_model(config.model)
  tx = make_optimizer(config.optimizer)
  mesh = parallel.make_mesh()
  rng = jax.random.key(config.seed)
  init_rng, data_rng = jax.random.split(rng)
  image_shape = (1, config.image_size, config.image_size, 3)

  repl = parallel.replicated(mesh)
  init = jax.jit(lambda r: create_train_state(r, model, tx, image_shape), out_shardings=repl)
  state = init(init_rng)
  mngr = checkpoint.manager(workdir)
  restored, start_step = checkpoint.restore_latest(mngr, state)
  state = restored if restored is not None else state
  if start_step:
    logging.info("resumed from the checkpoint at step %d", start_step)

  rows = parallel.process_rows(mesh, config.batch_size)
  logging.info("data parallel over %d devices in %d process(es); this process builds rows "
               "%d:%d of each batch of %d", jax.device_count(), jax.process_count(),
               rows.start, rows.stop, config.batch_size)
  step_fn = jax.jit(train_step, in_shardings=(repl, parallel.data_sharding(mesh)),
                    out_shardings=(repl, repl), donate_argnums=0)
  eval_fn = jax.jit(eval_step)
  writer = writers.MetricWriter(workdir, start_step)
  pending, unlogged, t0 = [], [], time.perf_counter()
  with faults.Preemption(mngr) as preemption, checkpoint.finishing(mngr):
    for step in range(start_step + 1, config.num_train_steps + 1):
      images = dataset.train_batch(jax.random.fold_in(data_rng, step), config.batch_size, rows)
      state, step_metrics = step_fn(state, parallel.global_batch(images, mesh,
                                                                 config.batch_size))
      pending.append(step_metrics)
      last = step == config.num_train_steps
      preempted = preemption.reached(step)
      log = step % config.log_every_steps == 0 or last
      save = step % config.checkpoint_every_steps == 0 or last or preempted
      if log or save:  # never save (or log) a state that came from a non-finite step
        pending = jax.device_get(pending)
        faults.check_finite(step - len(pending) + 1, pending)
        unlogged, pending = unlogged + pending, []
      if log:
        values = {k: float(np.mean([m[k] for m in unlogged])) for k in unlogged[0]}
        values["steps_per_sec"] = _report_progress(step, config.num_train_steps, start_step,
                                                   t0, values["loss"])
        writer.write(step, "train", values)
        unlogged = []
      if step % config.eval_every_steps == 0 or last:
        means, reconstruction = evaluate(eval_fn, state, dataset.eval_images,
                                         config.batch_size, mesh)
        writer.write(step, "eval", means)
        logging.info("eval at step %d: %s", step, json.dumps(means))
        shown = dataset.eval_images[:len(reconstruction)][:8]
        writers.save_image_grid(os.path.join(workdir, "images", f"eval_{step:07d}.png"),
                                [shown, reconstruction[:8], shown])
      if save:
        checkpoint.save(mngr, step, state)
      if preempted:
        mngr.wait_until_finished()
        logging.warning("preempted: saved the checkpoint at step %d; exiting cleanly (the "
                        "next run resumes there)", step)
        break
  writer.close()
  return state
