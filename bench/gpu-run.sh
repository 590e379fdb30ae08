#!/usr/bin/env bash
# One call on a machine with a GPU: every check and timing of the package, most valuable first,
# each step under its own time limit and all of them under one budget, so that one hang cannot eat
# the call. A failing step does not stop the next. A short table is printed LAST.
#
#   bash bench/gpu-run.sh [--dry-run] [--cpu] [--list] [STEP ...]
#
# Steps, in the order they run (give names to run only those, e.g. a rerun of what failed):
#   ladder         bench/kernel-ladder.js: each opt-in fast2 kernel (pooling, mask, attention) on tiny
#                  cases, one process per rung, against the verified kernels and the CPU: which layer is
#                  wrong, before a faulting kernel can take the later steps' CUDA contexts down with it
#   jest-cuda      every jest file with CUDA cases (test/cuda*.test.ts, test/hopper.test.ts, the device,
#                  mask-rule and warm-up suites: those gated by cudaSuite, cudaTest or backends().cuda)
#                  with NABLA_REQUIRE_CUDA=1, and the oracle's suite that gpu-check shares, through
#                  bench/jest-files.sh: each file in its own jest process, all at once, each under its
#                  own limit (cuda.test.ts and hopper.test.ts 180 s, the others 150 s: nine jest processes start at once)
#                  with a progress log, so a file that hangs is cut off, names the test that never
#                  ended, and hides no other file's results; passes when every file passed
#   gpu-check      every op against the CPU backend, then timings (small shape and 720p, device masks)
#   compare-torch  PyTorch SDPA and FlexAttention on gpu-check's inputs and masks (runs gpu-check first
#                  when it is not in this run)
#   service        bench/service-check.js: start-up vs steady state, host overhead, device memory over
#                  1,000 calls, out of memory, dispose while pending, async upload
#   overhead       bench/overhead.js where the tree has it: host overhead per op (wall minus CUDA-event time)
#   memcheck       compute-sanitizer memcheck, every kernel on tiny shapes (gpu-check --sanitizer)
#   hopper         the Hopper kernel's ladder (bench/hopper/ladder.sh, where the tree has it)
#   ncu            Nsight Compute on one launch each of dense and NABLA thr 0.7 sparse attention, per kernel
#   racecheck      compute-sanitizer racecheck, every kernel on tiny shapes
# --dry-run  runs nothing: checks that every step's command resolves here (files, node scripts
#            parse and answer --help, tools found), exit 1 if one does not
# --cpu      a rehearsal of the run on the CPU backend (gpu-check and service-check on the CPU,
#            jest without NABLA_REQUIRE_CUDA, the GPU-only steps SKIPPED): checks the machinery of
#            this script without a GPU; its numbers say nothing about a GPU
# --list     prints the step names
#
# Output: $OUT/<date>-<card>-runN/ (N follows the highest run in bench/results/) holds at most 8
# files: summary.md, logs.tar.gz (every log and table; unpack it into bench/results/<run>/), and
# the headline logs jest-cuda.log (per test file: its verdict, then its jest output), gpu-check.md, compare_torch.md, service-check.md, ncu.md. They
# are refreshed after every step, so a call cut short still brings back what ran.
#
# Environment: OUT (default ${TMPDIR:-/tmp}/nabla-gpu-run), RUN_NAME (instead of
# <date>-<card>-runN), BUDGET (seconds for all steps, default 330), T_<STEP> (one step's limit,
# e.g. T_GPU_CHECK=200), GPU_CHECK_ARGS (extra gpu-check arguments), NCU_SHAPE (small or 720p,
# default small), NCU_KERNELS (attention kernels the ncu step profiles, default "fast fast2"), NABLA_GPU_DATA (where gpu-check's .npy inputs go; they stay on the machine).
# Exit status: 0 when every step that ran passed.
set -uo pipefail
cd "$(dirname "$0")/.."

ALL_STEPS=(ladder jest-cuda gpu-check compare-torch service overhead memcheck hopper ncu racecheck)
declare -A LIMIT=([ladder]=90 [jest-cuda]=200 [gpu-check]=150 [compare-torch]=120 [service]=60 [overhead]=60 [memcheck]=90 [hopper]=240 [ncu]=100 [racecheck]=120)
RESERVE=8 # seconds kept for packing the results after the last step

