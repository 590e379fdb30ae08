#!/usr/bin/env bash
# CUDA compiler launcher (cmake/hopper.cmake): runs the compile command it is given. For the Hopper
# kernel's instances and the fast2 kernels' files (compiled with -Xptxas=-v) it then fails the
# compile when ptxas reported a spill, a stack frame, or one of the performance-loss infos C7508 /
# C7510-C7520.
case " $* " in
  *attention_hopper_* | *attention_fast2_* | */csrc/cuda/mask.cu* | */csrc/cuda/pool.cu*) ;;
  *) exec "$@" ;;
esac
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$@" >"$log" 2>&1
rc=$?
# keep the build log short: the register line of each entry function, and anything not ptxas info
grep -v -E '^ptxas info    : (Compiling|Function properties|Compile time|[0-9]+ bytes gmem)|^    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads$' "$log" >&2
[ "$rc" -ne 0 ] && exit "$rc"
bad=$(grep -E '\(C75(08|1[0-9]|20)\)|[1-9][0-9]* bytes (stack frame|spill stores|spill loads)' "$log")
if [ -n "$bad" ]; then
  echo "hopper-ptxas-check: a kernel that must keep its data in registers lost performance (spills, stack or serialized wgmma):" >&2
  echo "$bad" >&2
  exit 1
fi
exit 0
