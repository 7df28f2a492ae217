#!/usr/bin/env bash
# End-to-end tests of `nova-host serve` and `nova-host mcp` with real clients:
#   - the Python MCP SDK over streamable HTTP (/mcp) and over stdio (`nova-host mcp`),
#   - REST checks and graceful shutdown of a real process (SIGTERM),
#   - schemathesis against docs/openapi.yaml and the live server (bounded examples; any 5xx
#     or response that does not match the document fails).
#   (The SSE streams, the state watch and the bus stream, are left out: they last until the client
#   closes them; AgentStateTests and BusRouteTests read them over a socket.)
# Builds nothing: the binary is $NOVA_HOST_BIN or .build/debug/nova-host; drivers come from
# drivers/ (`make drivers`). Ends with `e2e: N passed, M failed`; exits non-zero if M > 0.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${NOVA_HOST_BIN:-$ROOT/.build/debug/nova-host}
DRIVERS=${NOVA_E2E_DRIVERS:-$ROOT/drivers}
EXAMPLES=${NOVA_E2E_SCHEMATHESIS_EXAMPLES:-25}
SUITE=e2e
. Tests/server/e2e-harness.sh

[ -x "$BIN" ] || { fail "setup: no nova-host binary at $BIN (build it, or set NOVA_HOST_BIN)"; summary; }
[ -f "$DRIVERS/libnova_echo.so" ] || { fail "setup: no echo driver in $DRIVERS (run make drivers)"; summary; }
command -v "$BASE_PY" >/dev/null || { fail "setup: $BASE_PY not found"; summary; }
# Two virtualenvs under a cache dir, made once: the newest MCP SDK (2.x, with schemathesis) and
# 1.x. The MCP tests run under both; everything else under the first.
PY=$(venv mcp2 Tests/server/requirements.txt) || { fail "setup: virtualenv with Tests/server/requirements.txt (see $CACHE/pip.log)"; summary; }
PY_MCP1=$(venv mcp1 Tests/server/requirements-mcp1.txt) || { fail "setup: virtualenv with Tests/server/requirements-mcp1.txt (see $CACHE/pip.log)"; summary; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nova-e2e.XXXXXX")
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/data" "$WORK/stdio-data"
ADMIN_KEY="nova_e2e_admin_$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
USER_KEY="nova_e2e_alice_$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
CONFIG_JSON=$(cat <<JSON
{"api_keys": [
  {"id": "e2e-admin", "principal": "admin", "role": "admin", "sha256": "$(sha "$ADMIN_KEY")"},
  {"id": "e2e-alice", "principal": "alice", "role": "user", "sha256": "$(sha "$USER_KEY")"}],
 "tool_timeout_ms": 5000, "shutdown_grace_seconds": 5,
 "mcp": {"allowed_hosts": ["127.0.0.1:*"]}}
JSON
)
echo "$CONFIG_JSON" >"$WORK/host.json"
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
"$BIN" serve --config "$WORK/host.json" --listen "127.0.0.1:$PORT" --drivers "$DRIVERS" --data "$WORK/data" \
  --policy "$ROOT/Tests/server/policy.e2e.json" --log-level warning 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 200); do
  curl -fsS "$URL/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.05
done
if ! curl -fsS "$URL/health" >/dev/null 2>&1; then
  fail "setup: nova-host serve did not start"; cat "$WORK/server.log"; summary
fi

# The server allocates through jemalloc (Package.swift `allocator`): it is mapped in the process.
if grep -q libjemalloc "/proc/$SERVER_PID/maps"; then
  echo "ok the server allocates through jemalloc"; PASSED=$((PASSED + 1))
else
  fail "the server does not map libjemalloc (Package.swift links it into nova-host)"
fi

export NOVA_URL=$URL NOVA_USER_KEY=$USER_KEY NOVA_ADMIN_KEY=$ADMIN_KEY NOVA_HOST_BIN=$BIN NOVA_E2E_DRIVERS=$DRIVERS \
  NOVA_E2E_POLICY=$ROOT/Tests/server/policy.e2e.json NOVA_E2E_STDIO_DATA=$WORK/stdio-data NOVA_E2E_CONFIG_JSON=$CONFIG_JSON
count "$PY" Tests/server/e2e_rest.py
count "$PY" Tests/server/e2e_jsonrpc.py
count "$PY" Tests/server/e2e_policy.py
count "$PY" Tests/server/e2e_lifecycle.py
count "$PY" Tests/server/e2e_templates_approvals.py
echo "== MCP SDK $("$PY" -c 'import importlib.metadata as m; print(m.version("mcp"))')"
count "$PY" Tests/server/e2e_mcp.py
echo "== MCP SDK $("$PY_MCP1" -c 'import importlib.metadata as m; print(m.version("mcp"))')"
count "$PY_MCP1" Tests/server/e2e_mcp.py

echo "== schemathesis ($EXAMPLES examples per operation) against docs/openapi.yaml and $URL"
if "$PY" -m schemathesis.cli run docs/openapi.yaml --url "$URL" -H "Authorization: Bearer $ADMIN_KEY" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --exclude-path-regex '/(watch|stream)$' --max-examples "$EXAMPLES" --seed 7 --no-color --suppress-health-check all --request-timeout 30 >"$WORK/schemathesis.log" 2>&1; then
  tail -n 15 "$WORK/schemathesis.log"; echo "ok schemathesis"; PASSED=$((PASSED + 1))
else
  cat "$WORK/schemathesis.log"; fail "schemathesis"
fi

kill -TERM "$SERVER_PID"
if wait "$SERVER_PID"; then echo "ok serve: SIGTERM exits 0"; PASSED=$((PASSED + 1)); else fail "serve: SIGTERM exit status $?"; fi
SERVER_PID=
if grep -q '"level":"critical"\|"level":"error"' "$WORK/server.log"; then
  grep '"level":"error"\|"level":"critical"' "$WORK/server.log" | head -20; fail "serve: errors in the server log"
else
  echo "ok serve: no errors logged"; PASSED=$((PASSED + 1))
fi
# The JSON-RPC mistakes e2e_jsonrpc.py sends are the client's: logged, at warning.
if grep '"message":"mcp message refused"' "$WORK/server.log" | grep -q '"level":"warning"'; then
  echo "ok serve: refused MCP messages logged at warning"; PASSED=$((PASSED + 1))
else
  fail "serve: refused MCP messages logged at warning"
fi
summary
