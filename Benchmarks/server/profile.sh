#!/usr/bin/env bash
# CPU profile of `nova-host serve` under tool-call load (docs/server.md#benchmarks), with perf:
#   Benchmarks/server/profile.sh BIN DRIVERS DATA_PARENT mcp|rest OUT [SECONDS]
# starts BIN with its data directory under DATA_PARENT (/dev/shm: no fsync cost), loads it with
# wrk (MCP tools/call on one session, or POST /tools/echo.echo; 32 connections), records
# SECONDS (default 8) with `perf record -g`, and writes OUT.data, OUT.wrk (throughput),
# OUT.self.txt and OUT.children.txt (top symbols by self and by inclusive time).
# Needs perf (Debian: apt-get install -y linux-perf), wrk and python3 with `mcp`.
set -uo pipefail
[ $# -ge 5 ] || { sed -n 2,8p "$0"; exit 2; }
BIN=$1; DRIVERS=$2; DATAP=$3; MODE=$4; OUT=$5; D=${6:-8}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d "$DATAP/nova-prof.XXXXXX")
KEY="nova_bench_$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
HASH=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
echo "{\"api_keys\": [{\"id\": \"bench\", \"principal\": \"bench\", \"role\": \"user\", \"sha256\": \"$HASH\"}], \"tool_timeout_ms\": 10000}" > "$WORK/host.json"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
"$BIN" serve --config "$WORK/host.json" --listen "127.0.0.1:$PORT" --drivers "$DRIVERS" --data "$WORK/data" \
  --policy "$ROOT/Benchmarks/server/policy.bench.json" --log-level warning 2>"$WORK/nova.log" &
SPID=$!
trap 'kill $SPID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 200); do curl -s -o /dev/null "$URL/health" && break; sleep 0.05; done
if [ "$MODE" = mcp ]; then
  S=$(python3 "$ROOT/Benchmarks/server/mcp_session.py" "$URL/mcp" "Bearer $KEY")
  MCP_SESSION=$S MCP_AUTH="Bearer $KEY" wrk -t2 -c32 -d$((D+2))s -s "$ROOT/Benchmarks/server/mcp_call.lua" "$URL/mcp" > "$OUT.wrk" &
else
  WRK_AUTH="Bearer $KEY" WRK_BODY='{"text":"hi"}' wrk -t2 -c32 -d$((D+2))s -s "$ROOT/Benchmarks/server/post_json.lua" "$URL/tools/echo.echo" > "$OUT.wrk" &
fi
WPID=$!
sleep 1
perf record -F 499 -g -p $SPID -o "$OUT.data" -- sleep $D >"$OUT.perf.log" 2>&1 || { echo "perf record failed:"; cat "$OUT.perf.log"; }
wait $WPID
grep -E "Requests/sec|BAD" "$OUT.wrk"
perf report -i "$OUT.data" --no-children --sort symbol --stdio -g none 2>/dev/null | grep -E "^ +[0-9]" | head -40 > "$OUT.self.txt"
perf report -i "$OUT.data" --children --sort symbol --stdio -g none 2>/dev/null | grep -E "^ +[0-9]" | head -120 > "$OUT.children.txt"
echo "top symbols: $OUT.self.txt, $OUT.children.txt"
