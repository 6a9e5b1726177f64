#!/usr/bin/env bash
# MicroCoder-GRPO on Qwen3-32B across several nodes: a Ray head on the first node, Ray workers on the
# rest (each started with srun), then the driver on the first node, which places train ranks and
# engines through Ray. Everything is stopped on exit, on scancel and 15 minutes before the time limit
# (the driver gets SIGTERM first, to write a checkpoint; `--resume auto` continues from it next time).
#
#   sbatch examples/run_grpo_32b.sh
#   MODEL_DIR=/models/Qwen3-32B TRAIN_PROBLEMS=/data/train.jsonl sbatch --nodes=6 examples/run_grpo_32b.sh
#   sbatch examples/run_grpo_32b.sh --set train.lr=5e-7      # extra arguments go to mc-train
#   REHEARSE=1 sbatch ...                                     # mc-train --rehearse on the started cluster
#
# Every path and size below comes from an environment variable with a default. Networking:
#   NET_IF             the interface that carries Ray, NCCL and gloo traffic (default: the default
#                      route's); set it where nodes have several (e.g. NET_IF=ib0, bond0). Each node
#                      takes its own address on NET_IF and gives it to `ray start --node-ip-address`.
#   NCCL_IB_HCA        InfiniBand/RoCE adapters for NCCL (e.g. mlx5); passed on when set.
#   NCCL_IB_GID_INDEX  RoCE clusters (e.g. H20): the GID index of the RoCE v2 address (often 3;
#                      `show_gids` lists them); without it NCCL picks a GID that does not route.
#
# The time-limit signal comes 15 minutes early: the driver finishes its current step, then writes a
# checkpoint; for 32B that is ~450 GB (bf16 weights, fp32 main weights and two Adam moments per
# parameter) written by every train rank to shared storage, minutes on its own, after a step that
# itself takes minutes. 300 s held neither; a stop that misses the limit loses every step since
# the last periodic checkpoint.
#SBATCH --job-name=mc-grpo-32b
#SBATCH --nodes=6
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=96
#SBATCH --mem=0
#SBATCH --exclusive
#SBATCH --time=72:00:00
#SBATCH --signal=B:TERM@900
#SBATCH --output=%x-%j.out

set -euo pipefail

REPO_DIR=${REPO_DIR:-${SLURM_SUBMIT_DIR:-$(pwd)}}
CONFIG=${CONFIG:-${REPO_DIR}/examples/configs/qwen3_32b_microcoder_grpo.yaml}
# set: replaces the config's model.hf_dir / data.train_problems / eval.problems_file; unset: the config's own
MODEL_DIR=${MODEL_DIR:-}
TRAIN_PROBLEMS=${TRAIN_PROBLEMS:-}
EVAL_PROBLEMS=${EVAL_PROBLEMS:-}
RUN_DIR=${RUN_DIR:-${REPO_DIR}/runs/qwen3_32b_grpo_${SLURM_JOB_ID:-local}}
RESUME=${RESUME:-auto}
REHEARSE=${REHEARSE:-0}                                   # 1: mc-train --rehearse
GPUS_PER_NODE=${GPUS_PER_NODE:-${SLURM_GPUS_ON_NODE:-8}}
ENGINE_GPUS=${ENGINE_GPUS:-}                              # set: replaces the config's cluster.engine_gpus
PYTHON=${PYTHON:-python3}
MC_TRAIN=${MC_TRAIN:-mc-train}
SRUN=${SRUN:-srun}
# Read on every node (srun steps get this environment), hence exported.
export RAY_NUM_GPUS=${RAY_NUM_GPUS:-${GPUS_PER_NODE}}     # 0 on a CPU-only machine
export RAY_NUM_CPUS=${RAY_NUM_CPUS:-${SLURM_CPUS_PER_TASK:-32}}
export RAY_PORT=${RAY_PORT:-6379}
export RAY_TMP_DIR=${RAY_TMP_DIR:-/tmp/ray_${SLURM_JOB_ID:-$$}}  # short: Ray's socket paths have a length limit
export RAY_START_TIMEOUT_S=${RAY_START_TIMEOUT_S:-300}
export OPEN_FILES_LIMIT=${OPEN_FILES_LIMIT:-65536}

# Nodes of this allocation; the batch script itself runs on the first one.
if [[ -n ${SLURM_JOB_NODELIST:-} ]] && command -v scontrol >/dev/null 2>&1; then
  mapfile -t NODES < <(scontrol show hostnames "${SLURM_JOB_NODELIST}")
else
  NODES=("$(hostname)")
