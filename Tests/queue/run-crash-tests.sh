#!/usr/bin/env bash
# The queue crash test (crash_test.py) on both stores: PostgreSQL (NOVA_TEST_PG_DSN, set by
# Tests/servers/with-servers.sh) with 3 workers and one serve, and SQLite with 3 worker
# processes on one data directory. 1,000 runs each; workers SIGKILLed and restarted at random.
#
#   Tests/servers/with-servers.sh Tests/queue/run-crash-tests.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
status=0
for backend in postgres sqlite; do
  echo "== queue crash test: $backend"
  python3 "$here/crash_test.py" --backend "$backend" --runs "${NOVA_CRASH_RUNS:-1000}" --workers 3 || status=1
done
exit $status
