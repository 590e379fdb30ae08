#!/usr/bin/env bash
# CI job: the CPU code (csrc/core, csrc/cpu) cross-compiled for aarch64 with Debian's
# g++-aarch64-linux-gnu, then the native attention and mask checks run under qemu-user against
# their float64 references (bench/native/). On arm64 the portable attention kernel runs: the AVX2
# one is compiled on x86 only.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq g++-aarch64-linux-gnu qemu-user >/dev/null
fi

out=build-arm64
mkdir -p "$out"
cxx="aarch64-linux-gnu-g++ -O2 -std=c++17 -pthread -Wall -Wextra -Werror -I csrc"
$cxx bench/native/attention_harness.cc csrc/cpu/attention.cc csrc/core/thread_pool.cc -o "$out/attention_harness" &
$cxx bench/native/mask_check.cc csrc/cpu/mask.cc csrc/cpu/pool.cc csrc/core/thread_pool.cc -o "$out/mask_check" &
wait -n && wait -n
# the whole CPU backend must build for aarch64 too (the N-API layer needs Node headers: not here)
for src in csrc/core/*.cc csrc/cpu/*.cc; do
  $cxx -c "$src" -o "$out/$(basename "$src").o"
done

# the AVX2 kernel is x86-only: nothing of it may reach the aarch64 objects
if aarch64-linux-gnu-nm -C "$out"/attention.cc.o | grep -q "avx2::"; then
  echo "arm64: AVX2 code compiled into the aarch64 attention.cc" >&2
  exit 1
fi

qemu="qemu-aarch64 -L /usr/aarch64-linux-gnu"
# two threads: the pool's chunking is exercised, and qemu stays within CI's two cores
export NABLA_NUM_THREADS=2
$qemu "$out/attention_harness" check
$qemu "$out/mask_check"
