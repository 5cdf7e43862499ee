"""`train_and_evaluate(config, workdir)`: the one entry that launchers, tests and notebooks
share. A row of small pure helpers and one loop (Sec. 4.1 learning phase: minimise Eq. 1 by
backpropagation through the reflections)."""
from __future__ import annotations

import contextlib
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

from clmser_jax import checkpoint, faults, ops, parallel, tasks, writers
from clmser_jax.config import OPTIMIZERS, validate
from clmser_jax.data import load_dataset, pipeline
from clmser_jax.data import mask_banks
from clmser_jax.models import build_model

TrainState = train_state.TrainState
INPUT_WAIT_WARNING = 0.2  # above this share of a log window spent waiting, say so once
MANY_REFLECTIONS = 64  # warn above this many reflections


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
  return OPTIMIZERS[opt.name].transform(learning_rate(opt))


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
  `{loss, grad_norm, param_norm}` (the norm of the updated parameters: the check that no
  exploded state is saved costs one reduction). BatchNorm runs in training mode and its new running averages go into
  the state; DSP clamps the label (`tasks.clamped_label`)."""
  batch = tasks.unit_batch(batch)

  def loss_fn(params):
    output, updates = state.apply_fn(model_variables(state, params),
                                     tasks.model_input(batch, task), train=True,
                                     mutable=["batch_stats"],
                                     **tasks.clamped_label(batch, task))
    return tasks.loss(output, batch, task), updates

  (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  state = state.apply_gradients(grads=grads, **updates)
  return state, {"loss": loss, "grad_norm": optax.tree.norm(grads),
                 "param_norm": optax.tree.norm(state.params)}


def eval_step(state: TrainState, batch, task):
  """The task's predicted images in [0, 1] (None for a classifier) and their per-image
  metrics (`tasks.eval_metrics`). The model sees no label."""
  batch = tasks.unit_batch(batch)
  output = state.apply_fn(model_variables(state, state.params), tasks.model_input(batch, task))
  predicted = tasks.prediction(output, batch, task)
  return predicted, tasks.eval_metrics(output, predicted, batch, task)


def jit_eval_step(task, metrics: bool = True):
  """`eval_step` for `task`, jitted with the convolutions' compiler options: the one
  evaluation step that training, the experiments and inference share. Without `metrics` it
  returns the prediction alone (XLA then drops the metrics)."""
  step = functools.partial(eval_step, task=task)
  return jax.jit(step if metrics else lambda state, batch: step(state, batch)[0],
                 compiler_options=ops.compiler_options())


def training_masks(config: ml_collections.ConfigDict, workdir: str, num_workers: int):
  """The masks inpainting trains with (None for other tasks), `mask_bank_size` of them."""
  return mask_banks.bank(config.task, config.image_size, config.seed,
                         config.task.mask_bank_size, num_workers, workdir)


def evaluation_masks(config: ml_collections.ConfigDict, workdir: str, num_workers: int):
  """The masks of the evaluation set, drawn with `seed + 1` so they are never those of
  training; crop `k` takes mask `k mod` the bank's size, so it needs at most
  `num_eval_images` of them."""
  return mask_banks.bank(config.task, config.image_size, config.seed + 1,
                         min(config.task.mask_bank_size, config.num_eval_images), num_workers,
                         workdir)


def eval_batches(config: ml_collections.ConfigDict, dataset, masks):
  """The fixed evaluation batches: the first `num_eval_images` crops, streamed in order."""
  crops = pipeline.EvalCrops(dataset.eval, config.image_size, dataset.centre,
                             dataset.eval_labels)
  return pipeline.eval_batches(crops, masks, config.batch_size, config.num_eval_images)


def evaluate(eval_fn, state, batches, mesh):
  """Mean metrics over the evaluation batches, and the first batch with its predictions."""
  per_image, first = [], None
  for batch in batches:
    predicted, values = eval_fn(state, jax.device_put(batch, parallel.replicated(mesh)))
    per_image.append(jax.device_get(values))
    first = (batch, jax.device_get(predicted)) if first is None else first
  if first is None:
    raise faults.InputError("no evaluation image could be read (see the warnings above)")
  means = {k: float(np.mean(np.concatenate([v[k] for v in per_image]))) for k in per_image[0]}
  return means, first


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


def _on_devices(batch: dict, mesh, batch_size: int):
  """A host batch of this process's rows as global arrays, and the images it skipped."""
  skipped = int(np.sum(batch.pop("skipped")))
  return parallel.global_batch(batch, mesh, batch_size), skipped


