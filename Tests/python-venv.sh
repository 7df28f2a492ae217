# Sourced by the test scripts that need Python packages (e2e, mcp_proxy, SDKs, dashboard,
# packaging):
#   venv_python DIR REQUIREMENTS LOG
#       makes a virtualenv at DIR once (with $BASE_PY, default python3), installs REQUIREMENTS
#       into it (pip's output appended to LOG) and prints DIR/bin/python; fails if either fails.
venv_python() {
  local dir=$1 requirements=$2 log=$3
  { [ -x "$dir/bin/python" ] || "${BASE_PY:-python3}" -m venv "$dir"; } >>"$log" 2>&1 \
    && "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" >>"$log" 2>&1 \
    && echo "$dir/bin/python"
}
