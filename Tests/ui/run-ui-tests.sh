#!/usr/bin/env bash
# Browser tests of the web dashboard (/ui) against a real `nova-host serve`: headless Chromium
# driven by Selenium (ui_test.py), plus an HTML5 validity check (html5lib, strict) of every
# page and the CSP header of every /ui response. Installs what it needs: Debian's chromium and
# chromium-driver (apt-get, when run as root and they are missing) and a virtualenv with
# Tests/ui/requirements.txt under $NOVA_UI_CACHE (default ~/.cache/nova-ui). Builds nothing:
# the binary is $NOVA_HOST_BIN or .build/debug/nova-host; drivers come from drivers/
# (`make drivers`). Screenshots go to Tests/ui/artifacts/. Ends with `ui: N passed, M failed`.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${NOVA_HOST_BIN:-$ROOT/.build/debug/nova-host}
DRIVERS=${NOVA_UI_DRIVERS:-$ROOT/drivers}
PASSED=0
FAILED=0
fail() { echo "FAIL $1"; FAILED=$((FAILED + 1)); }
summary() { echo "ui: $PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]; exit $?; }

[ -x "$BIN" ] || { fail "setup: no nova-host binary at $BIN (build it, or set NOVA_HOST_BIN)"; summary; }
[ -f "$DRIVERS/libnova_echo.so" ] || { fail "setup: no echo driver in $DRIVERS (run make drivers)"; summary; }
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing chromium and chromium-driver (apt-get)"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver \
      || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; }; } >/tmp/nova-ui-apt.log 2>&1
  fi
  command -v chromium >/dev/null && command -v chromedriver >/dev/null \
    || { fail "setup: chromium and chromedriver are needed (apt-get install chromium chromium-driver; log /tmp/nova-ui-apt.log)"; summary; }
fi
BASE_PY=${PYTHON:-python3}
CACHE=${NOVA_UI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nova-ui}
mkdir -p "$CACHE"
. Tests/python-venv.sh
PY=$(venv_python "$CACHE/venv" "$CACHE/pip.log" -r Tests/ui/requirements.txt) \
  || { fail "setup: virtualenv with Tests/ui/requirements.txt (see $CACHE/pip.log)"; summary; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nova-ui.XXXXXX")
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/data"
key() { echo "nova_ui_$1_$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"; }
ADMIN_KEY=$(key admin); ALICE_KEY=$(key alice); BOB_KEY=$(key bob)
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
cat >"$WORK/host.json" <<JSON
{"api_keys": [
  {"id": "ui-admin", "principal": "admin", "role": "admin", "sha256": "$(sha "$ADMIN_KEY")"},
  {"id": "ui-alice", "principal": "alice", "role": "user", "sha256": "$(sha "$ALICE_KEY")"},
  {"id": "ui-bob", "principal": "bob", "role": "user", "sha256": "$(sha "$BOB_KEY")"}],
 "tool_timeout_ms": 5000, "shutdown_grace_seconds": 5}
JSON
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
"$BIN" serve --config "$WORK/host.json" --listen "127.0.0.1:$PORT" --drivers "$DRIVERS" --data "$WORK/data" \
  --policy "$ROOT/Tests/ui/policy.ui.json" --log-level warning 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 200); do
  curl -fsS "$URL/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.05
done
curl -fsS "$URL/health" >/dev/null 2>&1 || { fail "setup: nova-host serve did not start"; cat "$WORK/server.log"; summary; }

mkdir -p Tests/ui/artifacts
out=$(NOVA_URL=$URL NOVA_ADMIN_KEY=$ADMIN_KEY NOVA_ALICE_KEY=$ALICE_KEY NOVA_BOB_KEY=$BOB_KEY \
      NOVA_UI_ARTIFACTS=$ROOT/Tests/ui/artifacts "$PY" Tests/ui/ui_test.py 2>&1); code=$?
echo "$out"
PASSED=$((PASSED + $(grep -c '^ok ' <<<"$out"))); bad=$(grep -c '^FAIL ' <<<"$out"); FAILED=$((FAILED + bad))
[ "$code" -ne 0 ] && [ "$bad" -eq 0 ] && fail "ui_test.py exited $code"
if [ "$FAILED" -gt 0 ]; then echo "--- server log (tail)"; tail -n 30 "$WORK/server.log"; fi
summary
