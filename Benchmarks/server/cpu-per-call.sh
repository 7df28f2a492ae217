#!/usr/bin/env bash
# CPU time the server spends per tool call (docs/server.md#benchmarks):
#   Benchmarks/server/cpu-per-call.sh BIN rest|mcp|get:PATH|post:PATH [SECONDS] [NAME=VALUE...]
# starts BIN (`serve`, data directory under DATA_PARENT, default /dev/shm: no fsync cost; a
# directory on disk measures the durable path) with the NAME=VALUE variables
# in its environment, warms it up for a second, loads it with wrk for SECONDS (default 5;
# CONNECTIONS connections, default 32; POST /tools/echo.echo or MCP tools/call of echo.echo on
# one session; or an authenticated GET of PATH, or a POST of the call's body to PATH: what the HTTP
# side costs without a run) and prints the throughput, the server's utime+stime divided by the calls
# answered, and its threads' voluntary context switches per call. Less sensitive to a busy
# machine than throughput alone; alternate two binaries to compare them. BY_THREAD=1 adds the
# switches and CPU per call of each thread name (which threads hand work to each other).
# ALLOCS=1 adds the server's mallocs per call (a perf uprobe on the jemalloc BIN links, added
# on first use; needs root and linux-perf): allocations are what the call path's CPU follows.
# Needs wrk, curl, and for mcp a python3 with `mcp` (PYTHON, default python3).
set -uo pipefail
[ $# -ge 2 ] || { sed -n 2,15p "$0"; exit 2; }
BIN=$1; MODE=$2; shift 2; D=5
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then D=$1; shift; fi
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
DRIVERS=${NOVA_BENCH_DRIVERS:-$ROOT/drivers}
WORK=$(mktemp -d "${DATA_PARENT:-/dev/shm}/nova-cpu-per-call.XXXXXX")
KEY="nova_bench_$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
HASH=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
echo "{\"api_keys\": [{\"id\": \"bench\", \"principal\": \"bench\", \"role\": \"user\", \"sha256\": \"$HASH\"}], \"tool_timeout_ms\": 10000}" > "$WORK/host.json"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
env "$@" "$BIN" serve --config "$WORK/host.json" --listen "127.0.0.1:$PORT" --drivers "$DRIVERS" --data "$WORK/data" \
  --policy "$ROOT/Benchmarks/server/policy.bench.json" --log-level warning 2>"$WORK/nova.log" &
SPID=$!
trap 'kill $SPID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 200); do curl -s -o /dev/null "$URL/health" && break; sleep 0.05; done
CONNS=${CONNECTIONS:-32}; THREADS=$(( CONNS < 2 ? 1 : 2 ))
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SPID/stat"; }
load() {
  if [[ "$MODE" == get:* ]]; then
    wrk -t"$THREADS" -c"$CONNS" -d"$1"s -H "Authorization: Bearer $KEY" "$URL${MODE#get:}"
  elif [[ "$MODE" == post:* ]]; then
    WRK_AUTH="Bearer $KEY" WRK_BODY='{"text":"hi"}' wrk -t"$THREADS" -c"$CONNS" -d"$1"s -s "$ROOT/Benchmarks/server/post_json.lua" "$URL${MODE#post:}"
  elif [ "$MODE" = mcp ]; then
    MCP_SESSION=$SESSION MCP_AUTH="Bearer $KEY" wrk -t"$THREADS" -c"$CONNS" -d"$1"s -s "$ROOT/Benchmarks/server/mcp_call.lua" "$URL/mcp"
  else
    WRK_AUTH="Bearer $KEY" WRK_BODY='{"text":"hi"}' wrk -t"$THREADS" -c"$CONNS" -d"$1"s -s "$ROOT/Benchmarks/server/post_json.lua" "$URL/tools/echo.echo"
  fi
}
[ "$MODE" = mcp ] && SESSION=$("$PY" "$ROOT/Benchmarks/server/mcp_session.py" "$URL/mcp" "Bearer $KEY")
load 1 >/dev/null
switches() { cat /proc/$SPID/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}'; }
# One line per thread: id, name, voluntary switches, CPU ticks.
by_thread() {
  for t in /proc/$SPID/task/*; do
    echo "${t##*/} $( (tr ' ' _ < "$t/comm") 2>/dev/null) $(awk '/^voluntary_ctxt/ {print $2}' "$t/status" 2>/dev/null) $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null)"
  done | sort
}
c0=$(cpu_ticks); s0=$(switches)
[ -n "${BY_THREAD:-}" ] && by_thread > "$WORK/threads0"
if [ -n "${ALLOCS:-}" ]; then
  JEMALLOC=$(awk '/libjemalloc/ {print $NF; exit}' "/proc/$SPID/maps")
  [ -n "$JEMALLOC" ] || { echo "ALLOCS=1: $BIN does not map libjemalloc" >&2; exit 1; }
  perf probe -l 2>/dev/null | grep -q 'probe_libjemalloc:malloc ' || perf probe -q -x "$JEMALLOC" --add malloc || exit 1
  perf stat -x, -e probe_libjemalloc:malloc -p "$SPID" -o "$WORK/allocs" &
  PERF=$!
  sleep 0.2
fi
load "$D" > "$WORK/wrk"
c1=$(cpu_ticks); s1=$(switches)
if [ -n "${ALLOCS:-}" ]; then kill -INT $PERF; wait $PERF; fi
[ -n "${BY_THREAD:-}" ] && by_thread > "$WORK/threads1"
n=$(awk '/requests in/ {print $1}' "$WORK/wrk")
rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk")
hz=$(getconf CLK_TCK)
echo "$MODE, $CONNS connections: calls/s $rps, server CPU per call $(python3 -c "print(round(($c1 - $c0) * 1e6 / $hz / $n, 1))") us, context switches per call $(python3 -c "print(round(($s1 - $s0) / $n, 1))")"
if [ -n "${ALLOCS:-}" ]; then
  m=$(awk -F, '/probe_libjemalloc:malloc/ {print $1}' "$WORK/allocs")
  echo "  mallocs per call $(python3 -c "print(round($m / $n, 1))") (the probe counts from 0.2 s before the load to its end)"
fi
if [ -n "${BY_THREAD:-}" ]; then
  echo "per thread name (threads alive at both ends): threads, voluntary switches per call, CPU us per call"
  join "$WORK/threads0" "$WORK/threads1" | awk -v n="$n" -v hz="$hz" 'NF == 7 {k = $2; c[k]++; v[k] += $6 - $3; t[k] += $7 - $4}
    END {for (k in c) printf "  %-20s %2d  %6.2f  %8.1f\n", k, c[k], v[k] / n, t[k] * 1e6 / hz / n}'
fi
