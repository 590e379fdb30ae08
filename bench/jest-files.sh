#!/usr/bin/env bash
# Jest test files each in its own process, all at once, each under its own time limit, so that one
# file that hangs neither stops nor hides the others; where a file runs out of time, the test that
# started and never ended is named. A sync native call that never returns (a kernel that never
# finishes) blocks the JS thread, so jest's own test timeout cannot fire and jest, which prints a
# file's results only when the file ends, prints nothing: the progress log says where it stopped.
#
#   bash bench/jest-files.sh DIR PREFIX FILE[:SECONDS] ...
#
# Per FILE (test/<name>.test.ts): `jest --ci --verbose --runInBand --runTestsByPath FILE` under
# `timeout SECONDS` (default 60), its output in DIR/PREFIX-<name>.log, its progress in
# DIR/PREFIX-<name>.progress: a line at the start and at the end of every test (NABLA_TEST_PROGRESS,
# scripts/jest-progress.js), written synchronously, so it survives the kill. The environment passes
# through (e.g. NABLA_REQUIRE_CUDA=1); JEST_ARGS adds arguments to every jest command (split at
# spaces; e.g. `--roots DIR` for files outside test/).
# dist/ is built once first (npm run build:ts) and the jest processes are told not to rebuild it
# (NABLA_JEST_NO_BUILD=1), so that none rewrites it under another; where NABLA_JEST_NO_BUILD=1 is set
# already (dist/ is fresh: a caller inside jest), nothing is built.
# STEP_SECONDS (bench/gpu-run.sh sets it to the step's limit): no file runs past STEP_SECONDS - 10
# from the start, so the files' own limits fire before the caller's and the results are written.
#
# Then DIR/PREFIX.log, the headline: per file, in the order given, its verdict line and its jest
# output (for a file cut off at its limit, which printed no results, its progress log). Printed last, one line per file in that order:
#   jest-file: test/oracle.test.ts PASS in 12s: 40 passed, 0 failed, 0 skipped
#   jest-file: test/cuda.test.ts FAIL (rc 1) in 50s: 79 passed, 1 failed, 0 skipped; failed: <test>
#   jest-file: test/hopper.test.ts TIMEOUT after 120s (limit 120s): never ended: '<describe> <test>'
# Exit status 0 when every file passed, 1 otherwise, 2 on bad arguments.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 3 ]; then
  sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
DIR=$1 PREFIX=$2
shift 2
JEST=node_modules/jest/bin/jest.js
DEFAULT_SECONDS=60
mkdir -p "$DIR"
deadline=$((1 << 30)) # seconds from the start
[ "${STEP_SECONDS:-0}" -gt 0 ] && deadline=$((STEP_SECONDS - 10))

if [ "${NABLA_JEST_NO_BUILD:-}" != 1 ]; then
  if ! npm run --silent build:ts >"$DIR/$PREFIX-build.log" 2>&1; then
    tee "$DIR/$PREFIX.log" <"$DIR/$PREFIX-build.log"
    echo "jest-files: npm run build:ts failed: no test file ran" | tee -a "$DIR/$PREFIX.log"
    exit 1
  fi
fi

name_of() { basename "${1%.ts}" .test; }

# the test of a progress file that started and never ended, or why there is none
hung_test() {
  local progress=$1
  if [ ! -s "$progress" ]; then
    echo "no test started (the file never loaded: jest start-up or compiling it)"
    return
  fi
  # lines: <time> start|end <file> › <test>; a name may repeat (test.each with a fixed title), so
  # starts are counted against ends
  awk '
    { what = $2; at = index($0, " › "); name = at ? substr($0, at + length(" › ")) : "" }
    what == "start" { open[name]++; last = name }
    what == "end" { open[name]-- }
    END {
      if (last != "" && open[last] > 0) { print "never ended: \047" last "\047"; exit }
      for (n in open) if (open[n] > 0) { print "never ended: \047" n "\047"; exit }
      print "no test running (it hung loading, in a beforeAll/afterAll hook, or after its last test)"
    }' "$progress"
}

# run every file at once; each subshell leaves "<rc> <seconds>" in DIR/PREFIX-<name>.rc
files=() limits=()
for arg in "$@"; do
  file=${arg%:*} seconds=$DEFAULT_SECONDS
  [ "$file" != "$arg" ] && seconds=${arg##*:}
  [[ "$seconds" =~ ^[0-9]+$ ]] || { echo "jest-files: bad limit in $arg" >&2; exit 2; }
  left=$((deadline - SECONDS))
  [ "$seconds" -gt "$left" ] && seconds=$left
  [ "$seconds" -lt 1 ] && seconds=1
  files+=("$file") limits+=("$seconds")
done
echo "jest-files: ${#files[@]} at once: $(for i in "${!files[@]}"; do printf '%s (%ss) ' "${files[$i]}" "${limits[$i]}"; done)"
for i in "${!files[@]}"; do
  file=${files[$i]} name=$(name_of "${files[$i]}")
  rm -f "$DIR/$PREFIX-$name.progress" "$DIR/$PREFIX-$name.rc"
  # shellcheck disable=SC2086
  (
    t0=$SECONDS
    timeout --kill-after=5 "${limits[$i]}" env NABLA_TEST_PROGRESS="$DIR/$PREFIX-$name.progress" NABLA_JEST_NO_BUILD=1 \
      node "$JEST" --ci --verbose --runInBand ${JEST_ARGS:-} --runTestsByPath "$file" >"$DIR/$PREFIX-$name.log" 2>&1
    echo "$? $((SECONDS - t0))" >"$DIR/$PREFIX-$name.rc"
  ) &
done
wait

failed=0 lines=()
: >"$DIR/$PREFIX.log"
for i in "${!files[@]}"; do
  file=${files[$i]} name=$(name_of "${files[$i]}")
  read -r rc seconds <"$DIR/$PREFIX-$name.rc" || { rc=1 seconds=?; }
  rm -f "$DIR/$PREFIX-$name.rc"
  log="$DIR/$PREFIX-$name.log"
  # the closing line of scripts/jest-summary.js, or jest's own Tests: line
  counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -n 1)
  [ -n "$counts" ] || counts=$(grep -m1 '^Tests:' "$log" || echo "no test counts in $(basename "$log")")
  if [ "$rc" -eq 0 ]; then
    line="$file PASS in ${seconds}s: $counts"
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    line="$file TIMEOUT after ${seconds}s (limit ${limits[$i]}s): $(hung_test "$DIR/$PREFIX-$name.progress")"
    failed=1
  else
    failures=$(sed -n 's/^ *✕ \(.*\)$/\1/p' "$log" | sed 's/ ([0-9.]* m\{0,1\}s)$//' | head -n 3 | paste -sd ';' -)
    line="$file FAIL (rc $rc) in ${seconds}s: $counts${failures:+; failed: $failures}"
    failed=1
  fi
  lines+=("$line")
  {
    echo "=== $line"
    cat "$log"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      echo "--- killed at its limit: jest printed no results; the progress log ($PREFIX-$name.progress):"
      cat "$DIR/$PREFIX-$name.progress" 2>/dev/null
    fi
    echo
  } >>"$DIR/$PREFIX.log"
done
for l in "${lines[@]}"; do echo "jest-file: $l"; done
exit "$failed"