def _input_stream(config, sampler, rows, start_step, num_workers, mesh):
  """The training batches from `start_step + 1` on, on the devices, made ahead of the loop
  (nothing is started when the run is already finished)."""
  if start_step >= config.num_train_steps:
    return contextlib.nullcontext(iter(()))
  batches = pipeline.train_batches(sampler, rows, start_step + 1, config.num_train_steps,
                                   num_workers, config.data.prefetch)
  place = functools.partial(_on_devices, mesh=mesh, batch_size=config.batch_size)
  return contextlib.closing(iter(pipeline.prefetch_to_device(batches, place,
                                                             config.data.prefetch)))


class InputTimer:
  """The share of wall time the loop waited for batches, and images per second, over a log
  window. The waits for the first `startup` batches (each worker's first: its start-up) are
  left out."""

  def __init__(self, startup: int):
    self._start, self._waited, self._images = time.perf_counter(), 0.0, 0
    self._startup = startup
    self.warned = False

  def waited(self, seconds: float, images: int) -> None:
    if self._startup:
      self._startup -= 1
    else:
      self._waited += seconds
    self._images += images

  def window(self) -> dict[str, float]:
    """The window's `input_wait_fraction` and `images_per_sec`; starts the next window."""
    now = time.perf_counter()
    elapsed = max(now - self._start, 1e-9)
    values = {"input_wait_fraction": self._waited / elapsed,
              "images_per_sec": self._images / elapsed}
    self._start, self._waited, self._images = now, 0.0, 0
    return values


def _warn_input_bound(timer: InputTimer, fraction: float, num_workers: int) -> None:
  if fraction > INPUT_WAIT_WARNING and not timer.warned:
    timer.warned = True
    logging.warning("the input pipeline holds training back: the loop waited for batches "
                    "%.0f%% of the time; raise --config.data.workers (now %d) or train from a "
                    "prepared copy (python -m clmser_jax.data.prepare)", 100 * fraction,
                    num_workers)


def _warn_many_reflections(config) -> None:
  r = config.model.reflections
  if r > MANY_REFLECTIONS:
    logging.warning("model.reflections=%d: every train step runs and backpropagates through "
                    "%d reflections (about %d times the time and memory of one), far beyond "
                    "the paper's few; such a deep loop is slow and can diverge", r, r, r)


def _resume(config, workdir: str, mngr, state):
  """The state, step and unlogged metrics to start from: a fresh run's, or the newest
  checkpoint's that loads. `InputError` for a checkpoint of another model or one past
  `num_train_steps`."""
  restored, start_step, window = checkpoint.restore_latest(mngr, state, set_aside=True)
  if start_step > config.num_train_steps:
    raise faults.InputError(
        f"the checkpoint in {workdir} is at step {start_step}, past "
        f"config.num_train_steps={config.num_train_steps}: nothing to train (raise "
        "num_train_steps to continue it, or give a new --workdir)")
  if start_step:
    logging.info("resumed from the checkpoint at step %d", start_step)
  window = window or {"metrics": [], "skipped": 0}
  return (state if restored is None else restored), start_step, window


