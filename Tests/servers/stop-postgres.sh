#!/usr/bin/env bash
# Stops the cluster that start-postgres.sh DIR started and removes DIR.
set -uo pipefail
dir=${1:?usage: stop-postgres.sh DIR}
[ -d "$dir/data" ] || { rm -rf "$dir"; exit 0; }
bindir=""
for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do [ -x "$d/pg_ctl" ] && { bindir=$d; break; }; done
[ -n "$bindir" ] || bindir=$(pg_config --bindir)
if [ "$(id -u)" -eq 0 ]; then
  runuser -u postgres -- "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
else
  "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
fi
rm -rf "$dir"