dry=0
cpu=0
wanted=()
for a in "$@"; do
  case "$a" in
    --dry-run) dry=1 ;;
    --cpu) cpu=1 ;;
    --list) printf '%s\n' "${ALL_STEPS[@]}"; exit 0 ;;
    -h | --help) sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu-run: unknown option $a" >&2; exit 2 ;;
    *)
      [ -n "${LIMIT[$a]:-}" ] || { echo "gpu-run: unknown step $a (steps: ${ALL_STEPS[*]})" >&2; exit 2; }
      wanted+=("$a") ;;
  esac
done
[ ${#wanted[@]} -eq 0 ] && wanted=("${ALL_STEPS[@]}")
selected() { local s; for s in "${wanted[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
# compare-torch reads gpu-check's meta.json and .npy files from this run
if selected compare-torch && ! selected gpu-check; then wanted+=(gpu-check); fi
for s in "${ALL_STEPS[@]}"; do
  v="T_$(tr 'a-z-' 'A-Z_' <<<"$s")"
  [ -n "${!v:-}" ] && LIMIT[$s]=${!v}
done

tool() {  # tool NAME: its path, from PATH or the CUDA toolkit's bin
  local c
  c=$(command -v "$1" 2>/dev/null) && { echo "$c"; return 0; }
  for c in /usr/local/cuda/bin/"$1" /usr/local/cuda-*/bin/"$1" /opt/nvidia/nsight-compute/*/"$1"; do
    [ -x "$c" ] && { echo "$c"; return 0; }
  done
  return 1
}
SAN=$(tool compute-sanitizer || true)
NCU=$(tool ncu || true)
JEST=node_modules/jest/bin/jest.js
# the jest-cuda step's files and each one's own limit (they run at once: the step takes the longest
# of them, plus building dist/ once, within its own limit)
declare -A JEST_LIMIT=([test/cuda.test.ts]=180 [test/hopper.test.ts]=180)
JEST_FILES=()
# every test file with CUDA cases (those gated by cudaSuite, cudaTest or backends().cuda), then the
# oracle's suite, which gpu-check shares
for f in $(grep -lE 'cudaSuite\(|cudaTest\b|info\.cuda\b' test/*.test.ts 2>/dev/null) test/oracle.test.ts; do
  [ -f "$f" ] && JEST_FILES+=("$f:${JEST_LIMIT[$f]:-150}")
done

# ---------------------------------------------------------------------------------------------
# --dry-run: every step's command resolves here

if [ $dry = 1 ]; then
  bad=0
  ok() { printf '  %-14s ok: %s\n' "$1" "$2"; }
  no() { printf '  %-14s MISSING: %s\n' "$1" "$2"; bad=1; }
  note() { printf '  %-14s note: %s\n' "$1" "$2"; }
  PROBE=build/Release/nabla_interop_probe.node
  # the interop tests and service-check's interop row need the probe addon; without it they skip
  probe_note() { [ -e "$PROBE" ] && ok "$1" "$PROBE" || note "$1" "no $PROBE (a CMake CUDA build makes it): the interop checks that need it will be skipped"; }
  need_file() { if [ -e "$2" ]; then ok "$1" "$2"; else no "$1" "$2"; fi; }
  need_node() {  # need_node STEP SCRIPT: parses, and --help exits 0
    if [ ! -f "$2" ]; then no "$1" "$2"; return; fi
    if ! node --check "$2" 2>/dev/null; then no "$1" "$2 does not parse"; return; fi
    if node "$2" --help >/dev/null 2>&1; then ok "$1" "node $2 --help"; else no "$1" "node $2 --help fails"; fi
  }
  echo "gpu-run --dry-run: steps ${wanted[*]}"
  command -v node >/dev/null && ok node "$(node --version)" || no node "node is not on PATH"
  need_file addon build/Release/nabla_attention.node
  need_file dist dist/index.js
  for s in "${ALL_STEPS[@]}"; do
    selected "$s" || continue
    case $s in
      jest-cuda)
        need_file "$s" "$JEST"
        [ ${#JEST_FILES[@]} -gt 0 ] && ok "$s" "${JEST_FILES[*]}" || no "$s" "no test file with CUDA cases"
        if [ -f bench/jest-files.sh ]; then bash -n bench/jest-files.sh && ok "$s" "bench/jest-files.sh parses" || no "$s" "bench/jest-files.sh does not parse"
        else no "$s" "bench/jest-files.sh"; fi
        if [ -f scripts/jest-progress.js ]; then node --check scripts/jest-progress.js && ok "$s" "scripts/jest-progress.js parses" || no "$s" "scripts/jest-progress.js does not parse"
        else no "$s" "scripts/jest-progress.js"; fi
        # the progress log is wired in only while NABLA_TEST_PROGRESS is set
        if NABLA_TEST_PROGRESS=x node -e "process.exit(String(require('./jest.config.js').setupFilesAfterEnv).includes('scripts/jest-progress.js') ? 0 : 1)" 2>/dev/null; then
          ok "$s" "jest.config.js loads scripts/jest-progress.js under NABLA_TEST_PROGRESS"
        else no "$s" "jest.config.js does not load scripts/jest-progress.js under NABLA_TEST_PROGRESS"; fi
        command -v npm >/dev/null && ok "$s" "npm (jest-files.sh runs build:ts once)" || no "$s" "npm is not on PATH"
        probe_note "$s" ;;
      gpu-check) need_node "$s" bench/gpu-check.js ;;
      ladder) need_node "$s" bench/kernel-ladder.js ;;
      compare-torch)
        need_file "$s" bench/compare_torch.py
        if command -v python3 >/dev/null; then
          python3 -m py_compile bench/compare_torch.py 2>/dev/null && python3 bench/compare_torch.py --help >/dev/null 2>&1 \
            && ok "$s" "python3 bench/compare_torch.py --help" || no "$s" "bench/compare_torch.py --help fails"
        else note "$s" "no python3 here"; fi ;;
      service) need_node "$s" bench/service-check.js; probe_note "$s" ;;
      overhead)
        if [ -f bench/overhead.js ]; then node --check bench/overhead.js && ok "$s" "bench/overhead.js parses" || no "$s" "bench/overhead.js does not parse"
        else note "$s" "no bench/overhead.js in this tree: the step will say SKIPPED"; fi ;;
      memcheck | racecheck)
        need_node "$s" bench/gpu-check.js
        [ -n "$SAN" ] && ok "$s" "$SAN" || note "$s" "no compute-sanitizer here (the GPU machine has it)" ;;
      hopper)
        if [ -f bench/hopper/ladder.sh ]; then bash -n bench/hopper/ladder.sh && ok "$s" "bench/hopper/ladder.sh parses" || no "$s" "bench/hopper/ladder.sh does not parse"
        else note "$s" "no bench/hopper/ladder.sh in this tree: the step will say SKIPPED"; fi ;;
      ncu)
        need_node "$s" bench/one-launch.js
        bash -n bench/ncu-attention.sh && ok "$s" "bench/ncu-attention.sh parses" || no "$s" "bench/ncu-attention.sh does not parse"
        if command -v python3 >/dev/null; then
          python3 bench/ncu_table.py --help >/dev/null && ok "$s" "python3 bench/ncu_table.py --help" || no "$s" "bench/ncu_table.py --help fails"
        else note "$s" "no python3 here"; fi
        [ -n "$NCU" ] && ok "$s" "$NCU" || note "$s" "no ncu here (the GPU machine has it)" ;;
    esac
  done
  [ $bad = 0 ] && echo "gpu-run --dry-run: every step resolves" || echo "gpu-run --dry-run: MISSING pieces above"
  exit $bad
fi

# ---------------------------------------------------------------------------------------------
# The run

OUT="${OUT:-${TMPDIR:-/tmp}/nabla-gpu-run}"
DATA="${NABLA_GPU_DATA:-${TMPDIR:-/tmp}/nabla-gpu-data}"
BUDGET="${BUDGET:-330}"
card=$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null | head -n 1 | sed 's/^NVIDIA //' | awk '{print tolower($1)}')
card=${card:-nogpu}
[ $cpu = 1 ] && card=cpu-rehearsal
last=$(ls -d bench/results/*-run* 2>/dev/null | sed -n 's/.*-run\([0-9]*\)$/\1/p' | sort -n | tail -n 1)
RUN="${RUN_NAME:-$(date -u +%F)-$card-run$(( ${last:-0} + 1 ))}"
DEST="$OUT/$RUN"                                   # what comes back: at most 8 files
WORK="${TMPDIR:-/tmp}/nabla-gpu-run-logs/$RUN"     # every log, packed into $DEST/logs.tar.gz
rm -rf "$WORK"
mkdir -p "$DEST" "$WORK/gpu-check" "$DATA"
START=$SECONDS

names=(); results=(); notes=()
summary() {
  {
    echo "## gpu-run $RUN: $(date -u +%FT%TZ), $(git rev-parse --short HEAD 2>/dev/null || echo 'no git'), ${SECONDS}s"
    [ $cpu = 1 ] && echo && echo "CPU REHEARSAL (--cpu): the machinery of bench/gpu-run.sh on the CPU backend, NOT A GPU RESULT"
    echo
    echo "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader -i 0 2>/dev/null || echo 'no nvidia-smi')"
    echo
    echo "| step | result |"
    echo "|---|---|"
    for i in "${!names[@]}"; do echo "| ${names[$i]} | ${results[$i]} |"; done
    echo
    for n in "${notes[@]}"; do echo "- $n"; done
  } >"$WORK/summary.md"
}
pack() {  # refresh $DEST from $WORK (after every step, so that a cut-short call still brings back what ran)
  summary
  cp "$WORK/summary.md" "$DEST/summary.md"
  local f
  for f in jest-cuda.log gpu-check/gpu-check.md gpu-check/compare_torch.md service-check.md ncu.md; do
    [ -f "$WORK/$f" ] && cp "$WORK/$f" "$DEST/$(basename "$f")"
  done
  # a file over 16 MiB does not come back at all: then leave the binary ncu reports out
  tar -C "$WORK" -czf "$DEST/logs.tar.gz.part" . &&
    { [ "$(stat -c %s "$DEST/logs.tar.gz.part")" -le $((15 * 2 ** 20)) ] ||
      tar -C "$WORK" --exclude='*.ncu-rep' -czf "$DEST/logs.tar.gz.part" .; } &&
    mv "$DEST/logs.tar.gz.part" "$DEST/logs.tar.gz"
}
record() { names+=("$1"); results+=("$2"); pack; }

# step NAME LOG CMD...: CMD under `timeout` (its limit, cut to what is left of the budget), output
# to the terminal and $WORK/LOG; CMD sees that limit as STEP_SECONDS (bench/jest-files.sh keeps its
# files' limits inside it)
step() {
  local name=$1 log=$2
  shift 2
  local left=$((BUDGET - (SECONDS - START) - RESERVE)) limit=${LIMIT[$name]}
  if [ "$left" -lt 15 ]; then record "$name" "SKIPPED (budget of ${BUDGET}s spent)"; return 1; fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo
  echo "=== $name (limit ${limit}s): $*"
  local t0=$SECONDS
  STEP_SECONDS=$limit timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$WORK/$log"
  local rc=${PIPESTATUS[0]} verdict=ok
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then verdict=TIMEOUT; elif [ "$rc" -ne 0 ]; then verdict=FAIL; fi
  echo "=== $name: $verdict (rc $rc) in $((SECONDS - t0))s"
  record "$name" "$verdict (rc $rc, $((SECONDS - t0))s)"
  [ "$verdict" = ok ]
}
line() { grep -m1 -E "$1" "$WORK/$2" 2>/dev/null || echo "${3:-no line /$1/ in $2}"; }
# add_note TEXT: a line under the summary table, for a step that ran (its log exists)
add_note() { notes+=("$1"); }

echo "gpu-run $RUN: $(date -u +%FT%TZ) in $(pwd); steps: ${wanted[*]}; budget ${BUDGET}s; logs $WORK; results $DEST"
command -v node >/dev/null || echo "gpu-run: node is not on PATH"

GPU_ONLY=(overhead memcheck hopper ncu racecheck)
REQUIRE_CUDA=(env NABLA_REQUIRE_CUDA=1)
LADDER_ON=()
CHECK_ON=(--require-cuda)
SERVICE_ON=(--backend cuda)
if [ $cpu = 1 ]; then
  REQUIRE_CUDA=(env)
  LADDER_ON=(--backend cpu)
  CHECK_ON=(--backend cpu --quick --no-720p)
  SERVICE_ON=(--backend cpu --calls 50)
fi

for s in "${ALL_STEPS[@]}"; do
  selected "$s" || continue
  if [ $cpu = 1 ] && [[ " ${GPU_ONLY[*]} " == *" $s "* ]]; then record "$s" "SKIPPED (--cpu rehearsal: GPU only)"; continue; fi
  case $s in
    ladder)
      step "$s" kernel-ladder.log node bench/kernel-ladder.js ${LADDER_ON[@]+"${LADDER_ON[@]}"}
      [ -f "$WORK/kernel-ladder.log" ] && add_note "ladder: $(line '^kernel-ladder:' kernel-ladder.log)" ;;
    jest-cuda)
      if [ ! -f "$JEST" ] || ! command -v npm >/dev/null; then
        record "$s" "SKIPPED (needs node_modules and npm: carry .device packed with --node-modules)"
      else
        # jest-files.sh writes the headline jest-cuda.log and jest-cuda-<file>.log/.progress; its own
        # output (a line per file: verdict, counts, the test that never ended) goes to jest-cuda-step.log
        step "$s" jest-cuda-step.log "${REQUIRE_CUDA[@]}" bash bench/jest-files.sh "$WORK" jest-cuda "${JEST_FILES[@]}"
        if [ -f "$WORK/jest-cuda-step.log" ]; then
          while IFS= read -r l; do add_note "jest-cuda: ${l#jest-file: }"; done < <(grep '^jest-file: ' "$WORK/jest-cuda-step.log")
          grep -q '^jest-file: ' "$WORK/jest-cuda-step.log" || add_note "jest-cuda: $(tail -n 1 "$WORK/jest-cuda-step.log")"
        fi
      fi ;;
    gpu-check)
      # shellcheck disable=SC2086
      step "$s" gpu-check.log node bench/gpu-check.js "${CHECK_ON[@]}" --out "$WORK/gpu-check" --export-dir "$DATA" ${GPU_CHECK_ARGS:-}
      [ -f "$WORK/gpu-check.log" ] && add_note "gpu-check: $(line '^correctness:' gpu-check.log)" ;;
    compare-torch)
      if [ ! -f "$WORK/gpu-check/meta.json" ]; then record "$s" "SKIPPED (gpu-check wrote no meta.json in this run)"
      else
        step "$s" compare_torch.log env PYTHONUNBUFFERED=1 python3 bench/compare_torch.py --dir "$WORK/gpu-check" --data "$DATA"
        [ -f "$WORK/compare_torch.log" ] && add_note "compare-torch: $(line '^compare_torch: [0-9]+ checks' compare_torch.log "$(tail -n 1 "$WORK/compare_torch.log")")"
      fi ;;
    service)
      step "$s" service-check.log node bench/service-check.js "${SERVICE_ON[@]}" --out "$WORK"
      [ -f "$WORK/service-check.log" ] && add_note "service: $(line '^service-check:' service-check.log)" ;;
    overhead)
      if [ ! -f bench/overhead.js ]; then record "$s" "SKIPPED (no bench/overhead.js in this tree)"
      else step "$s" overhead.log node bench/overhead.js
      fi ;;
    memcheck | racecheck)
      if [ -z "$SAN" ]; then record "$s" "SKIPPED (compute-sanitizer not found)"
      else
        step "$s" "$s.log" "$SAN" --tool "$s" --error-exitcode 1 $([ "$s" = memcheck ] && echo --leak-check no) \
          node bench/gpu-check.js --quick --sanitizer --require-cuda
        [ -f "$WORK/$s.log" ] && add_note "$s: $(line 'ERROR SUMMARY|RACECHECK SUMMARY' "$s.log") / $(line '^correctness:' "$s.log")"
      fi ;;
    hopper)
      if [ ! -f bench/hopper/ladder.sh ]; then record "$s" "SKIPPED (no bench/hopper/ladder.sh in this tree)"
      else
        step "$s" hopper-ladder.log env OUT="$WORK" bash bench/hopper/ladder.sh
      fi ;;
    ncu)
      if [ -z "$NCU" ]; then record "$s" "SKIPPED (ncu not found)"
      else step "$s" ncu.log bash bench/ncu-attention.sh "$NCU" "$WORK" "${NCU_SHAPE:-small}" 0.7 "${NCU_KERNELS:-fast fast2}"
      fi ;;
  esac
done

pack
echo
cat "$WORK/summary.md"
for r in "${results[@]}"; do
  case "$r" in ok* | SKIPPED*) ;; *) exit 1 ;; esac
done
exit 0
