#!/usr/bin/env bash
# Prints the path of a Python interpreter that has the test servers' packages
# (Tests/servers/requirements.txt), creating a private venv on first use:
#   ${NOVA_TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/nova-host/test-venv-<hash of requirements>}
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
req="$here/requirements.txt"
hash=$(sha256sum "$req" | cut -c1-12)
venv=${NOVA_TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/nova-host/test-venv-$hash}
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  python=$(command -v python3 || true)
  if [ -z "$python" ]; then echo "python3 is required for the test servers" >&2; exit 1; fi
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  if ! "$python" -m venv "$venv" >&2; then
    # Debian's system python needs python3-venv for this.
    if command -v apt-get >/dev/null 2>&1; then
      SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
      $SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >&2
      rm -rf "$venv"
      "$python" -m venv "$venv" >&2
    else
      exit 1
    fi
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
