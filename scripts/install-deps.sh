#!/usr/bin/env bash
# Installs what nova-host needs to build and test, only when something is missing.
#   scripts/install-deps.sh build   – C libraries the build links (sqlite3, seccomp)
#   scripts/install-deps.sh test    – plus the real servers and tools the tests and benchmarks start (python3-venv:
#                                     Tests/server/run-e2e.sh makes virtualenvs for the MCP SDKs)
set -euo pipefail
want=(libsqlite3-dev libseccomp-dev pkg-config)
if [ "${1:-build}" = "test" ]; then
  want+=(postgresql bubblewrap hyperfine util-linux procps python3-venv curl redis-server)
  # node: Tests/regex/check-expected.sh checks the regex answers against node's ECMA-262 engine
  command -v node >/dev/null 2>&1 || want+=(nodejs)
fi
missing=()
for p in "${want[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
