#!/usr/bin/env bash
# The Hopper kernel's GPU ladder: every rung in its own process under its own time limit (a fault
# or a hang in one does not hide the next), then a summary table. Rungs:
#   R0 env        device and compute capability; SASS counts of the addon's Hopper kernel (cuobjdump)
#   R1 wgmma-plain  one wgmma on exact small integers, operands without swizzle (map of wrong cells)
#   R1 wgmma      the same with the kernel's 128B swizzle
#   R2 advance    swizzled K-advance over head dims 64 and 128;  pv: P from registers x transposed V
#   R3 tma        TMA tile against the host swizzle
#   R4 tma-wgmma  TMA + wgmma, S = Q K^T
#   R5 pipeline   the mbarrier ring alone over lists of 0, 1, 3, 4, 300 blocks
#   R6 probe      the whole kernel case by case, each case in its own process under 10 s, vs the
#                 fast kernel (no fp64 reference): names the first case that hangs or traps
#   R6 full       the whole kernel vs fp64 and the fast kernel, NaN-poisoned outputs; then
#                 compute-sanitizer memcheck on a tiny case (when compute-sanitizer is on PATH)
#   R7 timings    fast vs Hopper, dense and three mask densities
# The rung binary is bench/hopper/build/hopper-ladder; built here when nvcc is on PATH and it is
# missing (bash bench/hopper/build-ladder.sh builds it ahead, for machines without nvcc).
# Barrier waits in the rung binary trap after one second of waiting (NABLA_HOPPER_SPIN_LIMIT_NS),
# and so do the addon's when it was built with NABLA_HOPPER_SPIN_LIMIT_NS (bench/hopper/README.md),
# so a wrong phase ends a rung with an error instead of a hang. Logs: $OUT/hopper-ladder/<rung>.log.
# Time: each rung has its own limit, and no rung runs past LADDER_SECONDS (280) from the start, so
# the whole ladder ends within 5 minutes even when every rung hangs (under bench/gpu-run.sh, whose
# step limit arrives as STEP_SECONDS, the budget is that limit less 5 s); the rungs themselves take
# seconds (R6 and R7 tens of seconds). R6-memcheck, R7 and R6-full run only when R6-probe passed (a
# kernel that is wrong or hangs is neither sanitized nor timed), and R6-probe's 10 s per case caps
# what a hang there costs. Exit status 0 when every rung passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-${TMPDIR:-/tmp}/nabla-gpu-run}"
LOGS="$OUT/hopper-ladder"
mkdir -p "$LOGS"
BIN=bench/hopper/build/hopper-ladder
if [ ! -x "$BIN" ] && command -v nvcc >/dev/null; then bash bench/hopper/build-ladder.sh || true; fi

if [ -n "${STEP_SECONDS:-}" ]; then LADDER_SECONDS=${LADDER_SECONDS:-$((STEP_SECONDS - 5))}; else LADDER_SECONDS=${LADDER_SECONDS:-280}; fi
names=(); verdicts=()
skip() {  # skip NAME WHY
  echo; echo "=== $1: skipped ($2)"
  names+=("$1"); verdicts+=("SKIPPED ($2)")
}
rung() {  # rung NAME LIMIT CMD...  (the limit shrinks to what is left of LADDER_SECONDS)
  local name=$1 limit=$2
  shift 2
  local left=$((LADDER_SECONDS - SECONDS))
  if [ "$left" -lt 5 ]; then skip "$name" "no time left of the ${LADDER_SECONDS}s budget"; return; fi
  [ "$left" -lt "$limit" ] && limit=$left
  echo; echo "=== $name (limit ${limit}s): $*"
  local start=$SECONDS
  timeout --kill-after=5 "$limit" "$@" 2>&1 | tee "$LOGS/$name.log"
  local rc=${PIPESTATUS[0]} verdict=PASS
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then verdict=TIMEOUT; elif [ "$rc" -ne 0 ]; then verdict=FAIL; fi
  names+=("$name"); verdicts+=("$verdict (rc $rc, $((SECONDS - start))s)")
}

if [ -x "$BIN" ]; then
  timeout --kill-after=5 15 "$BIN" env >"$LOGS/R0-env.log" 2>&1
  if [ $? -eq 3 ]; then  # a GPU, but not Hopper: nothing here applies
    cat "$LOGS/R0-env.log"; echo "hopper ladder: SKIPPED (not compute capability 9.0)"; exit 0
  fi
  rung R0-env 15 "$BIN" env
  if command -v cuobjdump >/dev/null && [ -f build/Release/nabla_attention.node ]; then
    # HGMMA (wgmma), UTMALDG (TMA loads) and SYNCS (mbarrier) appear only in the Hopper kernel;
    # GLOBALTIMER only where its waits have the spin limit (built with NABLA_HOPPER_SPIN_LIMIT_NS)
    sass=$(cuobjdump --dump-sass build/Release/nabla_attention.node 2>/dev/null)
    for op in HGMMA UTMALDG SYNCS GLOBALTIMER; do echo "SASS $op: $(grep -c "$op" <<<"$sass")"; done | tee -a "$LOGS/R0-env.log"
    grep -q GLOBALTIMER <<<"$sass" || echo "note: the addon's Hopper kernel has no spin limit: a hang in R6 lasts until R6's time limit" | tee -a "$LOGS/R0-env.log"
  fi
  rung R1-wgmma-plain 15 "$BIN" wgmma-plain
  rung R1-wgmma 15 "$BIN" wgmma
  rung R2-advance 15 "$BIN" advance
  rung R2-pv 15 "$BIN" pv
  rung R3-tma 15 "$BIN" tma
  rung R4-tma-wgmma 15 "$BIN" tma-wgmma
  rung R5-pipeline 15 "$BIN" pipeline
else
  echo "no $BIN and no nvcc to build it: rungs R0-R5 skipped"
  names+=("R0-R5"); verdicts+=("SKIPPED (no rung binary)")
fi
# the probe (against the fast kernel, seconds) gates the sanitizer and the timings; R6-full (against
# fp64 references computed in JS, about 90 s) comes last, so its cost never crowds out the others
rung R6-probe 120 node bench/hopper/probe.js --limit 10
if [[ "${verdicts[-1]}" == PASS* ]]; then
  if command -v compute-sanitizer >/dev/null; then
    rung R6-memcheck 60 compute-sanitizer --tool memcheck --error-exitcode 1 node bench/hopper/full-kernel.js check --tiny
  fi
  rung R7-timings 90 node bench/hopper/full-kernel.js time
  rung R6-full 150 node bench/hopper/full-kernel.js check
else
  skip R6-memcheck "R6-probe did not pass"
  skip R7-timings "R6-probe did not pass"
  skip R6-full "R6-probe did not pass"
fi

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