fi
NUM_NODES=${NUM_NODES:-${#NODES[@]}}
HEAD_NODE=${NODES[0]}

# --- run on every node: the batch node and each srun step (passed as source text, `declare -f`) ---

# Ray keeps sockets and files open per worker, object and connection; the usual soft limit of 1024
# runs out on an 8-GPU node. Raised to OPEN_FILES_LIMIT, or to the node's hard limit if lower.
raise_open_files_limit() {
  local hard
  hard=$(ulimit -Hn)
  if [[ ${hard} == unlimited ]] || ((hard > OPEN_FILES_LIMIT)); then
    hard=${OPEN_FILES_LIMIT}
  fi
  if [[ $(ulimit -Sn) != unlimited ]] && (($(ulimit -Sn) < hard)); then
    ulimit -Sn "${hard}"
  fi
}

# This node's IPv4 address on NET_IF, found on the node itself.
node_ip() {
  local address
  address=$(ip -o -4 addr show dev "${NET_IF}" 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')
  if [[ -z ${address} ]]; then
    echo "[run_grpo_32b] $(hostname): no IPv4 address on NET_IF=${NET_IF}; set NET_IF to the interface" \
      "that carries cluster traffic (see: ip -o -4 addr)" >&2
    return 1
  fi
  echo "${address}"
}

# `ray start --block` for this node: the head, or a worker that first waits (up to RAY_START_TIMEOUT_S)
# for the head's GCS port to answer, since its srun starts at the same time as the head's.
start_ray_node() {
  set -euo pipefail
  local role=$1 address deadline
  raise_open_files_limit
  if [[ ${role} == head ]]; then
    exec ray start --head --block --node-ip-address="${HEAD_IP}" --port="${RAY_PORT}" \
      --num-gpus="${RAY_NUM_GPUS}" --num-cpus="${RAY_NUM_CPUS}" --include-dashboard=false \
      --temp-dir="${RAY_TMP_DIR}"
  fi
  address=$(node_ip)
  deadline=$((SECONDS + RAY_START_TIMEOUT_S))
  until timeout 5 bash -c "exec 3<>/dev/tcp/${HEAD_IP}/${RAY_PORT}" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "[run_grpo_32b] $(hostname): the Ray head ${HEAD_IP}:${RAY_PORT} did not answer within" \
        "${RAY_START_TIMEOUT_S} s" >&2
      return 1
    fi
    sleep 2
  done
  echo "[run_grpo_32b] $(hostname): joining ${HEAD_IP}:${RAY_PORT} as ${address}"
  exec ray start --block --address="${HEAD_IP}:${RAY_PORT}" --node-ip-address="${address}" \
    --num-gpus="${RAY_NUM_GPUS}" --num-cpus="${RAY_NUM_CPUS}" --temp-dir="${RAY_TMP_DIR}"
}
NODE_FUNCTIONS=$(declare -f raise_open_files_limit node_ip start_ray_node)

# --- the batch node ---

# The network that carries Ray, NCCL and gloo traffic: the default route's interface unless given.
NET_IF=${NET_IF:-$(ip -o -4 route show to default 2>/dev/null | awk '{print $5; exit}')}
export NET_IF=${NET_IF:-lo}
HEAD_IP=${HEAD_IP:-$(node_ip)}                             # the batch script runs on the head node
export HEAD_IP
RAY_ADDRESS_HEAD="${HEAD_IP}:${RAY_PORT}"

export NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-${NET_IF}}
export GLOO_SOCKET_IFNAME=${GLOO_SOCKET_IFNAME:-${NET_IF}}
for var in NCCL_IB_HCA NCCL_IB_GID_INDEX; do               # passed on only when set: empty is not "unset" to NCCL
  if [[ -n ${!var:-} ]]; then export "${var?}"; else unset "${var}"; fi
done
export NCCL_DEBUG=${NCCL_DEBUG:-WARN}
export NCCL_CUMEM_ENABLE=${NCCL_CUMEM_ENABLE:-0}          # CUDA IPC weight sync to colocated engines needs it off
export TORCH_NCCL_AVOID_RECORD_STREAMS=${TORCH_NCCL_AVOID_RECORD_STREAMS:-1}
# Megatron's TP/SP comm overlap ordering. Ray workers (the train actors) inherit the raylet's
# environment, which is this one: every srun step below is given it (--export=ALL) before `ray start`.
export CUDA_DEVICE_MAX_CONNECTIONS=${CUDA_DEVICE_MAX_CONNECTIONS:-1}
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled}
export RAY_DEDUP_LOGS=${RAY_DEDUP_LOGS:-0}
export RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=${RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S:-0}  # nothing to drain at exit
export PYTHONUNBUFFERED=1
raise_open_files_limit                                     # the driver's connections to engines and judges

RAY_PIDS=()    # one srun per node, in NODES order
RAY_LOGS=()
READY_PID=""
DRIVER_PID=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  echo "[run_grpo_32b] stopping (status ${status})"
  if [[ -n ${DRIVER_PID} ]] && kill -0 "${DRIVER_PID}" 2>/dev/null; then
    kill -TERM "${DRIVER_PID}" 2>/dev/null || true   # the driver checkpoints on SIGTERM before it exits
    wait "${DRIVER_PID}" 2>/dev/null || true
  fi
  if [[ -n ${READY_PID} ]]; then
    kill -TERM "${READY_PID}" 2>/dev/null || true
  fi
  # srun forwards SIGTERM to its task; `ray start --block` then stops the Ray processes of its node
  for pid in "${RAY_PIDS[@]}"; do
    kill -TERM "${pid}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  exit "${status}"
}
trap cleanup EXIT INT TERM

