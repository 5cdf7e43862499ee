#!/usr/bin/env bash
# Train on this machine.
#   launch/local.sh --config=configs/default.py --workdir=DIR          one process (CPU or GPU)
#   launch/local.sh -n 4 --config=configs/default.py --workdir=DIR     4 CPU processes, one job
# With -n N > 1 the processes form one jax.distributed job over 127.0.0.1 (a free port), each
# holding 1/N of every batch: the multi-host code path, runnable on a laptop. If one process
# fails the others are stopped and its exit code is returned.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python}"
n=1
if [[ "${1:-}" == "-n" ]]; then
  n="$2"
  shift 2
fi
if [[ "$n" -le 1 ]]; then
  exec "$python" -m clmser_jax.main "$@"
fi

free_port='import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
port="$("$python" -c "$free_port")"
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap stop_all TERM INT
for ((i = 0; i < n; i++)); do
  JAX_PLATFORMS=cpu "$python" -m clmser_jax.main --coordinator_address="127.0.0.1:$port" \
      --num_processes="$n" --process_id="$i" "$@" &
  pids+=("$!")
done
status=0
for ((left = n; left > 0; left--)); do
  code=0
  wait -n || code=$?
  if [[ "$code" -ne 0 && "$status" -eq 0 ]]; then
    status="$code"
    echo "launch/local.sh: a process exited with code $code; stopping the others" >&2
    stop_all
  fi
done
exit "$status"
