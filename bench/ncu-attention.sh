#!/usr/bin/env bash
# Nsight Compute on one launch each of dense and NABLA sparse attention (bench/one-launch.js; the
# filter `--kernel-name regex:Attention --launch-count 1` skips the mask kernels), then
# bench/ncu_table.py puts the counts side by side and per (query block, key block) tile: does a
# sparse tile cost more than a dense one in time, DRAM bytes, L2 hits, shared-memory wavefronts
# or occupancy? Called by bench/gpu-run.sh (step ncu):
#
#   bash bench/ncu-attention.sh NCU WORKDIR [small|720p] [THRESHOLD] [KERNELS]
#
# Writes WORKDIR/ncu/{dense,sparse}.ncu-rep, {dense,sparse}-details.txt (every section's page),
# {dense,sparse}-raw.csv and WORKDIR/ncu.md (the table). KERNELS (e.g. "fast fast2"): profile each
# named attention kernel instead of the default one, each in WORKDIR/ncu/<kernel>/, with one table
# per kernel in ncu.md.
set -uo pipefail
cd "$(dirname "$0")/.."
NCU=$1 WORK=$2 SHAPE=${3:-small} THR=${4:-0.7} KERNELS=${5:-}
mkdir -p "$WORK/ncu"

# By name: what the question needs. Names this ncu does not know are dropped (with a note) rather
# than failing the whole profile.
METRICS=(
  gpu__time_duration.sum
  sm__throughput.avg.pct_of_peak_sustained_elapsed
  dram__bytes_read.sum
  dram__bytes_write.sum
  dram__throughput.avg.pct_of_peak_sustained_elapsed
  lts__t_sector_hit_rate.pct
  lts__t_sectors_srcunit_tex_op_read.sum
  l1tex__data_pipe_lsu_wavefronts_mem_shared.sum
  l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ld.sum
  l1tex__data_pipe_lsu_wavefronts_mem_shared_op_st.sum
  l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ldsm.sum
  l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum
  l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum
  sm__warps_active.avg.pct_of_peak_sustained_active
  sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active
  sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active
  smsp__inst_executed.sum
  launch__registers_per_thread
  launch__occupancy_limit_registers
  launch__occupancy_limit_shared_mem
  launch__grid_size
)
SECTIONS=(SpeedOfLight MemoryWorkloadAnalysis MemoryWorkloadAnalysis_Tables Occupancy LaunchStats WarpStateStats SchedulerStats)

known_metrics=$("$NCU" --query-metrics 2>/dev/null | awk '{print $1}')
known_sections=$("$NCU" --list-sections 2>/dev/null)
metrics=()
for m in "${METRICS[@]}"; do
  if grep -qx "${m%%.*}" <<<"$known_metrics"; then metrics+=("$m"); else echo "ncu: metric ${m%%.*} unknown here, dropped"; fi
done
if [ ${#metrics[@]} -eq 0 ]; then # the query gave no list (no permission, another format): ask for them all
  echo "ncu: --query-metrics listed none of the metrics; asking for all of them"
  metrics=("${METRICS[@]}")
fi
sections=()
for s in "${SECTIONS[@]}"; do
  if grep -qw "$s" <<<"$known_sections"; then sections+=(--section "$s"); else echo "ncu: section $s unknown here, dropped"; fi
done
if [ ${#sections[@]} -eq 0 ]; then
  echo "ncu: --list-sections listed none of the sections; asking for all of them"
  for s in "${SECTIONS[@]}"; do sections+=(--section "$s"); done
fi
metric_list=$(IFS=,; echo "${metrics[*]}")

rc=0
# profile DIR [KERNEL]: one dense and one sparse launch into DIR, then their table on stdout
profile() {
  local dir=$1 kernel=${2:-} what
  local kernelArgs=()
  [ -n "$kernel" ] && kernelArgs=(--kernel "$kernel")
  mkdir -p "$dir"
  for what in dense sparse; do
    echo "=== ncu: $what attention, shape $SHAPE${kernel:+, kernel $kernel}" >&2
    "$NCU" --target-processes all --kernel-name regex:Attention --launch-count 1 "${sections[@]}" \
      --metrics "$metric_list" -f -o "$dir/$what" \
      node bench/one-launch.js "$what" --shape "$SHAPE" --threshold "$THR" "${kernelArgs[@]}" 2>&1 | tee "$dir/$what.log" >&2
    [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
    if [ -f "$dir/$what.ncu-rep" ]; then
      "$NCU" --import "$dir/$what.ncu-rep" --page details >"$dir/$what-details.txt" 2>&1 || rc=1
      # --print-units base (no auto-scaled units) where this ncu has it
      "$NCU" --import "$dir/$what.ncu-rep" --page raw --csv --print-units base >"$dir/$what-raw.csv" 2>&1 ||
        "$NCU" --import "$dir/$what.ncu-rep" --page raw --csv >"$dir/$what-raw.csv" 2>&1 || rc=1
    else
      echo "ncu: no report for $what${kernel:+ (kernel $kernel)}" >&2; rc=1
    fi
  done
  python3 bench/ncu_table.py "$dir" "${METRICS[@]}" || rc=1
}

if [ -z "$KERNELS" ]; then
  profile "$WORK/ncu" >"$WORK/ncu.md"
else
  : >"$WORK/ncu.md"
  for kernel in $KERNELS; do
    { echo "### attention kernel '$kernel'"; echo; } >>"$WORK/ncu.md"
    profile "$WORK/ncu/$kernel" "$kernel" >>"$WORK/ncu.md"
    echo >>"$WORK/ncu.md"
  done
fi
cat "$WORK/ncu.md"
exit $rc
