#!/usr/bin/env bash
# The client SDKs (sdk/python, sdk/typescript) against a real `nova-host serve`:
#   - the generated models and the sync client are what scripts/gen-sdk.py makes from
#     docs/openapi.yaml and _async_client.py now (a drift fails),
#   - `pip install ./sdk/python` into a virtualenv, mypy --strict on it, then pytest (Tests/sdk/python/),
#   - the TypeScript SDK compiled with tsc (Debian node-typescript; apt-get when root and it is
#     missing), its declarations type-checked against a usage file, then `node --test`
#     (Tests/sdk/typescript/).
# Both suites call every SDK method at least once (their last test checks it) and check auth
# failures (API key and JWT), a 429 retried after Retry-After, a 503 (a second server that is not
# ready) retried with backoff, pagination across pages and the SSE streams.
# Builds nothing: the binary is $NOVA_HOST_BIN or .build/debug/nova-host; drivers come from
# drivers/ (`make drivers`). Ends with `sdk: N passed, M failed`; exits non-zero if M > 0.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${NOVA_HOST_BIN:-$ROOT/.build/debug/nova-host}
DRIVERS=${NOVA_SDK_DRIVERS:-$ROOT/drivers}
PASSED=0
FAILED=0
fail() { echo "FAIL $1"; FAILED=$((FAILED + 1)); }
pass() { echo "ok $1"; PASSED=$((PASSED + 1)); }
summary() { echo "sdk: $PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]; exit $?; }

[ -x "$BIN" ] || { fail "setup: no nova-host binary at $BIN (build it, or set NOVA_HOST_BIN)"; summary; }
[ -f "$DRIVERS/libnova_echo.so" ] || { fail "setup: no echo driver in $DRIVERS (run make drivers)"; summary; }
BASE_PY=${PYTHON:-python3}
command -v "$BASE_PY" >/dev/null || { fail "setup: $BASE_PY not found"; summary; }
command -v node >/dev/null || { fail "setup: node not found (scripts/install-deps.sh test installs it)"; summary; }
if ! command -v tsc >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing node-typescript (apt-get)"
  { DEBIAN_FRONTEND=noninteractive apt-get install -y node-typescript \
    || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y node-typescript; }; } >/tmp/nova-sdk-apt.log 2>&1
fi
command -v tsc >/dev/null || { fail "setup: tsc is needed (apt-get install node-typescript; log /tmp/nova-sdk-apt.log)"; summary; }

