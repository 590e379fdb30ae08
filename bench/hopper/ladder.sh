#!/usr/bin/env bash
# The Hopper kernel's GPU ladder: every rung in its own process under its own time limit (a fault
# or a hang in one does not hide the next), then a summary table. Rungs:
#   R0 env        device and compute capability; SASS counts of the addon's Hopper kernel (cuobjdump)
#   R1 wgmma      one wgmma on exact small integers (map of wrong cells)
#   R2 advance    swizzled K-advance over head dims 64 and 128;  pv: P from registers x transposed V
#   R3 tma        TMA tile against the host swizzle
#   R4 tma-wgmma  TMA + wgmma, S = Q K^T
#   R5 pipeline   the mbarrier ring alone over lists of 0, 1, 3, 4, 300 blocks
#   R6 full       the whole kernel vs fp64 and the fast kernel, NaN-poisoned outputs; then
#                 compute-sanitizer memcheck on a tiny case (when compute-sanitizer is on PATH)
#   R7 timings    fast vs Hopper, dense and three mask densities
# The rung binary is bench/hopper/build/hopper-ladder; built here when nvcc is on PATH and it is
# missing (bash bench/hopper/build-ladder.sh builds it ahead, for machines without nvcc).
# Barrier waits in the rung binary trap after NABLA_HOPPER_SPIN_LIMIT polls, so a wrong phase
# ends a rung with an error instead of a hang. Logs: $OUT/hopper-ladder/<rung>.log. Whole run
# well under 6 minutes on an H200 (each limit below; the rungs themselves take seconds).
# Exit status 0 when every rung passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-${TMPDIR:-/tmp}/nabla-gpu-run}"
LOGS="$OUT/hopper-ladder"
mkdir -p "$LOGS"
BIN=bench/hopper/build/hopper-ladder
if [ ! -x "$BIN" ] && command -v nvcc >/dev/null; then bash bench/hopper/build-ladder.sh || true; fi

names=(); verdicts=()
rung() {  # rung NAME LIMIT CMD...
  local name=$1 limit=$2
  shift 2
  echo; echo "=== $name (limit ${limit}s): $*"
  local start=$SECONDS
  timeout --kill-after=5 "$limit" "$@" 2>&1 | tee "$LOGS/$name.log"
  local rc=${PIPESTATUS[0]} verdict=PASS
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then verdict=TIMEOUT; elif [ "$rc" -ne 0 ]; then verdict=FAIL; fi
  names+=("$name"); verdicts+=("$verdict (rc $rc, $((SECONDS - start))s)")
}

if [ -x "$BIN" ]; then
  "$BIN" env >"$LOGS/R0-env.log" 2>&1
  if [ $? -eq 3 ]; then  # a GPU, but not Hopper: nothing here applies
    cat "$LOGS/R0-env.log"; echo "hopper ladder: SKIPPED (not compute capability 9.0)"; exit 0
  fi
  rung R0-env 30 "$BIN" env
  if command -v cuobjdump >/dev/null && [ -f build/Release/nabla_attention.node ]; then
    # HGMMA (wgmma), UTMALDG (TMA loads) and SYNCS (mbarrier) appear only in the Hopper kernel
    sass=$(cuobjdump --dump-sass build/Release/nabla_attention.node 2>/dev/null)
    for op in HGMMA UTMALDG SYNCS; do echo "SASS $op: $(grep -c "$op" <<<"$sass")"; done | tee -a "$LOGS/R0-env.log"
  fi
  rung R1-wgmma 30 "$BIN" wgmma
  rung R2-advance 30 "$BIN" advance
  rung R2-pv 30 "$BIN" pv
  rung R3-tma 30 "$BIN" tma
  rung R4-tma-wgmma 30 "$BIN" tma-wgmma
  rung R5-pipeline 30 "$BIN" pipeline
else
  echo "no $BIN and no nvcc to build it: rungs R0-R5 skipped"
  names+=("R0-R5"); verdicts+=("SKIPPED (no rung binary)")
fi
rung R6-full 120 node bench/hopper/full-kernel.js check
if command -v compute-sanitizer >/dev/null; then
  rung R6-memcheck 90 compute-sanitizer --tool memcheck --error-exitcode 1 node bench/hopper/full-kernel.js check --tiny
fi
rung R7-timings 120 node bench/hopper/full-kernel.js time

failed=0
{
  echo "## Hopper ladder summary"
  echo "| rung | verdict |"
  echo "|---|---|"
  for i in "${!names[@]}"; do echo "| ${names[$i]} | ${verdicts[$i]} |"; done
} >"$LOGS/summary.md"
for v in "${verdicts[@]}"; do case "$v" in PASS*) ;; *) failed=1 ;; esac; done
echo; cat "$LOGS/summary.md"
exit "$failed"
