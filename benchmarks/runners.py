"""One timed unit of work per framework: a train step (updates included) or an inference
batch, each a no-argument callable that blocks until done, built with its compile time and
memory figures. PyTorch runs on CUDA when it has it, on the CPU otherwise, and in bfloat16
under `torch.autocast` (its mixed precision) where the JAX network runs in bfloat16."""
from __future__ import annotations

import contextlib
import functools
import statistics
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import measure
from clmser_jax import ops, tasks, train

COMPILES = 3  # compile time: the median of this many compilations


def trainer_jit(fn, **kwargs):
  """`jax.jit` as the trainer compiles its steps: with the formulation's compiler options."""
  return jax.jit(fn, compiler_options=ops.compiler_options(), **kwargs)


def compile_timed(lower: Callable[[], jax.stages.Lowered]):
  """`(compiled, seconds)`: the median time of `COMPILES` compilations of a fresh `lower()`,
  each after `jax.clear_caches()` (a second compilation would otherwise be a cache hit);
  single timings scatter by 2x on a shared machine. Tracing and lowering are not timed."""
  runs = []
  for _ in range(COMPILES):
    jax.clear_caches()
    runs.append(measure.seconds(lower().compile))
  return runs[-1][0], statistics.median(t for _, t in runs)


def jax_train(model, variables, images: np.ndarray, task, tx: optax.GradientTransformation,
              jit=trainer_jit):
  """`(step, compile_s, xla_mib)`: `train.train_step` jitted (by `jit`) with the state donated,
  as the trainer runs it."""
  state = train.state_from_variables(model, tx, jax.tree.map(jnp.copy, variables))
  batch = {"image": jnp.asarray(images)}
  step_fn = functools.partial(train.train_step, task=task)
  compiled, compile_s = compile_timed(
      lambda: jit(step_fn, donate_argnums=0).lower(state, batch))
  cell = [state]

  def step():
    cell[0], metrics = compiled(cell[0], batch)
    jax.block_until_ready(metrics)

  return step, compile_s, measure.xla_memory_mib(compiled)


def jax_infer(model, variables, images: np.ndarray, task, jit=trainer_jit):
  """`(run, compile_s, xla_mib)`: one forward pass in evaluation mode, jitted by `jit`."""
  x = jnp.asarray(tasks.model_input({"image": images}, task))
  compiled, compile_s = compile_timed(lambda: jit(model.apply).lower(variables, x))
  run = lambda: jax.block_until_ready(compiled(variables, x))
  return run, compile_s, measure.xla_memory_mib(compiled)


def torch_device():
  import torch
  return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def nchw(images: np.ndarray, task):
  """The images as the torch network's input: NCHW, in the task's pixel range, on
  `torch_device()`."""
  import torch
  return torch.from_numpy(np.ascontiguousarray(
      np.transpose(np.asarray(tasks.to_model_range(images, task)), (0, 3, 1, 2)))).to(
          torch_device())


def torch_precision(dtype: str):
  """PyTorch's counterpart of a JAX compute `dtype`: `torch.autocast` to bfloat16 (float32
  parameters, BatchNorm in float32), or plain float32."""
  import torch
  if dtype == "float32":
    return contextlib.nullcontext()
  return torch.autocast(torch_device().type, dtype=torch.bfloat16)


def _torch_sync():
  import torch
  if torch_device().type == "cuda":
    torch.cuda.synchronize()


def torch_train(generator, images: np.ndarray, task, dtype: str = "float32"):
  """One step of their trainer on the reconstruction loss: MSE, Adam with AMSGrad, lr 1e-3."""
  import torch
  x = nchw(images, task)
  generator.to(x.device)
  opt = torch.optim.Adam(generator.parameters(), lr=1e-3, amsgrad=True)

  def step():
    generator.train()
    opt.zero_grad()
    with torch_precision(dtype):
      loss = torch.nn.functional.mse_loss(generator(x).float(), x)
    loss.backward()
    opt.step()
    _torch_sync()

  return step


def torch_infer(generator, images: np.ndarray, task, dtype: str = "float32"):
  """One forward pass in evaluation mode, without autograd."""
  import torch
  x = nchw(images, task)
  generator.to(x.device)

  def run():
    generator.eval()
    with torch.no_grad(), torch_precision(dtype):
      generator(x)
    _torch_sync()

  return run


def loss_and_grads(model, variables, images: np.ndarray, task):
  """The task loss in training mode and its parameter gradients (one `train_step`'s)."""
  def loss_fn(params):
    output, _ = model.apply({**variables, "params": params}, tasks.model_input(
        {"image": images}, task), train=True, mutable=["batch_stats"])
    return tasks.loss(output, {"image": images}, task)
  return jax.jit(jax.value_and_grad(loss_fn))(variables["params"])


def relative_difference(a, b) -> float:
  """The largest `|a - b| / |b|` (Frobenius norms) over the leaves of two pytrees."""
  return max(float(jnp.linalg.norm(x - y) / jnp.maximum(jnp.linalg.norm(y), 1e-30))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def cosine(a, b) -> float:
  """The cosine between two pytrees, each flattened into one vector."""
  a, b = (jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for x in jax.tree.leaves(t)])
          for t in (a, b))
  return float(jnp.vdot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b)))
