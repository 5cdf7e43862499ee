#!/usr/bin/env bash
# Train on this machine (CPU or one GPU): launch/local.sh --config=configs/default.py --workdir=DIR
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m clmser_jax.main "$@"
