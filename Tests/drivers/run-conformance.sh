#!/usr/bin/env bash
# `nova-host drivers test` on every driver `make drivers` installs, with the configuration each
# needs (run under Tests/servers/with-servers.sh: postgres and graphql reach its servers).
# Fails if any driver fails a check.
set -euo pipefail
cd "$(dirname "$0")/../.."
NOVA=${NOVA_HOST_BIN:-$(swift build --show-bin-path)/nova-host}
: "${NOVA_TEST_PG_DSN:?run under Tests/servers/with-servers.sh}"
# mcp_proxy is checked with a real MCP server configured (the Python SDK's, over stdio), so its
# instance lists that server's tools (ABI 1.1) and the harness checks the list.
. Tests/server/e2e-harness.sh
MCP_PY=$(venv mcp2 Tests/server/requirements.txt) || { echo "conformance: cannot make the MCP SDK virtualenv (see $CACHE/pip.log)" >&2; exit 1; }
MCP_STATE=$(mktemp -d "${TMPDIR:-/tmp}/nova-conformance-mcp.XXXXXX")
trap 'rm -rf "$MCP_STATE"' EXIT
config_for() {
  case "$1" in
    shell) printf '{"helper": "%s", "allowed_programs": ["/bin/echo"]}' "$PWD/Sources/Sandbox/build/nova-sandbox" ;;
    postgres) printf '{"dsn": "%s"}' "$NOVA_TEST_PG_DSN" ;;
    graphql) printf '{"endpoint": "%s"}' "$NOVA_TEST_GRAPHQL_URL" ;;
    mcp_proxy) printf '{"servers": [{"name": "upstream", "command": ["%s", "%s", "--state", "%s"]}]}' "$MCP_PY" "$PWD/Tests/mcp_proxy/upstream_server.py" "$MCP_STATE" ;;
    *) printf '{}' ;;
  esac
}
failed=0
checked=0
for so in drivers/*.so; do
  name=$(basename "$so" .so); name=${name#libnova_}
  checked=$((checked + 1))
  "$NOVA" drivers test --config "$(config_for "$name")" "$so" || failed=$((failed + 1))
done
[ "$checked" -ge 7 ] || { echo "conformance: expected at least 7 drivers in drivers/, found $checked (run make drivers)" >&2; exit 1; }
echo "conformance: $checked drivers checked, $failed failed"
[ "$failed" -eq 0 ]
