#!/usr/bin/env bash
# MicroCoder-GRPO on Qwen3-32B across several nodes: a Ray head on the first node, Ray workers on the
# rest (each started with srun), then the driver on the first node, which places train ranks and
# engines through Ray. Everything is stopped on exit, on scancel and 5 minutes before the time limit
# (the driver gets SIGTERM first, to write a checkpoint; `--resume auto` continues from it next time).
#
#   sbatch examples/run_grpo_32b.sh
#   MODEL_DIR=/models/Qwen3-32B TRAIN_PROBLEMS=/data/train.jsonl sbatch --nodes=6 examples/run_grpo_32b.sh
#   sbatch examples/run_grpo_32b.sh --set train.lr=5e-7      # extra arguments go to mc-train
#
# Every path and size below comes from an environment variable with a default.
#SBATCH --job-name=mc-grpo-32b
#SBATCH --nodes=6
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=96
#SBATCH --mem=0
#SBATCH --exclusive
#SBATCH --time=72:00:00
#SBATCH --signal=B:TERM@300
#SBATCH --output=%x-%j.out

set -euo pipefail

REPO_DIR=${REPO_DIR:-${SLURM_SUBMIT_DIR:-$(pwd)}}
CONFIG=${CONFIG:-${REPO_DIR}/examples/configs/qwen3_32b_microcoder_grpo.yaml}
MODEL_DIR=${MODEL_DIR:-/models/Qwen3-32B}
TRAIN_PROBLEMS=${TRAIN_PROBLEMS:-/data/microcoder/train.jsonl}
EVAL_PROBLEMS=${EVAL_PROBLEMS:-/data/livecodebench/test6.jsonl}
RUN_DIR=${RUN_DIR:-${REPO_DIR}/runs/qwen3_32b_grpo_${SLURM_JOB_ID:-local}}
RESUME=${RESUME:-auto}
GPUS_PER_NODE=${GPUS_PER_NODE:-${SLURM_GPUS_ON_NODE:-8}}
RAY_NUM_GPUS=${RAY_NUM_GPUS:-${GPUS_PER_NODE}}           # 0 on a CPU-only machine
RAY_NUM_CPUS=${RAY_NUM_CPUS:-${SLURM_CPUS_PER_TASK:-32}}
ENGINE_GPUS=${ENGINE_GPUS:-16}                            # disaggregated configs only
RAY_PORT=${RAY_PORT:-6379}
RAY_TMP_DIR=${RAY_TMP_DIR:-/tmp/ray_${SLURM_JOB_ID:-$$}}  # short: Ray's socket paths have a length limit
RAY_START_TIMEOUT_S=${RAY_START_TIMEOUT_S:-300}
PYTHON=${PYTHON:-python3}
MC_TRAIN=${MC_TRAIN:-mc-train}
SRUN=${SRUN:-srun}

# Nodes of this allocation; the batch script itself runs on the first one.
if [[ -n ${SLURM_JOB_NODELIST:-} ]] && command -v scontrol >/dev/null 2>&1; then
  mapfile -t NODES < <(scontrol show hostnames "${SLURM_JOB_NODELIST}")
else
  NODES=("$(hostname)")
