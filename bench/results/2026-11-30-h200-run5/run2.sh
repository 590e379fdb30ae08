#!/usr/bin/env bash
# second call of this round: the steps the first call could not finish
set -u
X=$OUT/2026-11-30-h200-run5-extra; mkdir -p $X
T0=$(date +%s)
timeout 45 node bench/hopper/full-kernel.js check --tiny > $X/hopper-tiny.log 2>&1; hr=$?
echo "hopper tiny: rc $hr in $(( $(date +%s) - T0 ))s"; tail -8 $X/hopper-tiny.log
files="test/cuda.test.ts test/cuda-interop.test.ts"
pat='^(?!.*hopper)'
[ $hr = 0 ] && { files="$files test/hopper.test.ts"; pat='.'; }
T1=$(date +%s)
NABLA_REQUIRE_CUDA=1 timeout 190 node node_modules/jest/bin/jest.js --ci --verbose $files -t "$pat" > $X/jest-cuda.log 2>&1
echo "jest: rc $? in $(( $(date +%s) - T1 ))s"; grep -E "^(PASS|FAIL)|✕|^Tests:" $X/jest-cuda.log | head -30
OUT=$OUT RUN_NAME=2026-11-30-h200-run5 BUDGET=$(( 400 - ($(date +%s) - T0) )) T_NCU=80 T_RACECHECK=70 bash bench/gpu-run.sh ncu racecheck 2>&1 | tail -30