CACHE=${NOVA_SDK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nova-sdk}
mkdir -p "$CACHE"
. Tests/python-venv.sh
PY=$(venv_python "$CACHE/venv" "$CACHE/pip.log" -r Tests/sdk/requirements.txt) \
  || { fail "setup: virtualenv with Tests/sdk/requirements.txt (see $CACHE/pip.log)"; summary; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nova-sdk.XXXXXX")
PIDS=
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT

echo "== generated files against docs/openapi.yaml (scripts/gen-sdk.py --check)"
if "$PY" scripts/gen-sdk.py --check >"$WORK/gen.log" 2>&1; then pass "gen-sdk: the committed models and sync client are current"
else cat "$WORK/gen.log"; fail "gen-sdk: the committed generated files drifted from docs/openapi.yaml (run scripts/gen-sdk.py)"; fi

echo "== pip install ./sdk/python"
# A copy, so that the build leaves nothing in the source tree; the installed package is what the tests import.
cp -r sdk/python "$WORK/python-src"
if "$PY" -m pip install -q --disable-pip-version-check --force-reinstall "$WORK/python-src" >"$WORK/pip.log" 2>&1; then
  pass "pip install ./sdk/python"
else
  cat "$WORK/pip.log"; fail "pip install ./sdk/python"; summary
fi

echo "== mypy --strict sdk/python/nova_host_client (the package ships py.typed)"
if "$PY" -m mypy --strict --cache-dir "$WORK/mypy" sdk/python/nova_host_client >"$WORK/mypy.log" 2>&1; then
  pass "mypy --strict: the Python SDK's type hints check"
else
  cat "$WORK/mypy.log"; fail "mypy --strict sdk/python/nova_host_client"
fi

echo "== tsc (TypeScript $(tsc --version | sed 's/Version //'))"
mkdir -p "$WORK/ts"
# usage.ts imports ./dist/index.js: beside the compiled SDK it is checked against the .d.ts files.
cp Tests/sdk/typescript/usage.ts "$WORK/ts/usage.ts"
if tsc -p sdk/typescript/tsconfig.json --outDir "$WORK/ts/dist" >"$WORK/tsc.log" 2>&1 \
   && tsc --noEmit --strict --target ES2020 --module ES2020 --moduleResolution node --lib ES2020,DOM "$WORK/ts/usage.ts" >>"$WORK/tsc.log" 2>&1; then
  pass "tsc: the SDK compiles (strict) and a usage file type-checks against its declarations"
else
  cat "$WORK/tsc.log"; fail "tsc"
fi

# The server: an admin and a user key, a JWT (HS256) key, the policy above, a data dir.
ADMIN_KEY="nova_sdk_admin_$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
USER_KEY="nova_sdk_alice_$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
JWT_SECRET=$("$PY" -c 'import secrets; print(secrets.token_hex(32))')
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
cat >"$WORK/host.json" <<JSON
{"api_keys": [
  {"id": "sdk-admin", "principal": "admin", "role": "admin", "sha256": "$(sha "$ADMIN_KEY")"},
  {"id": "sdk-alice", "principal": "alice", "role": "user", "sha256": "$(sha "$USER_KEY")"}],
 "jwt": {"issuer": "nova-sdk-tests", "audience": "nova-host", "keys": [{"kid": "sdk", "alg": "HS256", "secret_env": "NOVA_SDK_JWT_SECRET"}]},
 "tool_timeout_ms": 5000, "shutdown_grace_seconds": 5}
JSON
start_server() {  # start_server NAME DRIVERS: serves in the background; sets URL and PIDS
  local port; port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  URL="http://127.0.0.1:$port"
  mkdir -p "$WORK/$1-data"
  NOVA_SDK_JWT_SECRET=$JWT_SECRET "$BIN" serve --config "$WORK/host.json" --listen "127.0.0.1:$port" --drivers "$2" \
    --data "$WORK/$1-data" --policy "$ROOT/Tests/sdk/policy.sdk.json" --log-level warning 2>"$WORK/$1.log" &
  local pid=$!
  PIDS="$PIDS $pid"
  for _ in $(seq 1 200); do
    curl -fsS "$URL/health" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  fail "setup: nova-host serve ($1) did not start"; cat "$WORK/$1.log"; summary
}
# A second server whose drivers directory is gone once it runs: /ready is a real 503 (not_ready,
# no Retry-After), for the backoff path of the retries.
mkdir -p "$WORK/unready-drivers"
cp "$DRIVERS/libnova_echo.so" "$WORK/unready-drivers/"
start_server unready "$WORK/unready-drivers"
UNREADY_URL=$URL
rm -rf "$WORK/unready-drivers"
start_server main "$DRIVERS"
export NOVA_URL=$URL NOVA_UNREADY_URL=$UNREADY_URL NOVA_ADMIN_KEY=$ADMIN_KEY NOVA_USER_KEY=$USER_KEY NOVA_JWT_SECRET=$JWT_SECRET \
  NOVA_JWT_ISSUER=nova-sdk-tests NOVA_JWT_AUDIENCE=nova-host NOVA_JWT_KID=sdk

echo "== Python SDK (pytest)"
# Run from the work dir so that `import nova_host_client` is the installed package, not sdk/python.
(cd "$WORK" && "$PY" -m pytest -q -p no:cacheprovider -W error -o asyncio_mode=auto "$ROOT/Tests/sdk/python") >"$WORK/pytest.log" 2>&1
code=$?
cat "$WORK/pytest.log"
line=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed)' "$WORK/pytest.log" | tail -1)
ok=$(grep -oE '[0-9]+ passed' <<<"$line" | cut -d' ' -f1); bad=0
for n in $(grep -oE '[0-9]+ (failed|errors?)' <<<"$line" | cut -d' ' -f1); do bad=$((bad + n)); done
PASSED=$((PASSED + ${ok:-0})); FAILED=$((FAILED + bad))
[ "$code" -ne 0 ] && [ "$bad" -eq 0 ] && fail "pytest exited $code"

echo "== TypeScript SDK (node --test)"
# The spec reporter for people, TAP into a file for the counts.
NOVA_SDK_TS_DIST=$WORK/ts/dist node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$WORK/node.tap" Tests/sdk/typescript/ 2>&1
code=$?
ok=$(sed -n 's/^# pass //p' "$WORK/node.tap"); bad=$(sed -n 's/^# fail //p' "$WORK/node.tap")
PASSED=$((PASSED + ${ok:-0})); FAILED=$((FAILED + ${bad:-0}))
[ "$code" -ne 0 ] && [ "${bad:-0}" -eq 0 ] && fail "node --test exited $code"

for p in $PIDS; do kill -TERM "$p"; wait "$p" 2>/dev/null; done
PIDS=
if grep -q '"level":"critical"\|"level":"error"' "$WORK/main.log"; then
  grep '"level":"error"\|"level":"critical"' "$WORK/main.log" | head -20; fail "serve: errors in the server log"
else
  pass "serve: no errors logged"
fi
summary
