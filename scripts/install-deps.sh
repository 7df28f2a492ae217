#!/usr/bin/env bash
# Installs what nova-host needs to build and test, only when something is missing.
#   scripts/install-deps.sh build   – C libraries the build links (sqlite3, seccomp, jemalloc)
#   scripts/install-deps.sh test    – plus the real servers and tools the tests and benchmarks start (python3-venv:
#                                     Tests/server/run-e2e.sh makes virtualenvs for the MCP SDKs; docker.io)
set -euo pipefail
want=(libsqlite3-dev libseccomp-dev libjemalloc-dev pkg-config)
if [ "${1:-build}" = "test" ]; then
  want+=(postgresql bubblewrap hyperfine util-linux procps python3-venv curl redis-server)
  # docker.io: Tests/packaging/run-packaging-tests.sh loads the image into a real dockerd (it starts
  # one when none runs); ca-certificates: the image's CA bundle is this machine's.
  want+=(docker.io ca-certificates)
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