def _stopped(error: faults.NonFiniteError, mngr) -> faults.NonFiniteError:
  """`error` saying which checkpoint is left to resume from."""
  kept = mngr.latest_step()
  left = ("no checkpoint was written" if kept is None else
          f"the checkpoint at step {kept} is kept (resume from it with a lower learning rate)")
  return faults.NonFiniteError(f"{error}; stopped before saving it: {left}")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Trains `config.model` on `config.dataset`, evaluating and checkpointing into `workdir`;
  resumes from the newest readable checkpoint there. Returns the final state; raises
  `faults.Preempted` after saving the checkpoint of a step that a SIGTERM stopped.

  Everything is checked before the workdir is changed (the config, the data, the checkpoint
  it resumes), and a second run on the same workdir is refused (`checkpoint.exclusive`)."""
  validate(config)
  parallel.check_batch_size(config.batch_size, jax.device_count(), jax.process_count())
  checkpoint.ensure_writable(workdir)
  with checkpoint.exclusive(workdir):
    return _train(config, workdir)


def _train(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  ops.prepare()
  dataset = load_dataset(config)
  tasks.check_labels(dataset, config.task, config.model.num_classes)
  model = build_model(config.model)
  tx = make_optimizer(config.optimizer)
  mesh = parallel.make_mesh()
  task = config.task
  input_shape = tasks.input_shape(task, config.image_size)
  repl = parallel.replicated(mesh)
  init = jax.jit(lambda r: create_train_state(r, model, tx, input_shape), out_shardings=repl)
  mngr = checkpoint.manager(workdir)
  state, start_step, window = _resume(config, workdir, mngr, init(jax.random.key(config.seed)))
  _write_config(config, workdir)
  _warn_many_reflections(config)
  max_param_norm = faults.EXPLODED * float(optax.tree.norm(state.params))

  num_workers = pipeline.workers(config.data.workers)
  train_masks = training_masks(config, workdir, num_workers)
  # Made at the first evaluation, not before the first step.
  eval_masks = functools.cache(lambda: evaluation_masks(config, workdir, num_workers))
  rows = parallel.process_rows(mesh, config.batch_size)
  logging.info("data parallel over %d devices in %d process(es); this process builds rows "
               "%d:%d of each batch of %d with %d data worker(s)", jax.device_count(),
               jax.process_count(), rows.start, rows.stop, config.batch_size, num_workers)
  step_fn = jax.jit(functools.partial(train_step, task=task),
                    in_shardings=(repl, parallel.data_sharding(mesh)),
                    out_shardings=(repl, repl), donate_argnums=0,
                    compiler_options=ops.compiler_options())
  eval_fn = jit_eval_step(task)
  sampler = pipeline.Sampler(pipeline.Reader(dataset.train), config.image_size, dataset.flip,
                             (config.seed,), dataset.train_labels, train_masks)
  writer = writers.MetricWriter(workdir, start_step)
  pending, t0 = [], time.perf_counter()
  unlogged, skipped = list(window["metrics"]), window["skipped"]
  timer = InputTimer(startup=max(1, num_workers))
  preempted = False
  with (faults.Preemption(mngr) as preemption, checkpoint.finishing(mngr),
        _input_stream(config, sampler, rows, start_step, num_workers, mesh) as batches):
    try:
      for step in range(start_step + 1, config.num_train_steps + 1):
        started = time.perf_counter()
        batch, batch_skipped = pipeline.next_batch(batches, num_workers)
        timer.waited(time.perf_counter() - started, config.batch_size)
        skipped += batch_skipped
        state, step_metrics = step_fn(state, batch)
        if pending:  # at most two steps in flight, so the wait above is the devices' idle time
          jax.block_until_ready(pending[-1])
        pending.append(step_metrics)
        last = step == config.num_train_steps
        preempted = preemption.reached(step)
        log = step % config.log_every_steps == 0 or last
        save = step % config.checkpoint_every_steps == 0 or last or preempted
        if log or save:  # never save (or log) a state from a non-finite or exploded step
          pending = [{k: float(v) for k, v in m.items()} for m in jax.device_get(pending)]
          faults.check_finite(step - len(pending) + 1, pending, max_param_norm)
          unlogged, pending = unlogged + pending, []
        if log:
          values = {k: float(np.mean([m[k] for m in unlogged])) for k in unlogged[0]}
          values["steps_per_sec"] = _report_progress(step, config.num_train_steps, start_step,
                                                     t0, values["loss"])
          values.update(timer.window(), skipped_images=skipped)
          _warn_input_bound(timer, values["input_wait_fraction"], num_workers)
          writer.write(step, "train", values)
          unlogged, skipped = [], 0
        if step % config.eval_every_steps == 0 or last:
          means, (shown, predicted) = evaluate(
              eval_fn, state, eval_batches(config, dataset, eval_masks()), mesh)
          faults.check_finite(step, [means])
          writer.write(step, "eval", means)
          logging.info("eval at step %d: %s", step, json.dumps(means))
          if predicted is not None:
            writers.save_image_grid(os.path.join(workdir, "images", f"eval_{step:07d}.png"),
                                    [tasks.shown_input(shown, task)[:8], predicted[:8],
                                     tasks.unit_batch(shown)["image"][:8]])
        if save:
          checkpoint.save(mngr, step, state, {"metrics": unlogged, "skipped": skipped})
        if preempted:
          break
    except faults.NonFiniteError as error:
      raise _stopped(error, mngr) from None
  writer.close()
  if preempted:
    raise faults.Preempted(f"preempted: saved the checkpoint at step {step}; exiting cleanly "
                           "(the next run resumes there)")
  return state
