# Sourced by the test scripts that need the Python MCP SDK: the two virtualenvs under a cache
# dir, made once and shared: the newest SDK (2.x, with schemathesis) and 1.x. Sets CACHE and
# defines `venv NAME REQUIREMENTS`, which prints the virtualenv's python once its requirements
# are installed (pip's output goes to $CACHE/pip.log). Needs BASE_PY.
CACHE=${NOVA_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nova-e2e}
venv() {
  local dir=$CACHE/$1
  { [ -x "$dir/bin/python" ] || "$BASE_PY" -m venv "$dir"; } >>"$CACHE/pip.log" 2>&1 \
    && "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$2" >>"$CACHE/pip.log" 2>&1 \
    && echo "$dir/bin/python"
}
mkdir -p "$CACHE"
