#!/usr/bin/env bash
# Compares the server CPU per call of two nova-host binaries (docs/server.md#benchmarks):
#   Benchmarks/server/ab.sh BIN_A BIN_B [rest|mcp|get:PATH|post:PATH] [PAIRS] [SECONDS]
# runs cpu-per-call.sh on A then B, PAIRS times (default 8, SECONDS each, default 3), and prints
# each pair's CPU per call and B/A, then the median of the ratios: on a VM whose speed drifts by
# a third within an hour, a pair measured a few seconds apart is the comparison that holds.
# Same environment as cpu-per-call.sh (DATA_PARENT, NOVA_BENCH_DRIVERS, CONNECTIONS, PYTHON).
set -uo pipefail
[ $# -ge 2 ] || { sed -n 2,7p "$0"; exit 2; }
A=$1; B=$2; MODE=${3:-rest}; PAIRS=${4:-8}; D=${5:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
cpu() { "$HERE/cpu-per-call.sh" "$1" "$MODE" "$D" | sed -n 's/.*server CPU per call \([0-9.]*\) us.*/\1/p'; }
ratios=()
for i in $(seq 1 "$PAIRS"); do
  a=$(cpu "$A"); b=$(cpu "$B")
  [ -n "$a" ] && [ -n "$b" ] || { echo "pair $i: no figure (a='$a' b='$b')"; continue; }
  r=$(python3 -c "print(round($b / $a, 3))")
  ratios+=("$r")
  echo "pair $i: A $a us, B $b us per call, B/A $r"
done
[ ${#ratios[@]} -gt 0 ] || exit 1
printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "median B/A over %d pairs: %.3f (min %.3f, max %.3f)\n", NR, m, v[1], v[NR] }'
