#!/usr/bin/env bash
# Runs a command with TMPDIR set to a fresh directory and removes that directory when the
# command ends (also on failure or Ctrl-C). The command's exit status is the script's.
#
#   Tests/with-tmpdir.sh swift test
#
# Why: a `swift test` run leaves what its fixtures stage under $TMPDIR (stripped driver copies,
# data dirs of live servers, ~600 MB a run); repeated runs on one machine once filled its disk.
# The directory is mode 0755: tests that drop to uid 65534 must reach paths below it.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: with-tmpdir.sh COMMAND [ARGS...]" >&2; exit 2; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/nova-test.XXXXXX")
chmod 0755 "$dir"
cleanup() {
  local status=$?
  # Sandboxes may leave read-only or mode-000 directories: make them removable first.
  chmod -R u+rwX "$dir" 2>/dev/null || true
  rm -rf "$dir"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export TMPDIR="$dir"
"$@"