fi
NUM_NODES=${NUM_NODES:-${#NODES[@]}}
HEAD_NODE=${NODES[0]}

# The network that carries Ray, NCCL and gloo traffic: the default route's interface unless given.
NET_IF=${NET_IF:-$(ip -o -4 route show to default 2>/dev/null | awk '{print $5; exit}')}
NET_IF=${NET_IF:-lo}
HEAD_IP=${HEAD_IP:-$(ip -o -4 addr show dev "${NET_IF}" 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')}
HEAD_IP=${HEAD_IP:-$(hostname -I | awk '{print $1}')}
RAY_ADDRESS_HEAD="${HEAD_IP}:${RAY_PORT}"

export NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-${NET_IF}}
export GLOO_SOCKET_IFNAME=${GLOO_SOCKET_IFNAME:-${NET_IF}}
export NCCL_IB_HCA=${NCCL_IB_HCA:-}                      # e.g. mlx5 on InfiniBand clusters; empty: NCCL picks
export NCCL_DEBUG=${NCCL_DEBUG:-WARN}
export NCCL_CUMEM_ENABLE=${NCCL_CUMEM_ENABLE:-0}          # CUDA IPC weight sync to colocated engines needs it off
export TORCH_NCCL_AVOID_RECORD_STREAMS=${TORCH_NCCL_AVOID_RECORD_STREAMS:-1}
export CUDA_DEVICE_MAX_CONNECTIONS=${CUDA_DEVICE_MAX_CONNECTIONS:-1}  # Megatron's TP/SP comm overlap ordering
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled}
export RAY_DEDUP_LOGS=${RAY_DEDUP_LOGS:-0}
export RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=${RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S:-0}  # nothing to drain at exit
export PYTHONUNBUFFERED=1

RAY_PIDS=()
DRIVER_PID=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  echo "[run_grpo_32b] stopping (status ${status})"
  if [[ -n ${DRIVER_PID} ]] && kill -0 "${DRIVER_PID}" 2>/dev/null; then
    kill -TERM "${DRIVER_PID}" 2>/dev/null || true   # the driver checkpoints on SIGTERM before it exits
    wait "${DRIVER_PID}" 2>/dev/null || true
  fi
  # srun forwards SIGTERM to its task; `ray start --block` then stops the Ray processes of its node
  for pid in "${RAY_PIDS[@]}"; do
    kill -TERM "${pid}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  exit "${status}"
}
trap cleanup EXIT INT TERM

mkdir -p "${RUN_DIR}/logs"
echo "[run_grpo_32b] ${NUM_NODES} nodes (${NODES[*]:0:${NUM_NODES}}), head ${HEAD_NODE} at ${RAY_ADDRESS_HEAD} via ${NET_IF}"

"${SRUN}" --nodes=1 --ntasks=1 --overlap -w "${HEAD_NODE}" \
  ray start --head --block --node-ip-address="${HEAD_IP}" --port="${RAY_PORT}" \
  --num-gpus="${RAY_NUM_GPUS}" --num-cpus="${RAY_NUM_CPUS}" --include-dashboard=false \
  --temp-dir="${RAY_TMP_DIR}" >"${RUN_DIR}/logs/ray_head.log" 2>&1 &
RAY_PIDS+=("$!")

for node in "${NODES[@]:1:$((NUM_NODES - 1))}"; do
  "${SRUN}" --nodes=1 --ntasks=1 --overlap -w "${node}" \
    ray start --block --address="${RAY_ADDRESS_HEAD}" \
    --num-gpus="${RAY_NUM_GPUS}" --num-cpus="${RAY_NUM_CPUS}" >"${RUN_DIR}/logs/ray_worker_${node}.log" 2>&1 &
  RAY_PIDS+=("$!")
done

# Wait until every node has joined the cluster.
"${PYTHON}" - "${RAY_ADDRESS_HEAD}" "${NUM_NODES}" "${RAY_START_TIMEOUT_S}" <<'PY'
import sys
import time

import ray

address, want, timeout_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout_s
alive = 0
while time.monotonic() < deadline:
    try:
        ray.init(address=address, include_dashboard=False, logging_level="ERROR")
        alive = sum(1 for node in ray.nodes() if node["Alive"])
        ray.shutdown()
        if alive >= want:
            print(f"[run_grpo_32b] Ray cluster up: {alive} nodes")
            sys.exit(0)
    except (ConnectionError, RuntimeError):
        pass
    time.sleep(5)
sys.exit(f"[run_grpo_32b] only {alive} of {want} Ray nodes joined within {timeout_s:.0f} s; see the logs in RUN_DIR/logs")
PY

OVERRIDES=(
  --set "run_dir=${RUN_DIR}"
  --set "cluster.num_nodes=${NUM_NODES}"
  --set "cluster.gpus_per_node=${GPUS_PER_NODE}"
  --set "cluster.ray_address=${RAY_ADDRESS_HEAD}"
)
# The tiny CPU default builds its own model and tasks; real configs get them from the environment.
if ! grep -qE '^\s*source:\s*tiny_tasks' "${CONFIG}"; then
  OVERRIDES+=(--set "model.hf_dir=${MODEL_DIR}" --set "data.train_problems=${TRAIN_PROBLEMS}"
              --set "eval.problems_file=${EVAL_PROBLEMS}")
fi
if grep -qE '^\s*mode:\s*disaggregate' "${CONFIG}"; then
  OVERRIDES+=(--set "cluster.engine_gpus=${ENGINE_GPUS}")
fi

"${MC_TRAIN}" --config "${CONFIG}" "${OVERRIDES[@]}" --resume "${RESUME}" "$@" &
DRIVER_PID=$!
wait "${DRIVER_PID}"
