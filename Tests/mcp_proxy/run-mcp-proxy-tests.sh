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
SUITE=mcp_proxy
# fail, summary, count, venv (the virtualenvs run-e2e.sh uses too).
. Tests/server/e2e-harness.sh

[ -x "$BIN" ] || { fail "setup: no nova-host binary at $BIN (build it, or set NOVA_HOST_BIN)"; summary; }
[ -f "$DRIVER" ] || { fail "setup: no $DRIVER (run make drivers)"; summary; }
command -v "$BASE_PY" >/dev/null || { fail "setup: $BASE_PY not found"; summary; }
PY=$(venv mcp2 Tests/server/requirements.txt) || { fail "setup: virtualenv with Tests/server/requirements.txt (see $CACHE/pip.log)"; summary; }
PY_MCP1=$(venv mcp1 Tests/server/requirements-mcp1.txt) || { fail "setup: virtualenv with Tests/server/requirements-mcp1.txt (see $CACHE/pip.log)"; summary; }

export NOVA_HOST_BIN=$BIN NOVA_MCP_DRIVER=$DRIVER
# The test client is the 2.x venv's Python (only the standard library is used); the upstream
# servers run on the SDK under test.
count env UPSTREAM_PYTHON="$PY" SDK=mcp2 FULL=1 "$PY" Tests/mcp_proxy/test_mcp_proxy.py
# The 1.x run also puts the driver in a runner child (isolation: process): tool lists changed
# there reach the host through the runner.
count env UPSTREAM_PYTHON="$PY_MCP1" SDK=mcp1 FULL=0 ISOLATION=process "$PY" Tests/mcp_proxy/test_mcp_proxy.py
summary
