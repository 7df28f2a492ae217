#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster for the tests and prints its settings as
# shell assignments (NOVA_TEST_PG_DSN=..., NOVA_TEST_PG_DIR=..., NOVA_TEST_PG_PORT=...).
#
#   Tests/servers/start-postgres.sh DIR     # DIR must not exist; stop with stop-postgres.sh DIR
#
# initdb runs in DIR as a non-root user (the current user, or when run as root the `postgres`
# user, created with useradd if missing). The server listens on 127.0.0.1 only, on a free
# port, with SCRAM password authentication over TCP; the database `nova` is seeded with
# Tests/servers/seed.sql. Installs the postgresql package with apt when it is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: start-postgres.sh DIR}
[ -e "$dir" ] && { echo "start-postgres.sh: $dir already exists" >&2; exit 1; }

find_bindir() {
  for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && { pg_config --bindir; return 0; }
  return 1
}
bindir=$(find_bindir || true)
if [ -z "$bindir" ]; then
  echo "start-postgres.sh: installing postgresql (apt)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
  bindir=$(find_bindir)
fi

if [ "$(id -u)" -eq 0 ]; then
  runas=postgres
  id -u "$runas" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$runas"
  as_user() { runuser -u "$runas" -- "$@"; }
else
  runas=$(id -un)
  as_user() { "$@"; }
fi

mkdir -p "$dir"
chmod 0700 "$dir"
[ "$(id -u)" -eq 0 ] && chown "$runas" "$dir"
password=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$password" > "$dir/pwfile"
[ "$(id -u)" -eq 0 ] && chown "$runas" "$dir/pwfile"
chmod 0600 "$dir/pwfile"

as_user "$bindir/initdb" -D "$dir/data" -U nova --pwfile="$dir/pwfile" -E UTF8 --locale=C \
  --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
rm -f "$dir/pwfile"

free_port() {
  local python; python=$(command -v python3)
  "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
started=""
for attempt in 1 2 3 4 5; do
  port=$(free_port)
  if as_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
       -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
       start >/dev/null 2>&1; then
    started=1; break
  fi
done
[ -n "$started" ] || { echo "start-postgres.sh: the server did not start" >&2; cat "$dir/server.log" >&2; exit 1; }

as_user "$bindir/psql" -X -q -h "$dir" -p "$port" -U nova -d postgres -c "CREATE DATABASE nova" >/dev/null
as_user "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U nova -d nova -f - <"$here/seed.sql" >/dev/null

echo "NOVA_TEST_PG_DSN='postgres://nova:$password@127.0.0.1:$port/nova?sslmode=disable'"
echo "NOVA_TEST_PG_DIR='$dir'"
echo "NOVA_TEST_PG_PORT='$port'"
