# Sourced by the end-to-end test scripts (run-e2e.sh, run-mcp-proxy-tests.sh, and for its
# virtualenv run-conformance.sh). Set SUITE (the name in the summary) first.
#   fail MSG      counts and prints one failure
#   summary       prints `SUITE: N passed, M failed` and exits (non-zero if M > 0)
#   count CMD…    runs a test script, echoing its output, and adds its ok/FAIL lines to the totals
#   venv NAME REQUIREMENTS
#                 prints the python of a virtualenv under $CACHE (made once, shared by the
#                 scripts: mcp2 = the newest MCP SDK 2.x with schemathesis, mcp1 = 1.x) once its
#                 requirements are installed (pip's output goes to $CACHE/pip.log)
# BASE_PY is the Python that makes the virtualenvs ($PYTHON or python3).
PASSED=0
FAILED=0
fail() { echo "FAIL $1"; FAILED=$((FAILED + 1)); }
summary() { echo "${SUITE:-tests}: $PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]; exit $?; }
count() {
  local out; out=$("$@" 2>&1); local code=$?
  echo "$out"
  local ok bad; ok=$(grep -c '^ok ' <<<"$out"); bad=$(grep -c '^FAIL ' <<<"$out")
  PASSED=$((PASSED + ok)); FAILED=$((FAILED + bad))
  if [ "$code" -ne 0 ] && [ "$bad" -eq 0 ]; then fail "$* exited $code"; fi
}
BASE_PY=${PYTHON:-python3}
CACHE=${NOVA_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nova-e2e}
. Tests/python-venv.sh
venv() { venv_python "$CACHE/$1" "$CACHE/pip.log" -r "$2"; }
mkdir -p "$CACHE"
