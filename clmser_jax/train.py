"""`train_and_evaluate(config, workdir)`: the one entry that launchers, tests and notebooks
share. A row of small pure helpers and one loop (Sec. 4.1 learning phase: minimise Eq. 1 by
backpropagation through the reflections)."""
from __future__ import annotations

import functools
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax.training import train_state

from clmser_jax import checkpoint, faults, parallel, tasks, writers, xla_cpu
from clmser_jax.config import validate
from clmser_jax.data import load_dataset
from clmser_jax.models import build_model

TrainState = train_state.TrainState


class BatchNormTrainState(TrainState):
  """The train state of a model with BatchNorm: also its running averages, checkpointed."""
  batch_stats: Any


def learning_rate(opt: ml_collections.ConfigDict):
  """`opt.learning_rate`, times `opt.decay_factor` at each of the optional
  `opt.decay_steps` (the official code's MultiStepLR, in steps)."""
  steps = tuple(opt.get("decay_steps", ()))
  if not steps:
    return opt.learning_rate
  return optax.piecewise_constant_schedule(opt.learning_rate,
                                           {s: opt.decay_factor for s in steps})


def make_optimizer(opt: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Table 3: SGD (lr 0.01) or Adam (lr 1e-3); AMSGrad for the official code's
  `Adam(amsgrad=True)`. Not step for step the same: optax keeps the maximum of the
  bias-corrected second moment, PyTorch the maximum of the raw one and corrects it after, so
  they part while bias correction matters and while an early maximum still dominates."""
  make = {"adam": optax.adam, "amsgrad": optax.amsgrad, "sgd": optax.sgd}[opt.name]
  return make(learning_rate(opt))


def state_from_variables(model, tx, variables) -> TrainState:
  """Step 0 of `model` at `variables` (params and, with BatchNorm, running averages)."""
  if "batch_stats" in variables:
    return BatchNormTrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx,
                                      batch_stats=variables["batch_stats"])
  return TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx)


def create_train_state(rng, model, tx, input_shape) -> TrainState:
  """Fresh parameters, optimizer state and, when the model has BatchNorm, its averages."""
  return state_from_variables(model, tx, model.init(rng, jnp.zeros(input_shape, jnp.float32)))


def model_variables(state: TrainState, params) -> dict:
  """`params` with the state's BatchNorm running averages, if it has any."""
  if isinstance(state, BatchNormTrainState):
    return {"params": params, "batch_stats": state.batch_stats}
  return {"params": params}


def train_step(state: TrainState, batch, task):
  """One update on the task's loss (Eq. 1 for reconstruction); returns the new state and
  `{loss, grad_norm}`. BatchNorm runs in training mode and its new running averages go into
  the state; DSP clamps the label (`tasks.clamped_label`)."""
  def loss_fn(params):
    output, updates = state.apply_fn(model_variables(state, params),
                                     tasks.model_input(batch, task), train=True,
                                     mutable=["batch_stats"],
                                     **tasks.clamped_label(batch, task))
    return tasks.loss(output, batch, task), updates

  (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  return state.apply_gradients(grads=grads, **updates), {"loss": loss,
                                                          "grad_norm": optax.tree.norm(grads)}


def eval_step(state: TrainState, batch, task):
  """The task's predicted images in [0, 1] (None for a classifier) and their per-image
  metrics (`tasks.eval_metrics`). The model sees no label."""
  output = state.apply_fn(model_variables(state, state.params), tasks.model_input(batch, task))
  predicted = tasks.prediction(output, batch, task)
  return predicted, tasks.eval_metrics(output, predicted, batch, task)


def evaluate(eval_fn, state, batches, mesh):
  """Mean metrics over the evaluation batches, and the first batch with its predictions."""
  per_image, first = [], None
  for batch in batches:
    predicted, values = eval_fn(state, jax.device_put(batch, parallel.replicated(mesh)))
    per_image.append(jax.device_get(values))
    first = (batch, jax.device_get(predicted)) if first is None else first
  means = {k: float(np.mean(np.concatenate([v[k] for v in per_image]))) for k in per_image[0]}
  return means, first


def eval_mask_bank(config: ml_collections.ConfigDict) -> np.ndarray | None:
  """The masks of the evaluation set (inpainting; None otherwise), drawn with `seed + 1` so
  they are never those of training."""
  return tasks.mask_bank(config.task, config.image_size, config.seed + 1,
                         config.task.mask_bank_size)


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
  tasks.check_labels(dataset, config.task, config.model.num_classes)
  model = build_model(config.model)
  tx = make_optimizer(config.optimizer)
  mesh = parallel.make_mesh()
  rng = jax.random.key(config.seed)
  init_rng, data_rng = jax.random.split(rng)
  task = config.task
  train_masks = tasks.mask_bank(task, config.image_size, config.seed, task.mask_bank_size)
  eval_masks = eval_mask_bank(config)
  first = next(tasks.eval_batches(dataset, eval_masks, 1))
  input_shape = tasks.model_input(first, task).shape

  repl = parallel.replicated(mesh)
  init = jax.jit(lambda r: create_train_state(r, model, tx, input_shape), out_shardings=repl)
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
  step_fn = xla_cpu.jit(functools.partial(train_step, task=task),
                        in_shardings=(repl, parallel.data_sharding(mesh)),
                        out_shardings=(repl, repl), donate_argnums=0)
  eval_fn = xla_cpu.jit(functools.partial(eval_step, task=task))
  writer = writers.MetricWriter(workdir, start_step)
  pending, unlogged, t0 = [], [], time.perf_counter()
  with faults.Preemption(mngr) as preemption, checkpoint.finishing(mngr):
    for step in range(start_step + 1, config.num_train_steps + 1):
      batch = tasks.train_batch(dataset, train_masks, jax.random.fold_in(data_rng, step),
                                config.batch_size, rows)
      state, step_metrics = step_fn(state, parallel.global_batch(batch, mesh,
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
        means, (shown, predicted) = evaluate(
            eval_fn, state, tasks.eval_batches(dataset, eval_masks, config.batch_size), mesh)
        writer.write(step, "eval", means)
        logging.info("eval at step %d: %s", step, json.dumps(means))
        if predicted is not None:
          writers.save_image_grid(os.path.join(workdir, "images", f"eval_{step:07d}.png"),
                                  [tasks.shown_input(shown, task)[:8], predicted[:8],
                                   shown["image"][:8]])
      if save:
        checkpoint.save(mngr, step, state)
      if preempted:
        mngr.wait_until_finished()
        logging.warning("preempted: saved the checkpoint at step %d; exiting cleanly (the "
                        "next run resumes there)", step)
        break
  writer.close()
  return state
