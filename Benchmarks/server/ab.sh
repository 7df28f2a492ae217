#!/usr/bin/env bash
# Compares the server CPU per call of two nova-host binaries (docs/server.md#benchmarks):
#   Benchmarks/server/ab.sh BIN_A BIN_B [rest|mcp|get:PATH|post:PATH] [PAIRS] [SECONDS]
# runs cpu-per-call.sh on A then B, PAIRS times (default 8, SECONDS each, default 3), and prints
# each pair's CPU per call and calls/s with their B/A ratios, then the medians of the ratios: on
# a VM whose speed drifts by a third within an hour, a pair measured a few seconds apart is the
# comparison that holds.
# Same environment as cpu-per-call.sh (DATA_PARENT, NOVA_BENCH_DRIVERS, CONNECTIONS, PYTHON).
set -uo pipefail
[ $# -ge 2 ] || { sed -n 2,7p "$0"; exit 2; }
A=$1; B=$2; MODE=${3:-rest}; PAIRS=${4:-8}; D=${5:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
# "calls/s CPU-per-call" of one run.
measure() { "$HERE/cpu-per-call.sh" "$1" "$MODE" "$D" | sed -n 's/.*calls\/s \([0-9.]*\), server CPU per call \([0-9.]*\) us.*/\1 \2/p'; }
cpu_ratios=(); rate_ratios=()
for i in $(seq 1 "$PAIRS"); do
  read -r ra ca <<<"$(measure "$A")"; read -r rb cb <<<"$(measure "$B")"
  [ -n "${ca:-}" ] && [ -n "${cb:-}" ] || { echo "pair $i: no figure"; continue; }
  c=$(python3 -c "print(round($cb / $ca, 3))"); r=$(python3 -c "print(round($rb / $ra, 3))")
  cpu_ratios+=("$c"); rate_ratios+=("$r")
  echo "pair $i: A $ca us, $ra calls/s; B $cb us, $rb calls/s; B/A CPU per call $c, calls/s $r"
done
[ ${#cpu_ratios[@]} -gt 0 ] || exit 1
med() { sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f (min %.3f, max %.3f)", m, v[1], v[NR] }'; }
echo "median B/A over ${#cpu_ratios[@]} pairs: CPU per call $(printf '%s\n' "${cpu_ratios[@]}" | med), calls/s $(printf '%s\n' "${rate_ratios[@]}" | med)"
