#!/usr/bin/env bash
# Train on a Cloud TPU VM pod slice: every worker runs the same command and JAX's cluster
# detection (--multihost) finds the coordinator, the process count and this worker's id.
#
#   export TPU_NAME=clmser ZONE=us-central2-b ACCELERATOR=v4-32   # RUNTIME, PROJECT optional
#   launch/tpu_pod.sh create                  # the slice
#   launch/tpu_pod.sh setup                   # copy this repository to every worker, install
#   launch/tpu_pod.sh train --config=configs/default.py:clmser --workdir=/mnt/shared/run1
#   launch/tpu_pod.sh delete
#
# --workdir must be one folder that every worker sees (Filestore/NFS or a gcsfuse mount):
# orbax writes each checkpoint collectively into it. Run `train` again after a preemption or
# a crash: it resumes from the last checkpoint there.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}"
gcloud_tpu=(gcloud compute tpus tpu-vm)
where=("$TPU_NAME" "--zone=$ZONE" ${PROJECT:+"--project=$PROJECT"})
on_all_workers() {
  "${gcloud_tpu[@]}" ssh "${where[@]}" --worker=all --command="$1"
}

command="${1:?usage: launch/tpu_pod.sh create|setup|train FLAGS...|delete}"
shift
case "$command" in
  create)
    "${gcloud_tpu[@]}" create "${where[@]}" --accelerator-type="${ACCELERATOR:?set ACCELERATOR}" \
        --version="${RUNTIME:-tpu-ubuntu2204-base}"
    ;;
  setup)
    "${gcloud_tpu[@]}" scp "${where[@]}" --worker=all --recurse . "$TPU_NAME:~/clmser-jax"
    on_all_workers "pip install -U 'jax[tpu]' && pip install -e ~/clmser-jax"
    ;;
  train)
    on_all_workers "cd ~/clmser-jax && python3 -m clmser_jax.main --multihost $(printf '%q ' "$@")"
    ;;
  delete)
    "${gcloud_tpu[@]}" delete "${where[@]}" --quiet
    ;;
  *)
    echo "launch/tpu_pod.sh: unknown command $command (create, setup, train, delete)" >&2
    exit 2
    ;;
esac
