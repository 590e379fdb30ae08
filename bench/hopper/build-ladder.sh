#!/usr/bin/env bash
# Builds the ladder's rung binary, bench/hopper/build/hopper-ladder, for sm_90a (needs nvcc; the GPU
# machine does not: build here and carry bench/hopper/build along). Barrier waits trap after one
# second of waiting (NABLA_HOPPER_SPIN_LIMIT_NS, measured on %globaltimer): a wrong phase is an
# error, not a hang. Usage: build-ladder.sh [OUTPUT [NVCC ARGS...]] (test/hopper.test.ts adds
# -Xptxas=-v to check that no rung kernel gets a ptxas performance info).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p bench/hopper/build
nvcc -std=c++17 -O2 --expt-relaxed-constexpr -arch=sm_90a -Werror=all-warnings \
  -DNABLA_HOPPER_SPIN_LIMIT_NS=1000000000ULL -DNABLA_CUDA_ARCHS='"90a-real"' \
  bench/hopper/ladder.cu csrc/cuda/hopper/tensor_map.cu csrc/cuda/device.cu \
  -o "${1:-bench/hopper/build/hopper-ladder}" "${@:2}"