# One srun step per node, holding all of the node's CPUs and GPUs (srun does not inherit the job's
# --cpus-per-task since Slurm 22.05, and a step without GPUs sees none); --overlap: the steps share
# the allocation with the batch step, which runs the driver on the first node.
STEP_ARGS=(--nodes=1 --ntasks=1 --overlap --export=ALL --cpus-per-task="${RAY_NUM_CPUS}")
if ((RAY_NUM_GPUS > 0)); then
  STEP_ARGS+=(--gpus-per-node="${RAY_NUM_GPUS}")
fi
start_on_node() {
  local node=$1 role=$2 log=$3
  "${SRUN}" "${STEP_ARGS[@]}" -w "${node}" bash -c "${NODE_FUNCTIONS}"$'\n'"start_ray_node ${role}" >"${log}" 2>&1 &
  RAY_PIDS+=("$!")
  RAY_LOGS+=("${log}")
}

mkdir -p "${RUN_DIR}/logs"
echo "[run_grpo_32b] ${NUM_NODES} nodes (${NODES[*]:0:${NUM_NODES}}), head ${HEAD_NODE} at ${RAY_ADDRESS_HEAD} via ${NET_IF}"
start_on_node "${HEAD_NODE}" head "${RUN_DIR}/logs/ray_head.log"
for node in "${NODES[@]:1:$((NUM_NODES - 1))}"; do
  start_on_node "${node}" worker "${RUN_DIR}/logs/ray_worker_${node}.log"
done

# Wait until every node is alive with its GPUs; an srun that exits first fails the job at once.
"${PYTHON}" - "${RAY_ADDRESS_HEAD}" "${NUM_NODES}" "$((NUM_NODES * RAY_NUM_GPUS))" "${RAY_START_TIMEOUT_S}" \
  <<'PY' &
import socket
import sys
import time

import ray

address, want_nodes, want_gpus, timeout_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
host, port = address.rsplit(":", 1)
deadline = time.monotonic() + timeout_s
seen = f"the head's GCS at {address} did not answer"
while time.monotonic() < deadline:  # ray.init blocks for minutes on a port nobody listens on
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        break
    except OSError:
        time.sleep(1)
else:
    sys.exit(f"[run_grpo_32b] Ray cluster not up within {timeout_s:.0f} s: {seen}; see RUN_DIR/logs")
ray.init(address=address, include_dashboard=False, logging_level="ERROR")
while time.monotonic() < deadline:
    alive = [node for node in ray.nodes() if node["Alive"]]
    gpus = sum(node["Resources"].get("GPU", 0) for node in alive)
    addresses = ", ".join(sorted(node["NodeManagerAddress"] for node in alive))
    seen = f"{len(alive)} of {want_nodes} nodes alive ({addresses}), {gpus:g} of {want_gpus} GPUs"
    if len(alive) >= want_nodes and gpus >= want_gpus:
        print(f"[run_grpo_32b] Ray cluster up: {len(alive)} nodes, {gpus:g} GPUs ({addresses})")
        sys.exit(0)
    time.sleep(1)
sys.exit(f"[run_grpo_32b] Ray cluster not up within {timeout_s:.0f} s: {seen}; see RUN_DIR/logs")
PY
READY_PID=$!
fail_if_a_node_stopped() {
  local i status
  for i in "${!RAY_PIDS[@]}"; do
    if ! kill -0 "${RAY_PIDS[i]}" 2>/dev/null; then
      status=0
      wait "${RAY_PIDS[i]}" || status=$?
      echo "[run_grpo_32b] the Ray srun on node ${NODES[i]} exited (status ${status}) before the cluster" \
        "was up; last lines of ${RAY_LOGS[i]}:" >&2
      tail -n 20 "${RAY_LOGS[i]}" >&2
      exit 1
    fi
  done
}
while kill -0 "${READY_PID}" 2>/dev/null; do
  fail_if_a_node_stopped
  sleep 1
done
wait "${READY_PID}" || { fail_if_a_node_stopped; exit 1; }
READY_PID=""

OVERRIDES=(
  --set "run_dir=${RUN_DIR}"
  --set "cluster.num_nodes=${NUM_NODES}"
  --set "cluster.gpus_per_node=${GPUS_PER_NODE}"
  --set "cluster.ray_address=${RAY_ADDRESS_HEAD}"
)
for pair in "model.hf_dir=${MODEL_DIR}" "data.train_problems=${TRAIN_PROBLEMS}" \
            "eval.problems_file=${EVAL_PROBLEMS}" "cluster.engine_gpus=${ENGINE_GPUS}"; do
  if [[ -n ${pair#*=} ]]; then
    OVERRIDES+=(--set "${pair}")
  fi
done
FLAGS=(--resume "${RESUME}")
if [[ ${REHEARSE} == 1 ]]; then
  FLAGS+=(--rehearse)
fi

"${MC_TRAIN}" --config "${CONFIG}" "${OVERRIDES[@]}" "${FLAGS[@]}" "$@" &
DRIVER_PID=$!
wait "${DRIVER_PID}"
