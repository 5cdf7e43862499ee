"""pytorch-fid's Inception state_dict -> the local weights file of `fid.weights`.

  python -m clmser_jax.fid.convert --pth pt_inception-2015-12-05-6726825d.pth --out FILE.npz

Module names are shared (see `fid.inception`), so only the leaves change: a conv weight OIHW
becomes an HWIO `kernel`, BatchNorm `weight`/`bias` become `scale`/`bias` params and the
running statistics `mean`/`var` batch stats. The 1008-way `fc` classifier and the
`num_batches_tracked` counters are not part of pool3 and are dropped. Needs PyTorch (CPU)
once, here only.
"""
from __future__ import annotations

import argparse
import pathlib

import numpy as np

from clmser_jax.fid import weights

_LEAVES = {  # PyTorch leaf -> (Flax collection, Flax leaf)
    "conv.weight": ("params", "conv/kernel"),
    "bn.weight": ("params", "bn/scale"),
    "bn.bias": ("params", "bn/bias"),
    "bn.running_mean": ("batch_stats", "bn/mean"),
    "bn.running_var": ("batch_stats", "bn/var"),
}


def _dropped(torch_key: str) -> bool:
  """The 1008-way classifier and BatchNorm's step counters: not part of pool3."""
  return torch_key.startswith("fc.") or torch_key.endswith(".num_batches_tracked")


def flax_key(torch_key: str) -> str:
  """`Mixed_5b.branch1x1.conv.weight` -> `params/Mixed_5b/branch1x1/conv/kernel`."""
  for leaf, (collection, flax_leaf) in _LEAVES.items():
    if torch_key.endswith("." + leaf):
      module = torch_key[:-len(leaf) - 1].replace(".", "/")
      return f"{collection}/{module}/{flax_leaf}"
  raise ValueError(f"unexpected key {torch_key!r} in the Inception state_dict")


def convert_state_dict(state_dict) -> dict[str, np.ndarray]:
  """Flat Flax variables of a pytorch-fid `FIDInceptionV3` state_dict (arrays or tensors)."""
  flat = {}
  for key, value in state_dict.items():
    if _dropped(key):
      continue
    value = np.asarray(value, np.float32)
    flat[flax_key(key)] = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value
  return flat


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(prog="python -m clmser_jax.fid.convert",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("--pth", required=True, help=f"pytorch-fid's {weights.PTH_NAME}")
  parser.add_argument("--out", required=True, help="the .npz to write")
  args = parser.parse_args(argv)
  if not pathlib.Path(args.pth).is_file():
    parser.error(f"no file {args.pth}: download it from {weights.PTH_URL}")
  import torch  # only the conversion needs PyTorch
  state_dict = torch.load(args.pth, map_location="cpu", weights_only=True)
  weights.save_variables(args.out, convert_state_dict(state_dict))
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
