#!/usr/bin/env bash
# Issue 11's whole GPU measurement in one device call (about 5 minutes on one H100/H200, limit 8):
# one RL train step at Qwen3-4B and Qwen3-8B (18 layers) shapes, packed/padded x SDPA/DotProductAttention,
# then the CUDA-only tests of the attention and log-prob paths.
#
# megatron-core is not on the device machine; carry it as a wheel. Once, here, in the repository root:
#   echo /.whl/ >> "$(git rev-parse --git-dir)/info/exclude"
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 -d .whl megatron-core==0.16.1
# then: device run, carry [".whl"], command "bash benchmarks/gpu/policy_train_step.sh", timeout_s 540.
# Results: $OUT/policy_train_step.md (copy it to benchmarks/results/ with the device named) and $OUT/log.txt.
set -uo pipefail
out=${OUT:-/tmp}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 CUDA_DEVICE_MAX_CONNECTIONS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
timeout 400 python3 benchmarks/policy_train_step.py --shapes qwen3-4b qwen3-8b-18l --micro-batch-tokens 8192 \
    --sequences 48 --out "$out/policy_train_step.md" 2>&1 | grep -v -i warn | tee "$out/log.txt"
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/model/test_sdpa_attention.py tests/algo/test_algo_logprobs.py \
    -k "cuda or gpu or flash" 2>&1 | tail -5 | tee -a "$out/log.txt"
