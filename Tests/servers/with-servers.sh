#!/usr/bin/env bash
# Runs a command with the real servers the driver tests and benchmarks need, all on 127.0.0.1:
#
#   Tests/servers/with-servers.sh swift test
#   Tests/servers/with-servers.sh .build/release/nova-bench drivers
#
# Starts PostgreSQL 15 (start-postgres.sh), the GraphQL server (graphql_server.py) and the HTTP
# test server (http_server.py), exports
#
#   NOVA_TEST_PG_DSN        postgres://nova:…@127.0.0.1:PORT/nova?sslmode=disable
#   NOVA_TEST_GRAPHQL_URL   http://127.0.0.1:PORT/graphql
#   NOVA_TEST_HTTP_URL      http://127.0.0.1:PORT
#
# runs the command, and stops every server when it exits (also on failure or Ctrl-C).
# The command's exit status is the script's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || { echo "usage: with-servers.sh COMMAND [ARGS...]" >&2; exit 2; }

state=$(mktemp -d "${TMPDIR:-/tmp}/nova-servers.XXXXXX")
chmod 0711 "$state"   # the PostgreSQL user must reach $state/pg
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  "$here/stop-postgres.sh" "$state/pg" || true
  rm -rf "$state"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python=$("$here/python-env.sh")

start_python() {  # name script: starts it in the background (pid in $pids)
  "$python" "$here/$2" --port-file "$state/$1.port" >"$state/$1.log" 2>&1 &
  pids+=($!)
}
wait_port() {  # name pid: waits for the server's port file, prints the port
  for _ in $(seq 1 600); do
    [ -s "$state/$1.port" ] && { cat "$state/$1.port"; return 0; }
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  echo "with-servers.sh: the $1 server did not start:" >&2
  cat "$state/$1.log" >&2
  return 1
}

start_python http http_server.py
start_python graphql graphql_server.py
http_port=$(wait_port http "${pids[0]}")
graphql_port=$(wait_port graphql "${pids[1]}")
eval "$("$here/start-postgres.sh" "$state/pg")"

export NOVA_TEST_PG_DSN NOVA_TEST_PG_DIR NOVA_TEST_PG_PORT
export NOVA_TEST_HTTP_URL="http://127.0.0.1:$http_port"
export NOVA_TEST_GRAPHQL_URL="http://127.0.0.1:$graphql_port/graphql"
echo "with-servers.sh: PostgreSQL on 127.0.0.1:$NOVA_TEST_PG_PORT, GraphQL on $NOVA_TEST_GRAPHQL_URL, HTTP on $NOVA_TEST_HTTP_URL" >&2

set +e
"$@"
status=$?
set -e
exit $status
