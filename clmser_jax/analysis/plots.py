"""Figures of the gradient-flow study, drawn from the CSV rows of `study`."""
from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

from clmser_jax.analysis.gradient_terms import USES  # noqa: E402

LABELS = {"clmser": "CLmser", "clmser-w": "CLmser-w", "clmser-n": "CLmser-n", "cae": "CAE",
          "unet": "U-Net", "cnn": "CNN"}


def _select(rows, **where):
  return [r for r in rows if all(r[k] == v for k, v in where.items())]


def encoder_side(rows):
  """Rows of the kernel each layer's encoder reads: `W_k` (DCW) or `We_k`."""
  return [r for r in rows if r["param"] in ("W", "We")]


def _grid(activations, depths, title):
  fig, axes = plt.subplots(len(activations), len(depths), squeeze=False,
                           figsize=(max(3.2 * len(depths), 6.4), 2.6 * len(activations) + 0.6))
  fig.suptitle(title, fontsize=10)
  for i, act in enumerate(activations):
    for j, depth in enumerate(depths):
      axes[i][j].set_title(f"{act}, d={depth}", fontsize=9)
      axes[i][j].set_yscale("log")
      axes[i][j].xaxis.set_major_locator(ticker.MaxNLocator(nbins=6, integer=True))
  return fig, axes


def _legend(fig, axes):
  handles, labels = axes[0][0].get_legend_handles_labels()
  fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
  fig.tight_layout(rect=(0, 0.06, 1, 1))
  return fig


def init_norms(rows, kernel_init, activations, depths, variants):
  """||dJ/dW_k|| (encoder-side kernel) per layer at initialisation, one line per variant."""
  fig, axes = _grid(activations, depths,
                    f"gradient norm per layer at init (kernel_init={kernel_init})")
  for i, act in enumerate(activations):
    for j, depth in enumerate(depths):
      for v in variants:
        sel = encoder_side(_select(rows, kernel_init=kernel_init, activation=act,
                                   depth=depth, variant=v))
        axes[i][j].plot([r["layer"] for r in sel], [r["total"] for r in sel], "o-",
                        ms=3, label=LABELS[v])
      axes[i][j].set_xlabel("layer k", fontsize=8)
  return _legend(fig, axes)


def layer_shares(rows, depth):
  """`{layer: {use: share}}`: each use term's norm over the sum of all term norms of the
  layer's kernels (`W_k`, or `We_k` and `Wd_k`)."""
  shares = {}
  for k in range(1, depth + 1):
    norms = {u: sum(r[u] for r in rows if r["layer"] == k) for u in USES}
    total = sum(norms.values()) or 1.0
    shares[k] = {u: n / total for u, n in norms.items()}
  return shares


def term_shares(rows, kernel_init, activation, depth, variants):
  """Stacked bars: the share of each use term of Eq. 10-15 in every layer's gradient."""
  fig, axes = plt.subplots(1, len(variants), figsize=(3.2 * len(variants), 2.8), sharey=True)
  fig.suptitle(f"share of each gradient term (init, {activation}, d={depth}, "
               f"kernel_init={kernel_init})", fontsize=10)
  for ax, v in zip(axes, variants):
    shares = layer_shares(_select(rows, kernel_init=kernel_init, activation=activation,
                                  depth=depth, variant=v), depth)
    bottom = [0.0] * depth
    for use in USES:
      heights = [shares[k][use] for k in shares]
      ax.bar(list(shares), heights, bottom=bottom, label=use)
      bottom = [b + h for b, h in zip(bottom, heights)]
    ax.set_title(LABELS[v], fontsize=9)
    ax.set_xlabel("layer k", fontsize=8)
  return _legend(fig, [axes])


def moving_average(values, window: int) -> np.ndarray:
  """Means over `window` consecutive values (fewer at the start): one-batch losses are noisy."""
  sums = np.cumsum(np.concatenate([[0.0], values]))
  counts = np.minimum(np.arange(1, len(values) + 1), window)
  return (sums[1:] - sums[np.arange(len(values)) + 1 - counts]) / counts


def convergence(loss_rows, optimizer, activations, depths, variants, window=10):
  """Fig. 6: training loss (Eq. 1) against steps, one line per variant; faint the loss of
  each batch, solid its moving average over `window` steps."""
  fig, axes = _grid(activations, depths, f"training loss, {optimizer}")
  for i, act in enumerate(activations):
    for j, depth in enumerate(depths):
      for n, v in enumerate(variants):
        sel = _select(loss_rows, optimizer=optimizer, activation=act, depth=depth, variant=v)
        steps, losses = [r["step"] for r in sel], [r["loss"] for r in sel]
        axes[i][j].plot(steps, losses, lw=0.5, alpha=0.3, color=f"C{n}")
        axes[i][j].plot(steps, moving_average(losses, window), lw=1.2, color=f"C{n}",
                        label=LABELS[v])
      axes[i][j].set_xlabel("step", fontsize=8)
  return _legend(fig, axes)


def training_norms(norm_rows, optimizer, activations, depths, variants, layer=1):
  """||dJ/dW_layer|| (encoder-side kernel) against training steps, one line per variant."""
  fig, axes = _grid(activations, depths, f"gradient norm of layer {layer} along training, "
                    f"{optimizer}")
  for i, act in enumerate(activations):
    for j, depth in enumerate(depths):
      for v in variants:
        sel = encoder_side(_select(norm_rows, optimizer=optimizer, activation=act,
                                   depth=depth, variant=v, layer=layer))
        axes[i][j].plot([r["step"] for r in sel], [r["total"] for r in sel], "o-", ms=2,
                        label=LABELS[v])
      axes[i][j].set_xlabel("step", fontsize=8)
  return _legend(fig, axes)
