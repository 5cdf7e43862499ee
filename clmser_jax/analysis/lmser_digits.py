"""The classic Lmser on the 8x8 digits: learning curves of the two learning rules (autodiff
through the perception vs Eq. 2) and the learned rows of `W_1` as images, the feature
detectors of Xu (1993).

  python -m clmser_jax.analysis.lmser_digits --config=configs/lmser_digits.py --workdir=DIR
"""
from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from sklearn.datasets import load_digits

from clmser_jax.analysis import cli
from clmser_jax.models import lmser_fc as lmser

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RULES = {"autodiff": lmser.exact_update, "eq2": lmser.eq2_update}


def digits() -> np.ndarray:
  """The 1797 digits as `(1797, 64)` float32 in [0, 1]."""
  return np.asarray(load_digits().data / 16.0, np.float32)


def learn(config, x: np.ndarray, hidden, rule: str):
  """Plain steps `W_k += lr * update_k` on random mini-batches; returns the parameters and
  the full-data loss (Eq. 1) every `config.log_every` steps."""
  update = RULES[rule]
  step = jax.jit(lambda p, b: [w + config.learning_rate * d
                               for w, d in zip(p, update(p, b, config.relaxations))])
  full_loss = jax.jit(lambda p: lmser.loss(p, jnp.asarray(x), config.relaxations))
  params = lmser.init_params(jax.random.key(config.seed), (x.shape[1], *hidden),
                            config.init_scale)
  rng = np.random.default_rng(config.seed)
  curve = []
  for t in range(config.num_steps + 1):
    if t % config.log_every == 0:
      curve.append((t, float(full_loss(params))))
    params = step(params, jnp.asarray(x[rng.integers(len(x), size=config.batch_size)]))
  return params, curve


def feature_grid(w1: np.ndarray, ax) -> None:
  """Rows of `W_1` as 8x8 images, each scaled to its own range."""
  n = w1.shape[0]
  cols = int(np.ceil(np.sqrt(n)))
  rows = int(np.ceil(n / cols))
  grid = np.ones((rows * 9 + 1, cols * 9 + 1))
  for i, w in enumerate(w1):
    r, c = divmod(i, cols)
    tile = (w - w.min()) / (np.ptp(w) + 1e-12)
    grid[1 + 9 * r:9 * r + 9, 1 + 9 * c:9 * c + 9] = tile.reshape(8, 8)
  ax.imshow(grid, cmap="gray", interpolation="nearest")
  ax.axis("off")


def run(config, workdir: str) -> None:
  """Learns every network of `config.networks` with both rules; writes the pictures and the
  loss curves to `workdir`."""
  out = pathlib.Path(workdir)
  out.mkdir(parents=True, exist_ok=True)
  x = digits()
  results = {(net, rule): learn(config, x, hidden, rule)
             for net, hidden in config.networks.items() for rule in RULES}
  fig, axes = plt.subplots(1, len(results), figsize=(3.5 * len(results), 3.8))
  for ax, ((net, rule), (params, _)) in zip(axes, results.items()):
    feature_grid(np.asarray(params[0]), ax)
    ax.set_title(f"{net}, {rule}", fontsize=9)
  fig.suptitle("rows of W_1 (feature detectors)", fontsize=10)
  fig.savefig(out / "lmser_features.png", dpi=80)
  fig, ax = plt.subplots(figsize=(4.5, 3.2))
  for (net, rule), (_, curve) in results.items():
    ax.plot(*zip(*curve), label=f"{net}, {rule}")
  ax.set(xlabel="step", ylabel="J (Eq. 1)", yscale="log", title="classic Lmser on digits")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(out / "lmser_loss.png", dpi=80)
  (out / "lmser_digits.json").write_text(json.dumps(
      {f"{net}/{rule}": curve for (net, rule), (_, curve) in results.items()}, indent=1))
  plt.close("all")


if __name__ == "__main__":
  cli.run_with_config("clmser_jax.analysis.lmser_digits", run, "configs/lmser_digits.py")
