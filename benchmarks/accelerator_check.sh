#!/usr/bin/env bash
# The checks that matter on a new backend, in one prepared run that fits a lent GPU's few
# minutes (at most 8 on one H100/H200), every output under $OUT (default accelerator_out/):
#
#   env.txt, versions.txt    nvidia-smi, jax's devices, the libraries' versions
#   tests.log, tests.xml     on the accelerator: the adjoint identity (both formulations), the
#                            scan against the equations, parity with the authors' PyTorch
#                            network (PyTorch on CUDA, TF32 off on both sides), bfloat16
#                            against float32, bit-exact resume
#   benchmark.md, .log       benchmarks/run.py --plan gpu: the official network against
#                            PyTorch eager on the same GPU (train step, inference at batch 1
#                            and 256, float32 and bfloat16 with its accuracy), the roofline,
#                            the paper CLmser at r = 1 and 4, and both formulations of `ops`
#   train.log, metrics.jsonl a 2-minute run of configs/celeba.py from a prepared copy of a
#   train_summary.txt        generated image folder: images/s and the input wait
#   steps.log, status.txt    when each step ran and how it ended
#
#   benchmarks/accelerator_wheels.sh    # beforehand, where pip reaches PyPI: fills .whl/
#   benchmarks/accelerator_check.sh     # on the GPU machine, from the repository root
#   benchmarks/accelerator_check.sh --smoke   # the same on a CPU at toy sizes (a test)
#
# Each step has its own time limit, so one that hangs or fails costs only its share and the
# others still run; the script exits 1 when a step failed. The project is installed without
# its dependencies (the machine's jax stays) from .whl/ where that folder exists; otherwise
# the tree is used as it is (PYTHONPATH).
set -uo pipefail
cd "$(dirname "$0")/.."
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1
OUT="${OUT:-accelerator_out}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
: > "$OUT/status.txt"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Parity and accuracy checks compare float32 to float32: no TF32 in cuBLAS/cuDNN or in XLA.
export NVIDIA_TF32_OVERRIDE=0 JAX_DEFAULT_MATMUL_PRECISION=highest

if ((SMOKE)); then
  TESTS=(tests/test_ops.py::test_adjoint_identity "tests/test_train.py::test_resume_is_bit_exact[clmser]")
  BENCH=(--plan smoke --size 64 --compiles 1 --dtype float32 bfloat16 --peak_tflops 1
         --peak_gbps 10)
  IMAGES=24; IMAGE_SIDE=96; TRAIN_SECONDS=30
  TRAIN=(--config=configs/celeba.py:clmser,tiny --config.num_train_steps=100000
         --config.log_every_steps=2 --config.eval_every_steps=100000
         --config.checkpoint_every_steps=100000)
  LIMITS=(400 600 300)  # generous: a loaded CPU, not a budget
else
  TESTS=(tests/test_ops.py tests/test_reflections.py tests/test_official.py
         tests/test_precision.py tests/test_train.py::test_resume_is_bit_exact
         -k "not command_line")
  BENCH=(--plan gpu --dtype float32 bfloat16 --large_batch 256)
  IMAGES=2000; IMAGE_SIDE=512; TRAIN_SECONDS=120
  TRAIN=(--config=configs/celeba.py --config.num_train_steps=1000000
         --config.log_every_steps=50 --config.eval_every_steps=1000000
         --config.checkpoint_every_steps=1000000)
  LIMITS=(150 210 170)
fi

log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/steps.log"; }
# step NAME SECONDS COMMAND...: runs COMMAND with its output in $OUT/NAME.log.
step() {
  local name=$1 limit=$2
  shift 2
  log "start $name (limit ${limit}s)"
  timeout --signal=TERM --kill-after=15 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  log "end $name: exit $rc"
  echo "$name $rc" >> "$OUT/status.txt"
}

log "accelerator check, smoke=$SMOKE, out=$OUT"
{ nvidia-smi || echo "nvidia-smi: not found (no NVIDIA GPU here)"; } > "$OUT/env.txt" 2>&1
if [[ -d .whl ]]; then
  step install 120 "$PYTHON" -m pip install --no-index --find-links .whl --no-deps \
    dm-pix ml-collections tensorboardX grain array-record tqdm cloudpickle portpicker chex toolz
fi
"$PYTHON" - > "$OUT/versions.txt" 2>&1 <<'PY'
import importlib, platform
import jax
print("python", platform.python_version(), "| jax devices:", jax.devices())
for name in ("jax", "jaxlib", "flax", "optax", "orbax.checkpoint", "grain", "numpy", "torch"):
  try:
    print(name, importlib.import_module(name).__version__)
  except Exception as error:  # pylint: disable=broad-except
    print(name, "unavailable:", error)
PY

step tests "${LIMITS[0]}" "$PYTHON" -m pytest -x -q -p no:cacheprovider \
  --junitxml="$OUT/tests.xml" "${TESTS[@]}"

step benchmark "${LIMITS[1]}" "$PYTHON" -m benchmarks.run "${BENCH[@]}" --out "$OUT/benchmark.md"

DATA="$OUT/data"
rm -rf "$DATA" "$OUT/train_run"
step prepare 90 bash -c "'$PYTHON' -m benchmarks.image_folder --out='$DATA/jpeg' \
  --count=$IMAGES --size=$IMAGE_SIDE && '$PYTHON' -m clmser_jax.data.prepare \
  --dataset=folder:$DATA/jpeg --image_size=256 --out=$DATA/records"
# SIGTERM after TRAIN_SECONDS is a preemption notice: the run saves and exits 0.
step train "${LIMITS[2]}" timeout --preserve-status --signal=TERM "$TRAIN_SECONDS" \
  "$PYTHON" -m clmser_jax.main \
  --workdir="$OUT/train_run" "${TRAIN[@]}" --config.dataset="records:$DATA/records"
cp "$OUT/train_run/metrics.jsonl" "$OUT/metrics.jsonl" 2>/dev/null
"$PYTHON" - "$OUT/metrics.jsonl" > "$OUT/train_summary.txt" 2>&1 <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train"' in l]
steady = rows[1:] or rows  # the first row holds the compile and the workers' start
rate = sum(r["images_per_sec"] for r in steady) / len(steady)
wait = sum(r["input_wait_fraction"] for r in steady) / len(steady)
epochs = 20 * 27000  # the paper's CelebA-HQ schedule: 20 epochs of 27,000 images
print(f"train rows {len(rows)}, last step {rows[-1]['step']}: {rate:.1f} images/s, "
      f"input_wait_fraction {wait:.3f} (mean of rows 2-{len(rows)}); the paper's schedule "
      f"({epochs} images) would take {epochs / rate / 60:.1f} min at this rate (target 2)")
PY
cat "$OUT/train_summary.txt" | tee -a "$OUT/steps.log"
if grep -qv " 0$" "$OUT/status.txt"; then
  log "a step failed: $(grep -v ' 0$' "$OUT/status.txt" | tr '\n' ' ')"
  exit 1
fi
log "all steps passed"
