#!/usr/bin/env bash
# One script for a machine with a GPU: the jest CUDA suite (where node_modules is there),
# correctness + timings (gpu-check), PyTorch comparison (compare_torch.py), then compute-sanitizer
# memcheck on tiny shapes. Each step has its own time
# limit and a failing step does not stop the later ones; logs go under $OUT; a short summary table
# is printed last. Exit status: 0 when every step succeeded.
#
# How to run it: build here with the CUDA backend for Hopper (sm_90a or 90-real in the arch list;
# check with: node -e "console.log(require('./dist').backends().build)") and `npm run build:ts`,
# copy build/Release, dist and bench to the GPU machine, which needs only node on PATH (the jest
# step also needs the checkout's lib, test, scripts, configs and node_modules, and npm), and run
# `bash bench/gpu-run.sh` there. Results go under $OUT: jest-cuda.log, gpu-check/{gpu-check.md,
# gpu-check.json,meta.json,compare_torch.md}, gpu-check.log, compare_torch.log, sanitizer.log,
# summary.md. The large .npy inputs stay in $NABLA_GPU_DATA so that $OUT stays small.
#
# Knobs (environment): T_JEST, T_CHECK, T_TORCH, T_SAN (seconds per step; default 150, 240, 180, 90),
# GPU_CHECK_ARGS (extra gpu-check arguments, e.g. "--quick" or "--no-720p"),
# NABLA_GPU_DATA (where the .npy files go; default ${TMPDIR:-/tmp}/nabla-gpu-data).
set -uo pipefail
cd "$(dirname "$0")/.."

OUT="${OUT:-${TMPDIR:-/tmp}/nabla-gpu-run}"
DATA="${NABLA_GPU_DATA:-${TMPDIR:-/tmp}/nabla-gpu-data}"
T_JEST="${T_JEST:-150}"
T_CHECK="${T_CHECK:-240}"
T_TORCH="${T_TORCH:-180}"
T_SAN="${T_SAN:-90}"
mkdir -p "$OUT/gpu-check" "$DATA"

names=()
results=()
notes=()

# step NAME LIMIT LOG CMD...: runs CMD under `timeout`, output to the terminal and $OUT/LOG.
step() {
  local name=$1 limit=$2 log=$3
  shift 3
  echo
  echo "=== $name (limit ${limit}s): $*"
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$log"
  local rc=${PIPESTATUS[0]}
  local took=$((SECONDS - start))
  local verdict=ok
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then verdict="TIMEOUT"
  elif [ "$rc" -ne 0 ]; then verdict="FAIL"
  fi
  names+=("$name")
  results+=("$verdict (rc $rc, ${took}s)")
  echo "=== $name: $verdict (rc $rc) in ${took}s"
}

echo "gpu-run: $(date -u +%FT%TZ) in $(pwd); OUT=$OUT DATA=$DATA"
command -v node >/dev/null || echo "gpu-run: node is not on PATH"

# 0. the jest CUDA suite with a CUDA device required, and the suite of the oracle it shares with gpu-check
#    (needs node_modules with jest, ts-jest and typescript, and npm: jest's global setup runs build:ts)
JEST=node_modules/jest/bin/jest.js
if [ -f "$JEST" ]; then
  step "jest-cuda" "$T_JEST" jest-cuda.log env NABLA_REQUIRE_CUDA=1 node "$JEST" test/cuda.test.ts test/cuda-memory.test.ts test/oracle.test.ts
  notes+=("jest-cuda: $(grep -m1 -E '^Tests:' "$OUT/jest-cuda.log" || echo 'no Tests: line')")
else
  names+=("jest-cuda")
  results+=("SKIPPED (no node_modules/jest: copy node_modules to run the jest CUDA suite)")
fi

# 1. correctness + timings, exports q/k/v/masks for step 2
# shellcheck disable=SC2086
step "gpu-check" "$T_CHECK" gpu-check.log node bench/gpu-check.js --require-cuda --out "$OUT/gpu-check" --export-dir "$DATA" ${GPU_CHECK_ARGS:-}
notes+=("gpu-check: $(grep -m1 '^correctness:' "$OUT/gpu-check.log" || echo 'no summary line')")

# 2. PyTorch SDPA and FlexAttention on the same inputs and masks
step "compare_torch" "$T_TORCH" compare_torch.log python3 bench/compare_torch.py --dir "$OUT/gpu-check" --data "$DATA"
notes+=("compare_torch: $(grep -m1 -E '^compare_torch: [0-9]+ checks' "$OUT/compare_torch.log" || tail -n 1 "$OUT/compare_torch.log")")

# 3. compute-sanitizer memcheck over every op on tiny shapes
SAN=$(command -v compute-sanitizer || true)
if [ -z "$SAN" ]; then for c in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda-*/bin/compute-sanitizer; do [ -x "$c" ] && SAN=$c && break; done; fi
if [ -n "$SAN" ]; then
  step "memcheck" "$T_SAN" sanitizer.log "$SAN" --tool memcheck --error-exitcode 1 --leak-check no \
    node bench/gpu-check.js --quick --sanitizer --require-cuda
  notes+=("memcheck: $(grep -m1 'ERROR SUMMARY' "$OUT/sanitizer.log" || echo 'no ERROR SUMMARY line') / $(grep -m1 '^correctness:' "$OUT/sanitizer.log" || echo 'no correctness line')")
else
  names+=("memcheck")
  results+=("SKIPPED (compute-sanitizer not found)")
fi

# 4. kernel ladders and further timings: one step line each, above the summary
step "overhead" "${T_OVERHEAD:-180}" overhead.log node bench/overhead.js
notes+=("overhead: see overhead.log (host overhead per op with device tensors: wall minus CUDA-event device time)")
step "hopper-ladder" "${T_HOPPER:-300}" hopper-ladder.log bash bench/hopper/ladder.sh

{
  echo
  echo "## gpu-run summary ($(date -u +%FT%TZ))"
  echo
  echo "| step | result |"
  echo "|---|---|"
  for i in "${!names[@]}"; do echo "| ${names[$i]} | ${results[$i]} |"; done
  echo
  for n in "${notes[@]}"; do echo "- $n"; done
} | tee "$OUT/summary.md"

for r in "${results[@]}"; do
  case "$r" in ok* | SKIPPED*) ;; *) exit 1 ;; esac
done
exit 0
