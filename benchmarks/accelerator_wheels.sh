#!/usr/bin/env bash
# The wheels that a lent GPU machine lacks, downloaded here into .whl/ (git ignores it; the
# device tool carries it with the tree: `carry: [".whl"]`). That machine is offline and has
# jax (CUDA), flax, optax, orbax, PyTorch and pytest, so this is the rest of what
# `benchmarks/accelerator_check.sh` imports, without their dependencies (those come with jax
# and orbax), for the CPython versions a machine may have.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir .whl
PACKAGES=(dm-pix ml-collections tensorboardX grain array-record tqdm cloudpickle portpicker
          chex toolz)
for version in 3.10 3.11 3.12 3.13; do
  python3 -m pip download --quiet --dest .whl --only-binary=:all: --no-deps \
    --python-version "$version" --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_28_x86_64 "${PACKAGES[@]}"
done
du -sh .whl
