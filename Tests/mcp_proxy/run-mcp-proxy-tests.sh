#!/usr/bin/env bash
# The mcp_proxy driver against real MCP servers written with the Python `mcp` SDK
# (Tests/mcp_proxy/upstream_server.py, over stdio and streamable HTTP), through `nova-host run`,
# a live `nova-host serve` and `nova-host drivers test`: namespaced tools with the remote schemas,
# a call recorded in its episode, remote errors, a policy denial, a deadline and a REST cancel
# observed by the server (notifications/cancelled), a stdio server that dies and is restarted,
# list_changed, a reload, the upstream Authorization header from the environment and the
# caller's bearer never forwarded. Everything under the newest SDK (2.x); the core again with
# upstream servers on the 1.x SDK.
# Builds nothing: the binary is $NOVA_HOST_BIN or .build/debug/nova-host; the driver comes from
# drivers/ (`make drivers`). Ends with `mcp_proxy: N passed, M failed`; exits non-zero if M > 0.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${NOVA_HOST_BIN:-$ROOT/.build/debug/nova-host}
DRIVER=${NOVA_MCP_DRIVER:-$ROOT/drivers/libnova_mcp_proxy.so}
PASSED=0
FAILED=0
fail() { echo "FAIL $1"; FAILED=$((FAILED + 1)); }
summary() { echo "mcp_proxy: $PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]; exit $?; }

[ -x "$BIN" ] || { fail "setup: no nova-host binary at $BIN (build it, or set NOVA_HOST_BIN)"; summary; }
[ -f "$DRIVER" ] || { fail "setup: no $DRIVER (run make drivers)"; summary; }
BASE_PY=${PYTHON:-python3}
command -v "$BASE_PY" >/dev/null || { fail "setup: $BASE_PY not found"; summary; }
# The same virtualenvs as Tests/server/run-e2e.sh (made once under the cache dir).
. Tests/server/mcp-venvs.sh
PY=$(venv mcp2 Tests/server/requirements.txt) || { fail "setup: virtualenv with Tests/server/requirements.txt (see $CACHE/pip.log)"; summary; }
PY_MCP1=$(venv mcp1 Tests/server/requirements-mcp1.txt) || { fail "setup: virtualenv with Tests/server/requirements-mcp1.txt (see $CACHE/pip.log)"; summary; }

count() {  # runs a test script, echoing its output, and adds its ok/FAIL lines to the totals
  local out; out=$("$@" 2>&1); local code=$?
  echo "$out"
  local ok bad; ok=$(grep -c '^ok ' <<<"$out"); bad=$(grep -c '^FAIL ' <<<"$out")
  PASSED=$((PASSED + ok)); FAILED=$((FAILED + bad))
  if [ "$code" -ne 0 ] && [ "$bad" -eq 0 ]; then fail "$* exited $code"; fi
}
export NOVA_HOST_BIN=$BIN NOVA_MCP_DRIVER=$DRIVER
# The test client is the 2.x venv's Python (only the standard library is used); the upstream
# servers run on the SDK under test.
count env UPSTREAM_PYTHON="$PY" SDK=mcp2 FULL=1 "$PY" Tests/mcp_proxy/test_mcp_proxy.py
# The 1.x run also puts the driver in a runner child (isolation: process): tool lists changed
# there reach the host through the runner.
count env UPSTREAM_PYTHON="$PY_MCP1" SDK=mcp1 FULL=0 ISOLATION=process "$PY" Tests/mcp_proxy/test_mcp_proxy.py
summary
