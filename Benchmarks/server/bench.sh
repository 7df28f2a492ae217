#!/usr/bin/env bash
# Server benchmarks (docs/server.md#benchmarks):
#   1. wrk against GET /health
#   2. tool calls, REST vs MCP: POST /tools/echo.echo and MCP tools/call of echo.echo on nova-host,
#      alternated ROUNDS times (medians), and the per-call difference of MCP over REST
#   3. MCP tools/call on a FastMCP server (the `mcp` package's FastMCP) exposing the same no-op
#      tool, same load generator (wrk + mcp_call.lua), ROUNDS times; the ratio of the medians.
#      Two peers, each in a virtualenv of its own (.build-bench-mcp1, .build-bench-mcp2):
#      FastMCP of the Python SDK 1.x (MCP1_SPEC, default mcp==1.30.0) and MCPServer, its 2.x
#      successor (MCP2_SPEC, default mcp==2.3.0), both pinned so that figures from different
#      days compare the same peers (the 1.x peer measured ~1,200/s with an earlier 1.x, ~1,800/s
#      with 1.30.0 on the same VM).
# Builds nothing: NOVA_HOST_BIN (default .build/release/nova-host; `swift build -c release
# --product nova-host`), drivers from NOVA_BENCH_DRIVERS (default drivers/, `make drivers`).
# Knobs: DURATION (s per run, default 10), ROUNDS (default 3), CONNECTIONS (default 32),
# THREADS (default 2), NOVA_BENCH_DATA (parent directory of the data directory, default a
# temporary directory under /tmp; /dev/shm shows the CPU path without the disk's fsync cost).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${NOVA_HOST_BIN:-$ROOT/.build/release/nova-host}
DRIVERS=${NOVA_BENCH_DRIVERS:-$ROOT/drivers}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
PY=${PYTHON:-python3}
[ -x "$BIN" ] || { echo "no nova-host binary at $BIN (swift build -c release --product nova-host, or set NOVA_HOST_BIN)"; exit 1; }
[ -f "$DRIVERS/libnova_echo.so" ] || { echo "no echo driver in $DRIVERS (make drivers)"; exit 1; }
command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }; }
# A virtualenv with one version of the MCP SDK (and uvicorn) per peer, made once.
. "$ROOT/Tests/python-venv.sh"
BASE_PY=$PY
PIP_LOG=$ROOT/.build-bench-pip.log
MCP1_SPEC=${MCP1_SPEC:-mcp==1.30.0}
MCP2_SPEC=${MCP2_SPEC:-mcp==2.3.0}
PEER1=$(venv_python "$ROOT/.build-bench-mcp1" "$PIP_LOG" "$MCP1_SPEC" uvicorn) || { echo "cannot install $MCP1_SPEC (see $PIP_LOG)"; exit 1; }
PEER2=$(venv_python "$ROOT/.build-bench-mcp2" "$PIP_LOG" "$MCP2_SPEC" uvicorn) || { echo "cannot install $MCP2_SPEC (see $PIP_LOG)"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nova-bench-server.XXXXXX")
DATA=$(mktemp -d "${NOVA_BENCH_DATA:-$WORK}/nova-bench-data.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK" "$DATA"; }
trap cleanup EXIT
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1"; exit 1; }
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
bad() { awk '/BAD_RESPONSES/ {print $2}' "$1"; }
non2xx() { awk '/Non-2xx/ {print $NF}' "$1"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The line of the run whose throughput is the median (latencies shown are that run's).
latency() { echo "p50 $(awk '/ 50%/ {print $2}' "$1"), p99 $(awk '/ 99%/ {print $2}' "$1")"; }

KEY="nova_bench_$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
HASH=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
cat >"$WORK/host.json" <<JSON
{"api_keys": [{"id": "bench", "principal": "bench", "role": "user", "sha256": "$HASH"}], "tool_timeout_ms": 10000}
JSON
NPORT=$(free_port)
NURL="http://127.0.0.1:$NPORT"
"$BIN" serve --config "$WORK/host.json" --listen "127.0.0.1:$NPORT" --drivers "$DRIVERS" --data "$DATA/data" \
  --policy "$ROOT/Benchmarks/server/policy.bench.json" --log-level warning 2>"$WORK/nova.log" &
PIDS+=($!)
wait_http "$NURL/health"

echo "== nova-host $("$BIN" --help >/dev/null 2>&1; curl -s "$NURL/version")"
echo "== machine: $(nproc) cores, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds (medians), data in $(df --output=fstype "$DATA" | tail -1) ($DATA)"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$NURL/health" >"$WORK/health.txt"
echo "GET /health                 $(rps "$WORK/health.txt") req/s   ($(latency "$WORK/health.txt"))"

# REST and MCP tool calls on nova-host, alternated so that both see the same machine.
NSESSION=$("$PY" "$ROOT/Benchmarks/server/mcp_session.py" "$NURL/mcp" "Bearer $KEY")
for r in $(seq 1 "$ROUNDS"); do
  WRK_AUTH="Bearer $KEY" WRK_BODY='{"text":"hi"}' wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
    -s "$ROOT/Benchmarks/server/post_json.lua" "$NURL/tools/echo.echo" >"$WORK/tool.$r.txt"
  MCP_SESSION=$NSESSION MCP_AUTH="Bearer $KEY" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
    -s "$ROOT/Benchmarks/server/mcp_call.lua" "$NURL/mcp" >"$WORK/mcp-nova.$r.txt"
done

# MCP tools/call on the two Python peers, same client, one after the other (each stopped after
# its rounds so that it does not share the machine with the next).
peer_rounds() {  # NAME PYTHON
  local port url session pid
  port=$(free_port); url="http://127.0.0.1:$port"
  "$2" "$ROOT/Benchmarks/server/fastmcp_server.py" "$port" >"$WORK/$1.log" 2>&1 &
  pid=$!; PIDS+=($pid)
  wait_http "$url/mcp"
  session=$("$2" "$ROOT/Benchmarks/server/mcp_session.py" "$url/mcp")
  for r in $(seq 1 "$ROUNDS"); do
    MCP_SESSION=$session MCP_AUTH="" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
      -s "$ROOT/Benchmarks/server/mcp_call.lua" "$url/mcp" >"$WORK/$1.$r.txt"
  done
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
}
peer_rounds mcp-fastmcp "$PEER1"
peer_rounds mcp-mcpserver "$PEER2"

# The median of each series, and the run that has it (for its latencies and error counts).
pick() {
  local m; m=$(for f in "$WORK/$1".*.txt; do rps "$f"; done | median)
  for f in "$WORK/$1".*.txt; do [ "$(rps "$f")" = "$m" ] && { echo "$m $f"; return; }; done
  echo "$m $(ls "$WORK/$1".*.txt | head -1)"
}
read -r T TF < <(pick tool); read -r N NF < <(pick mcp-nova); read -r F FF < <(pick mcp-fastmcp); read -r M MF < <(pick mcp-mcpserver)
version() { "$1" -c 'import importlib.metadata as m; print(m.version("mcp"))'; }
all() { for f in "$WORK/$1".*.txt; do printf '%s ' "$(rps "$f")"; done; }
echo "REST POST /tools/echo.echo  $T calls/s   ($(latency "$TF"); non-200: $(bad "$TF"); rounds: $(all tool)) auth + policy + driver + durable episode per call"
echo "MCP tools/call nova-host    $N calls/s   ($(latency "$NF"); bad: $(bad "$NF"); rounds: $(all mcp-nova)) the same, framed as JSON-RPC"
echo "MCP tools/call FastMCP      $F calls/s   ($(latency "$FF"); bad: $(bad "$FF"); rounds: $(all mcp-fastmcp)) mcp $(version "$PEER1"); no auth, no policy, no record"
echo "MCP tools/call MCPServer    $M calls/s   ($(latency "$MF"); bad: $(bad "$MF"); rounds: $(all mcp-mcpserver)) mcp $(version "$PEER2"); the same"
echo "ratio nova-host / FastMCP   $(awk -v n="$N" -v f="$F" 'BEGIN { printf "%.2fx (goal >= 5x)", n / f }')"
echo "ratio nova-host / MCPServer $(awk -v n="$N" -v f="$M" 'BEGIN { printf "%.2fx", n / f }')"
# Per call: the time one call takes of the server's capacity (1/throughput at the same load).
echo "MCP vs REST per call        $(awk -v n="$N" -v t="$T" 'BEGIN { printf "%+.1f us per call (MCP %.1f us, REST %.1f us; MCP/REST throughput %.2f)", 1e6 / n - 1e6 / t, 1e6 / n, 1e6 / t, n / t }')"
