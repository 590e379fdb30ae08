#!/usr/bin/env bash
# A stand-in for Nsight Compute with just enough of its command line for bench/ncu-attention.sh
# to run without a GPU (test/gpu-run.test.ts): it knows two metrics and two sections, runs the
# profiled command on the CPU backend, and reports fixed counts: gpu__time_duration.sum 4e6 ns
# (dense) and 1.5e6 ns (sparse), dram__bytes_read.sum 1000 bytes for both.
case "$1" in
  --query-metrics) printf 'Device GH100\n----\ngpu__time_duration  total time\ndram__bytes_read  bytes read\n'; exit 0 ;;
  --list-sections) printf 'Identifier  Display Name\nSpeedOfLight  GPU Speed Of Light\nOccupancy  Occupancy\n'; exit 0 ;;
  --import)
    what=$(basename "$2" .ncu-rep)
    if [[ " $* " == *" raw "* ]]; then
      t=$([ "$what" = dense ] && echo 4,000,000 || echo 1,500,000)
      printf '"ID","Kernel Name","gpu__time_duration.sum","dram__bytes_read.sum"\n"","","nsecond","byte"\n"0","fastAttentionKernel","%s","1000"\n' "$t"
    else
      echo "details of $what"
    fi
    exit 0 ;;
esac
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out=$2; shift 2 ;;
    node) break ;;
    *) shift ;;
  esac
done
"$@" --backend cpu && touch "$out.ncu-rep"
