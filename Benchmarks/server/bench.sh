#!/usr/bin/env bash
# Server benchmarks (docs/server.md#benchmarks):
#   1. wrk against GET /health and POST /tools/echo.echo (one call through policy + an episode)
#   2. MCP tools/call throughput: nova-host /mcp vs a FastMCP server (the `mcp` package's FastMCP)
#      exposing the same no-op tool, same load generator (wrk + mcp_call.lua), and their ratio.
# Builds nothing: NOVA_HOST_BIN (default .build/release/nova-host; `swift build -c release
# --product nova-host`), drivers from NOVA_BENCH_DRIVERS (default drivers/, `make drivers`).
# Knobs: DURATION (s, default 10), CONNECTIONS (default 32), THREADS (default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${NOVA_HOST_BIN:-$ROOT/.build/release/nova-host}
DRIVERS=${NOVA_BENCH_DRIVERS:-$ROOT/drivers}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
PY=${PYTHON:-python3}
[ -x "$BIN" ] || { echo "no nova-host binary at $BIN (swift build -c release --product nova-host, or set NOVA_HOST_BIN)"; exit 1; }
[ -f "$DRIVERS/libnova_echo.so" ] || { echo "no echo driver in $DRIVERS (make drivers)"; exit 1; }
command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }; }
"$PY" -m pip install -q --disable-pip-version-check 'mcp>=1.9,<2' >/dev/null

WORK=$(mktemp -d /tmp/nova-bench-server.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1"; exit 1; }
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
bad() { awk '/BAD_RESPONSES/ {print $2}' "$1"; }
non2xx() { awk '/Non-2xx/ {print $NF}' "$1"; }

KEY="nova_bench_$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
HASH=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
cat >"$WORK/host.json" <<JSON
{"api_keys": [{"id": "bench", "principal": "bench", "role": "user", "sha256": "$HASH"}], "tool_timeout_ms": 10000}
JSON
NPORT=$(free_port)
NURL="http://127.0.0.1:$NPORT"
"$BIN" serve --config "$WORK/host.json" --listen "127.0.0.1:$NPORT" --drivers "$DRIVERS" --data "$WORK/data" \
  --policy "$ROOT/Benchmarks/server/policy.bench.json" --log-level warning 2>"$WORK/nova.log" &
PIDS+=($!)
wait_http "$NURL/health"

echo "== nova-host $("$BIN" --help >/dev/null 2>&1; curl -s "$NURL/version")"
echo "== machine: $(nproc) cores, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$NURL/health" >"$WORK/health.txt"
echo "GET /health                 $(rps "$WORK/health.txt") req/s   (p50 $(awk '/ 50%/ {print $2}' "$WORK/health.txt"), p99 $(awk '/ 99%/ {print $2}' "$WORK/health.txt"))"
WRK_AUTH="Bearer $KEY" WRK_BODY='{"text":"hi"}' wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
  -s "$ROOT/Benchmarks/server/post_json.lua" "$NURL/tools/echo.echo" >"$WORK/tool.txt"
echo "POST /tools/echo.echo       $(rps "$WORK/tool.txt") req/s   (p50 $(awk '/ 50%/ {print $2}' "$WORK/tool.txt"), p99 $(awk '/ 99%/ {print $2}' "$WORK/tool.txt"); non-200: $(bad "$WORK/tool.txt"); each call = policy + driver + durable episode)"

# MCP tools/call: nova-host vs FastMCP, same client.
NSESSION=$("$PY" "$ROOT/Benchmarks/server/mcp_session.py" "$NURL/mcp" "Bearer $KEY")
MCP_SESSION=$NSESSION MCP_AUTH="Bearer $KEY" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
  -s "$ROOT/Benchmarks/server/mcp_call.lua" "$NURL/mcp" >"$WORK/mcp-nova.txt"
FPORT=$(free_port)
FURL="http://127.0.0.1:$FPORT"
"$PY" "$ROOT/Benchmarks/server/fastmcp_server.py" "$FPORT" >"$WORK/fastmcp.log" 2>&1 &
PIDS+=($!)
wait_http "$FURL/mcp"
FSESSION=$("$PY" "$ROOT/Benchmarks/server/mcp_session.py" "$FURL/mcp")
MCP_SESSION=$FSESSION MCP_AUTH="" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
  -s "$ROOT/Benchmarks/server/mcp_call.lua" "$FURL/mcp" >"$WORK/mcp-fastmcp.txt"
N=$(rps "$WORK/mcp-nova.txt"); F=$(rps "$WORK/mcp-fastmcp.txt")
echo "MCP tools/call nova-host    $N calls/s   (p50 $(awk '/ 50%/ {print $2}' "$WORK/mcp-nova.txt"), p99 $(awk '/ 99%/ {print $2}' "$WORK/mcp-nova.txt"); bad: $(bad "$WORK/mcp-nova.txt"); auth + policy + durable episode per call)"
echo "MCP tools/call FastMCP      $F calls/s   (p50 $(awk '/ 50%/ {print $2}' "$WORK/mcp-fastmcp.txt"), p99 $(awk '/ 99%/ {print $2}' "$WORK/mcp-fastmcp.txt"); bad: $(bad "$WORK/mcp-fastmcp.txt"); no auth, no policy, no record)"
echo "ratio nova-host / FastMCP   $(awk -v n="$N" -v f="$F" 'BEGIN { printf "%.1fx (goal >= 5x)", n / f }')"
