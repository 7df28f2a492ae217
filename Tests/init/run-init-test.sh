#!/usr/bin/env bash
# `nova-host init` into a temporary directory, then `nova-host serve --config DIR/nova.json`
# from another directory: the key init printed must authenticate a tool call, no key and a
# wrong key must get 401, and init must refuse a non-empty directory without --force.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
NOVA=${NOVA_HOST_BIN:-$(swift build --show-bin-path)/nova-host}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nova-init.XXXXXX")
PROJECT="$WORK/project"
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "init test: FAIL $*"; [ -f "$WORK/serve.log" ] && tail -20 "$WORK/serve.log"; exit 1; }
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

[ -x "$NOVA" ] || fail "no nova-host binary at $NOVA (set NOVA_HOST_BIN)"
[ -e drivers/libnova_echo.so ] || fail "drivers/libnova_echo.so is missing: run make drivers first"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# 1. init lays out the project and prints the key once.
out=$("$NOVA" init "$PROJECT" --json --port "$PORT") || fail "init exited $?"
KEY=$(echo "$out" | json_field api_key) || fail "no api_key in: $out"
KEY_ID=$(echo "$out" | json_field key_id)
for f in nova.json policy.json README.md templates/hello.yaml templates/restock.yaml drivers/libnova_echo.so; do
  [ -s "$PROJECT/$f" ] || fail "init did not create $f"
done
grep -q "$KEY" "$PROJECT/nova.json" && fail "nova.json holds the key itself"
grep -q "$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)" "$PROJECT/nova.json" || fail "nova.json does not hold the key's SHA-256"
grep -q "\"$KEY_ID\"" "$PROJECT/nova.json" || fail "nova.json does not name key $KEY_ID"
human=$("$NOVA" init "$WORK/human") || fail "init without --json exited $?"
echo "$human" | grep -Eq '^  nova_[0-9a-f]{64}$' || fail "the human output does not show the key: $human"

# 2. a non-empty directory is refused (exit 2) unless --force.
set +e
"$NOVA" init "$PROJECT" >/dev/null 2>"$WORK/refused.txt"; code=$?
set -e
[ "$code" = 2 ] || fail "init into a non-empty directory exited $code, expected 2"
grep -q 'not empty' "$WORK/refused.txt" || fail "refusal does not say why: $(cat "$WORK/refused.txt")"
mkdir -p "$WORK/forced" && echo keep >"$WORK/forced/notes.txt"
"$NOVA" init "$WORK/forced" --force --json >/dev/null || fail "init --force exited $?"
[ -s "$WORK/forced/nova.json" ] && [ "$(cat "$WORK/forced/notes.txt")" = keep ] || fail "init --force did not write the project or lost other files"

# 3. serve from another directory with only --config.
cd "$WORK"
"$NOVA" serve --config "$PROJECT/nova.json" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "serve exited early"
  sleep 0.2
done
curl -fs "http://127.0.0.1:$PORT/health" >/dev/null || fail "serve did not answer /health on port $PORT"

# 4. the printed key authenticates a call; no key and a wrong key get 401.
status=$(curl -s -o "$WORK/call.json" -w '%{http_code}' -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
         -d '{"text":"hi from init"}' "http://127.0.0.1:$PORT/tools/echo.echo")
[ "$status" = 200 ] || fail "authenticated echo.echo answered $status: $(cat "$WORK/call.json")"
grep -q 'hi from init' "$WORK/call.json" || fail "echo.echo did not echo: $(cat "$WORK/call.json")"
status=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{"text":"hi"}' "http://127.0.0.1:$PORT/tools/echo.echo")
[ "$status" = 401 ] || fail "unauthenticated echo.echo answered $status, expected 401"
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer nova_wrong" -H 'Content-Type: application/json' -d '{"text":"hi"}' \
         "http://127.0.0.1:$PORT/tools/echo.echo")
[ "$status" = 401 ] || fail "a wrong key answered $status, expected 401"
[ -d "$PROJECT/.nova" ] || fail "serve did not keep its data in the project's .nova"
# The project's example templates were imported: a run by template works over REST.
status=$(curl -s -o "$WORK/templates.json" -w '%{http_code}' -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/templates")
[ "$status" = 200 ] && grep -q '"hello"' "$WORK/templates.json" && grep -q '"restock"' "$WORK/templates.json" \
  || fail "the project's templates were not imported ($status): $(cat "$WORK/templates.json")"

# 5. stop the server cleanly.
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "serve exited $? on SIGTERM"
SERVER_PID=
cd "$REPO"
echo "init test: ok"
