# Sourced by the scripts that need Python packages (e2e, mcp_proxy, SDKs, dashboard, packaging,
# the server benchmark):
#   venv_python DIR LOG PIP_ARGS...
#       makes a virtualenv at DIR once (with $BASE_PY, default python3), installs PIP_ARGS into
#       it (`-r requirements.txt`, or package specs; pip's output appended to LOG) and prints
#       DIR/bin/python; fails if either fails.
venv_python() {
  local dir=$1 log=$2
  shift 2
  { [ -x "$dir/bin/python" ] || "${BASE_PY:-python3}" -m venv "$dir"; } >>"$log" 2>&1 \
    && "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" >>"$log" 2>&1 \
    && echo "$dir/bin/python"
}
