"""The mcp_proxy driver against real MCP servers (Tests/mcp_proxy/upstream_server.py on the Python
`mcp` SDK), one over stdio and one over streamable HTTP, through `nova-host run` and a live
`nova-host serve`. Run by run-mcp-proxy-tests.sh, which passes:

  NOVA_HOST_BIN      the nova-host binary
  NOVA_MCP_DRIVER    drivers/libnova_mcp_proxy.so (`make drivers`)
  UPSTREAM_PYTHON    the Python whose `mcp` SDK runs the upstream servers
  SDK                a label for the output (mcp2, mcp1)
  FULL               1: every check; 0: the core (listing, a call, an error, list_changed) only
  ISOLATION          the driver's isolation: inprocess (default) or process (a runner child,
                     which forwards the instance's tool lists to the host)

Prints `ok NAME` / `FAIL NAME: why` per check (counted by the script).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "server"))
from e2e_common import check, env, finish, free_port, http, start_serve, stop_all  # noqa: E402

NOVA = env("NOVA_HOST_BIN")
DRIVER = env("NOVA_MCP_DRIVER")
PY = env("UPSTREAM_PYTHON")
SDK = os.environ.get("SDK", "mcp2")
FULL = os.environ.get("FULL", "1") == "1"
ISOLATION = os.environ.get("ISOLATION", "inprocess")
HERE = os.path.dirname(os.path.abspath(__file__))
WORK = tempfile.mkdtemp(prefix=f"nova-mcp-proxy-{SDK}-")
STDIO_STATE = os.path.join(WORK, "stdio-state")
HTTP_STATE = os.path.join(WORK, "http-state")
JSON_STATE = os.path.join(WORK, "json-state")
UPSTREAM_TOKEN = "upstream-secret-" + os.urandom(8).hex()
ADMIN_KEY = "nova_mcpproxy_admin_" + os.urandom(16).hex()
USER_KEY = "nova_mcpproxy_alice_" + os.urandom(16).hex()
PROCS = []


def name(test):
    return f"{SDK} {ISOLATION} {test}"


def wait_for(predicate, what, tries=400, pause=0.05):
    """Polls `predicate` (no wall-clock assertion: a bounded number of tries, then a failure)."""
    for _ in range(tries):
        value = predicate()
        if value:
            return value
        time.sleep(pause)
    return None


def state_file(state, entry):
    return os.path.exists(os.path.join(state, entry))


def sha(text):
    import hashlib
    return hashlib.sha256(text.encode()).hexdigest()


HTTP_PORT = 0
HTTP_UPSTREAM = []


def start_http_upstream():
    """Starts the streamable-HTTP upstream server on HTTP_PORT and waits until it accepts connections."""
    HTTP_UPSTREAM[:] = [start_upstream(HTTP_PORT, HTTP_STATE)]


def start_upstream(port, state, *extra):
    import socket
    proc = subprocess.Popen([PY, os.path.join(HERE, "upstream_server.py"), "--transport", "http", "--port", str(port),
                             "--state", state, "--name", "remote-upstream", *extra],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(WORK, "http-upstream.log"), "a"))
    PROCS.append(proc)

    def accepting():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    if not wait_for(accepting, "upstream HTTP server", tries=600):
        raise RuntimeError("the upstream HTTP MCP server did not start: " + open(os.path.join(WORK, "http-upstream.log")).read()[-2000:])
    return proc


def setup():
    os.makedirs(os.path.join(WORK, "drivers"))
    shutil.copy(DRIVER, os.path.join(WORK, "drivers", "libnova_mcp_proxy.so"))
    os.chmod(os.path.join(WORK, "drivers", "libnova_mcp_proxy.so"), 0o644)
    global HTTP_PORT
    HTTP_PORT = free_port()
    start_http_upstream()
    upstream_url = f"http://127.0.0.1:{HTTP_PORT}/mcp"
    # A server that answers each POST with one JSON body (no headers before the tool is done).
    json_port = free_port()
    start_upstream(json_port, JSON_STATE, "--json-response")
    drivers = {"drivers": {"mcp_proxy": {"isolation": ISOLATION, "config": {"servers": [
        {"name": "local", "command": [PY, os.path.join(HERE, "upstream_server.py"), "--state", STDIO_STATE],
         "trust_annotations": True, "restart_initial_ms": 5000, "restart_max_ms": 10000},
        {"name": "remote", "url": upstream_url, "headers": {"Authorization": "Bearer ${env:MCP_UPSTREAM_TOKEN}", "X-Static": "literal-value"}},
        {"name": "jsonhttp", "url": f"http://127.0.0.1:{json_port}/mcp"},
        {"name": "broken", "command": [PY, "-c", "import sys, time; time.sleep(1); sys.exit(2)"], "restart_initial_ms": 100, "restart_max_ms": 800},
    ]}}}}
    with open(os.path.join(WORK, "drivers.json"), "w") as f:
        json.dump(drivers, f)
    policy = {
        "roles": {"admin": {}, "user": {}, "service": {}},
        "principals": {"local": "admin", "admin": "admin", "alice": "user"},
        "rules": [
            {"id": "no-slow-for-users", "effect": "deny", "roles": ["user"], "tools": ["mcp_proxy.local.slow"], "reason": "slow is for admins"},
            {"id": "proxied", "effect": "allow", "roles": ["admin", "user"], "tools": ["mcp_proxy.*"]},
        ],
        "budgets": [{"id": "two-adds-per-run", "scope": "run", "tools": ["mcp_proxy.local.add"], "calls": 2}],
    }
    with open(os.path.join(WORK, "policy.json"), "w") as f:
        json.dump(policy, f)
    with open(os.path.join(WORK, "host.json"), "w") as f:
        json.dump({"api_keys": [
            {"id": "admin", "principal": "admin", "role": "admin", "sha256": sha(ADMIN_KEY)},
            {"id": "alice", "principal": "alice", "role": "user", "sha256": sha(USER_KEY)}],
            "tool_timeout_ms": 20000, "shutdown_grace_seconds": 5}, f)
    os.environ["MCP_UPSTREAM_TOKEN"] = UPSTREAM_TOKEN


def host_args(data):
    return ["--drivers", os.path.join(WORK, "drivers"), "--driver-config", os.path.join(WORK, "drivers.json"),
            "--policy", os.path.join(WORK, "policy.json"), "--data", os.path.join(WORK, data)]


def run_plan(plan, *extra, data="run-data"):
    path = os.path.join(WORK, f"plan-{time.monotonic_ns()}.json")
    with open(path, "w") as f:
        json.dump(plan, f)
    p = subprocess.run([NOVA, "run", path, "--json", *host_args(data), *extra], capture_output=True, text=True, timeout=120)
    try:
        return p.returncode, json.loads(p.stdout), p.stderr
    except ValueError:
        return p.returncode, {"stdout": p.stdout}, p.stderr


def cli_tests():
    # The tools, namespaced, with the remote schemas and annotations.
    p = subprocess.run([NOVA, "drivers", "inspect", "mcp_proxy", "--json", *host_args("inspect-data")], capture_output=True, text=True, timeout=120)
    tools = {}
    try:
        tools = {t["name"]: t for t in json.loads(p.stdout)["manifest"]["tools"]}
    except (ValueError, KeyError) as e:
        check(name("inspect lists the proxied tools"), False, f"{e}: {p.stdout[-500:]} {p.stderr[-500:]}")
        return
    add = tools.get("local.add", {})
    check(name("inspect lists <server>.<tool> for stdio and HTTP servers"),
          {"servers", "local.add", "local.slow", "remote.add", "remote.slow"} <= set(tools), sorted(tools))
    check(name("a proxied tool keeps the remote input schema and description"),
          add.get("inputSchema", {}).get("required") == ["a", "b"] and add["inputSchema"]["properties"]["a"]["type"] == "integer"
          and add.get("description") == "Add two integers.", json.dumps(add))
    check(name("annotations of a trusted server are passed on"), add.get("annotations", {}).get("readOnlyHint") is True, json.dumps(add))
    remote_add = tools.get("remote.add", {})
    check(name("annotations of an untrusted server are not believed"),
          remote_add.get("annotations", {}).get("readOnlyHint") is False and remote_add["annotations"].get("destructiveHint") is True,
          json.dumps(remote_add))

    # A call through `nova-host run`, recorded in the episode.
    code, out, err = run_plan({"name": "add", "steps": [{"id": "sum", "call": "mcp_proxy.local.add", "input": {"a": 2, "b": 40}}],
                               "output": "${steps.sum.output.structuredContent.result}"})
    check(name("run: a proxied stdio tool answers"), code == 0 and out.get("output") == 42, f"exit {code}: {out} {err[-800:]}")
    if out.get("run_id"):
        p = subprocess.run([NOVA, "episodes", "show", out["run_id"], "--json", "--data", os.path.join(WORK, "run-data")],
                           capture_output=True, text=True, timeout=60)
        text = p.stdout
        check(name("run: the call is in the episode (tool, policy decision, output)"),
              "mcp_proxy.local.add" in text and "proxied" in text and '"result"' in text, text[-1500:])

    # Budgets apply to proxied tools: the third add of one run is over its budget.
    steps = [{"id": f"s{i}", "call": "mcp_proxy.local.add", "input": {"a": i, "b": 1}, **({"depends_on": [f"s{i - 1}"]} if i else {})}
             for i in range(3)]
    code, out, err = run_plan({"name": "budget", "steps": steps})
    check(name("run: a budget over a proxied tool stops the third call"),
          code == 3 and out.get("status") == "denied" and "two-adds-per-run" in out.get("error", "") and "s2" in out.get("error", ""),
          f"exit {code}: {out}")

    # A remote error (isError) maps to a tool error with the server's message.
    code, out, err = run_plan({"name": "fail", "steps": [{"id": "f", "call": "mcp_proxy.local.fail", "input": {"message": "the remote says no"}}]})
    check(name("run: a remote isError is the step's error, with the remote message"),
          code == 1 and out.get("status") == "failed" and "the remote says no" in out.get("error", ""), f"exit {code}: {out}")

    # Policy: denied before the driver sees the call (the server never starts it).
    code, out, err = run_plan({"name": "denied", "steps": [{"id": "s", "call": "mcp_proxy.local.slow", "input": {"seconds": 0.1, "tag": "denied"}}]},
                              "--principal", "alice")
    check(name("run: a policy denial of a proxied tool never reaches the server"),
          code == 3 and out.get("status") == "denied" and "no-slow-for-users" in out.get("error", "") and not state_file(STDIO_STATE, "started-denied"),
          f"exit {code}: {out}")
    # Input validation against the remote schema happens in the host, too.
    code, out, err = run_plan({"name": "bad", "steps": [{"id": "s", "call": "mcp_proxy.local.add", "input": {"a": "two", "b": 1}}]})
    check(name("run: input is validated against the remote inputSchema by the host"), code in (1, 2) and out.get("status") in ("failed", "invalid"),
          f"exit {code}: {out}")

    # A deadline cancels upstream: the server observes notifications/cancelled.
    code, out, err = run_plan({"name": "slow", "steps": [{"id": "s", "call": "mcp_proxy.local.slow", "input": {"seconds": 60, "tag": "deadline"},
                                                          "timeout_ms": 1500}]})
    cancelled = wait_for(lambda: state_file(STDIO_STATE, "cancelled-deadline"), "cancelled-deadline")
    check(name("run: a step's deadline cancels the remote call (server saw notifications/cancelled)"),
          code == 1 and "deadline" in out.get("error", "") and cancelled, f"exit {code}: {out}; state: {os.listdir(STDIO_STATE)}")

    # A bad configuration is a clear error naming the field, not a crash or a silent loss.
    bad = {"drivers": {"mcp_proxy": {"config": {"servers": [
        {"name": "gh", "url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer ${env:NOVA_MCP_PROXY_TEST_UNSET}"}}]}}}}
    with open(os.path.join(WORK, "bad-drivers.json"), "w") as f:
        json.dump(bad, f)
    args = host_args("bad-data")
    args[args.index("--driver-config") + 1] = os.path.join(WORK, "bad-drivers.json")
    p = subprocess.run([NOVA, "drivers", "inspect", "mcp_proxy", "--json", *args], capture_output=True, text=True, timeout=120)
    try:
        instance = json.loads(p.stdout).get("instance", {})
    except ValueError:
        instance = {"stdout": p.stdout}
    check(name("a header from an unset environment variable is a configuration error naming the field"),
          instance.get("configured") is False and "servers[0].headers.Authorization" in instance.get("error", "")
          and "NOVA_MCP_PROXY_TEST_UNSET" in instance.get("error", ""), f"{instance} {p.stderr[-500:]}")

    # The conformance harness with a configuration pointing at the real servers.
    config = json.load(open(os.path.join(WORK, "drivers.json")))["drivers"]["mcp_proxy"]["config"]
    p = subprocess.run([NOVA, "drivers", "test", "--config", json.dumps(config), os.path.join(WORK, "drivers", "libnova_mcp_proxy.so")],
                       capture_output=True, text=True, timeout=300)
    check(name("drivers test (conformance) passes with real servers configured, listing their tools"),
          p.returncode == 0 and "local.add" in p.stdout and "remote.add" in p.stdout, p.stdout[-2000:] + p.stderr[-1000:])


def tool_call(url, tool, body, key=ADMIN_KEY):
    return http("POST", f"{url}/tools/{tool}", key=key, body=body)


def tool_ids(url):
    status, _, body = http("GET", f"{url}/v1/tools", key=ADMIN_KEY)
    if status != 200:
        return set()
    items = body.get("tools", body) if isinstance(body, dict) else body
    return {t.get("id") or t.get("name") for t in items}


def serve_tests():
    proc, url = start_serve(["--config", os.path.join(WORK, "host.json"), *host_args("serve-data"), "--log-level", "info"],
                            os.path.join(WORK, "serve.log"))
    PROCS.append(proc)
    # Through the server, the caller's bearer (a nova-host API key) authenticates to nova-host only.
    status, _, body = tool_call(url, "mcp_proxy.remote.add", {"a": 20, "b": 22})
    check(name("serve: a proxied streamable-HTTP tool answers"), status == 200 and body.get("output", {}).get("structuredContent", {}).get("result") == 42,
          f"{status} {body}")
    seen = [json.loads(line) for line in open(os.path.join(HTTP_STATE, "headers.jsonl"))] if state_file(HTTP_STATE, "headers.jsonl") else []
    posts = [h["headers"] for h in seen if h["method"] == "POST"]
    check(name("serve: the upstream gets the Authorization header from the environment"),
          posts and all(h.get("authorization") == f"Bearer {UPSTREAM_TOKEN}" and h.get("x-static") == "literal-value" for h in posts), posts[:2])
    check(name("serve: the caller's credentials are never forwarded upstream"),
          seen and not any(ADMIN_KEY in v or USER_KEY in v for h in seen for v in h["headers"].values()), "a nova-host key reached the upstream")

    # A remote error through REST: 422 tool_error naming the remote message.
    status, _, body = tool_call(url, "mcp_proxy.remote.fail", {"message": "remote refusal"})
    check(name("serve: a remote error is a tool error with the remote message"),
          status == 422 and "remote refusal" in json.dumps(body), f"{status} {body}")
    # A policy denial of a proxied tool.
    status, _, body = tool_call(url, "mcp_proxy.local.slow", {"seconds": 0.1, "tag": "denied-rest"}, key=USER_KEY)
    check(name("serve: a policy denial of a proxied tool is 403 and never reaches the server"),
          status == 403 and not state_file(STDIO_STATE, "started-denied-rest"), f"{status} {body}")

    # list_changed: a tool added on the server appears without a reload (stdio and HTTP).
    for server, state in (("local", STDIO_STATE), ("remote", HTTP_STATE)):
        status, _, body = tool_call(url, f"mcp_proxy.{server}.add_tool", {"name": f"late_{server}", "notify": True})
        listed = status == 200 and wait_for(lambda: f"mcp_proxy.{server}.late_{server}" in tool_ids(url), "late tool")
        status2, _, body2 = tool_call(url, f"mcp_proxy.{server}.late_{server}", {})
        check(name(f"serve: notifications/tools/list_changed from the {server} server adds its new tool"),
              listed and status2 == 200 and body2["output"]["text"] == f"hello from late_{server}", f"{status} {body} / {status2} {body2}")
    # Reload: a tool added without a notification appears after `POST /v1/drivers/reload`.
    tool_call(url, "mcp_proxy.local.add_tool", {"name": "quiet", "notify": False})
    before = "mcp_proxy.local.quiet" in tool_ids(url)
    status, _, body = http("POST", f"{url}/v1/drivers/reload", key=ADMIN_KEY)
    after = wait_for(lambda: "mcp_proxy.local.quiet" in tool_ids(url), "quiet tool")
    check(name("serve: a driver reload lists the servers' tools again"),
          not before and status == 200 and "mcp_proxy" in body.get("refreshed", []) and after, f"before={before} {status} {body} after={after}")

    if not FULL:
        return

    # Cancellation: a run cancelled through REST cancels the remote call (stdio, HTTP with event
    # streams, HTTP with plain JSON answers).
    for server, state in (("local", STDIO_STATE), ("remote", HTTP_STATE), ("jsonhttp", JSON_STATE)):
        tag = f"rest-cancel-{server}"
        plan = {"name": "cancel-me", "steps": [{"id": "s", "call": f"mcp_proxy.{server}.slow", "input": {"seconds": 120, "tag": tag}}]}
        status, _, run = http("POST", f"{url}/v1/runs", key=ADMIN_KEY, body={"plan": plan})
        started = status == 202 and wait_for(lambda: state_file(state, f"started-{tag}"), "started", tries=600)
        cstatus, _, cbody = http("POST", f"{url}/v1/runs/{run.get('id') or run.get('run_id')}/cancel", key=ADMIN_KEY) if started else (0, {}, {})
        seen_cancel = started and wait_for(lambda: state_file(state, f"cancelled-{tag}"), "cancelled", tries=600)
        check(name(f"serve: cancelling a run sends notifications/cancelled to the {server} server (it observed the cancellation)"),
              seen_cancel, f"run {status} {run}; cancel {cstatus} {cbody}; state {os.listdir(state)}")

    # Calls to one server run side by side, also when its answers are plain JSON bodies: a quick
    # call is not held up by a slow one started before it.
    plan = {"name": "slow-json", "steps": [{"id": "s", "call": "mcp_proxy.jsonhttp.slow", "input": {"seconds": 120, "tag": "side-by-side"}}]}
    status, _, run = http("POST", f"{url}/v1/runs", key=ADMIN_KEY, body={"plan": plan})
    started = status == 202 and wait_for(lambda: state_file(JSON_STATE, "started-side-by-side"), "started", tries=600)
    qstatus, _, qbody = tool_call(url, "mcp_proxy.jsonhttp.add", {"a": 1, "b": 2}) if started else (0, {}, {})
    http("POST", f"{url}/v1/runs/{run.get('id') or run.get('run_id')}/cancel", key=ADMIN_KEY)
    check(name("serve: a quick call to a JSON-answering HTTP server is not held up by a slow one in flight"),
          started and qstatus == 200 and qbody["output"]["structuredContent"]["result"] == 3, f"{status} {run}; {qstatus} {qbody}")

    # A stdio server that dies is restarted with backoff; calls in the outage fail clearly.
    status, _, body = tool_call(url, "mcp_proxy.local.pid", {})
    first_pid = body.get("output", {}).get("structuredContent", {}).get("result") if status == 200 else None
    status, _, body = tool_call(url, "mcp_proxy.local.crash", {})
    check(name("serve: a call whose stdio server dies fails clearly"),
          status in (422, 502, 503) and "exited with status 3" in json.dumps(body), f"{status} {body}")
    outcomes = []

    def call_pid():
        s, _, b = tool_call(url, "mcp_proxy.local.pid", {})
        outcomes.append((s, b))
        return s == 200
    restarted = wait_for(call_pid, "restart", tries=200, pause=0.1)
    outage = [b for s, b in outcomes if s != 200]
    new_pid = outcomes[-1][1].get("output", {}).get("structuredContent", {}).get("result") if restarted else None
    check(name("serve: calls during the outage fail at once with server_unavailable"),
          outage and all("server_unavailable" in json.dumps(b) or "unavailable" in json.dumps(b) for b in outage), outcomes[:3])
    check(name("serve: the crashed stdio server is restarted (a new process answers)"),
          restarted and first_pid and new_pid and new_pid != first_pid, f"{first_pid} → {new_pid}; {outcomes[-1:]}")
    # An HTTP server that goes away: calls fail clearly, and the proxy reconnects when it is back.
    proc = HTTP_UPSTREAM[0]
    proc.kill()  # a crash: no goodbye on its streams
    proc.wait(timeout=30)
    status, _, body = tool_call(url, "mcp_proxy.remote.add", {"a": 1, "b": 1})
    check(name("serve: a call to an HTTP server that is gone fails clearly"),
          status in (422, 502, 503) and ("server_unavailable" in json.dumps(body) or "cannot reach" in json.dumps(body)), f"{status} {body}")
    start_http_upstream()
    back = wait_for(lambda: tool_call(url, "mcp_proxy.remote.add", {"a": 1, "b": 1})[0] == 200, "reconnect", tries=300, pause=0.2)
    check(name("serve: the proxy reconnects to the HTTP server when it is back (a new session)"), back,
          json.dumps(tool_call(url, "mcp_proxy.servers", {})[2])[:1500])

    # A server that never comes up is retried with exponential backoff: 100, 200, 400, 800, 800… ms.
    # A reload resets its backoff (a retry at once), so the sequence is watched from its start;
    # counts above 6 are from before the reset and are left out. The server takes a second to
    # fail, so the reload usually lands while an attempt is in flight: that attempt's failure
    # must count as the first (it once kept counting on, and nothing in 1…6 was ever seen).
    http("POST", f"{url}/v1/drivers/reload", key=ADMIN_KEY)
    seen = {}

    def backoffs():
        servers = tool_call(url, "mcp_proxy.servers", {})[2].get("output", {}).get("servers", [])
        broken = next((s for s in servers if s["name"] == "broken"), {})
        n = broken.get("consecutive_failures", 0)
        if 1 <= n <= 6:
            seen[n] = (broken.get("backoff_ms"), broken.get("reason", ""))
        return max(seen, default=0) >= 5
    enough = wait_for(backoffs, "backoff", tries=3000, pause=0.01)
    check(name("serve: a stdio server that keeps failing is retried with exponential backoff up to the maximum"),
          enough and len({b for b, _ in seen.values()}) >= 3
          and all(b == min(100 << (n - 1), 800) and "exited with status 2" in why for n, (b, why) in seen.items()), seen)

    status, _, body = tool_call(url, "mcp_proxy.servers", {})
    local = next((s for s in body.get("output", {}).get("servers", []) if s["name"] == "local"), {})
    check(name("serve: mcp_proxy.servers reports the restart and never shows header values"),
          local.get("restarts", 0) >= 1 and local.get("state") == "ready" and UPSTREAM_TOKEN not in json.dumps(body), json.dumps(body)[:1500])


def main():
    setup()
    try:
        cli_tests()
        serve_tests()
    finally:
        stop_all(PROCS)
        if os.environ.get("KEEP_WORK") != "1":
            shutil.rmtree(WORK, ignore_errors=True)
        else:
            print(f"work dir kept: {WORK}")
    finish()


main()
