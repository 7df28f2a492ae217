"""Templates and approvals against a real `nova-host serve` (its own data dir, policy and
templates directory): templates over REST (list, create, a version that never changes, render,
a run by template recorded with its version and hash); a call waiting for approval decided over
REST, over MCP with the real Python SDK, and with the CLI after the server was SIGKILLed and
started again (the run resumes: the step it had finished is not run again)."""
import asyncio
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request

from e2e_common import check, env, finish, http, start_serve

BIN = env("NOVA_HOST_BIN")
DRIVERS = env("NOVA_E2E_DRIVERS")
ADMIN_KEY = env("NOVA_ADMIN_KEY")
USER_KEY = env("NOVA_USER_KEY")
CONFIG = json.loads(env("NOVA_E2E_CONFIG_JSON"))
WORK = tempfile.mkdtemp(prefix="nova-e2e-ta.")
DATA = f"{WORK}/data"
TEMPLATES = f"{WORK}/templates"
os.makedirs(TEMPLATES)

POLICY = {
    "roles": {"admin": {}, "user": {}},
    "principals": {"admin": "admin", "alice": "user"},
    "rules": [
        {"id": "admins-everything", "effect": "allow", "roles": ["admin"], "tools": ["*"]},
        {"id": "version-needs-a-person", "effect": "require_approval", "roles": ["user"], "tools": ["echo.version"]},
        {"id": "users-echo", "effect": "allow", "roles": ["user"], "tools": ["echo.*", "approvals.*"]},
    ],
    "approvals": {"approver_roles": ["admin"], "self_approval": False, "expires_in_seconds": 600},
}
HELLO = {
    "name": "hello", "version": "1.0.0", "description": "Greets.",
    "params": {"type": "object", "required": ["who"], "properties": {"who": {"type": "string"}, "times": {"type": "integer", "default": 2}}},
    "phases": [{"name": "greet", "steps": ["say"]}],
    "plan": {"steps": [{"id": "say", "call": "echo.echo", "input": {"text": "hello ${params.who}", "times": "${params.times}"}}]},
}
with open(f"{WORK}/policy.json", "w") as fh:
    json.dump(POLICY, fh)
with open(f"{WORK}/host.json", "w") as fh:
    json.dump(CONFIG, fh)
with open(f"{TEMPLATES}/hello.json", "w") as fh:
    json.dump(HELLO, fh)
ARGS = ["--config", f"{WORK}/host.json", "--drivers", DRIVERS, "--data", DATA, "--policy", f"{WORK}/policy.json",
        "--templates", TEMPLATES, "--lease-seconds", "1", "--log-level", "warning"]


def wait_for(fn, what, tries=600):
    for _ in range(tries):
        value = fn()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def run_status(url, run_id, key):
    s, _, body = http("GET", f"{url}/v1/runs/{run_id}", key)
    return body if s == 200 and body.get("status") not in ("queued", "running") else None


def pending(url, key, run_id):
    s, _, body = http("GET", f"{url}/v1/approvals?run_id={run_id}", key)
    return body["approvals"] if s == 200 and body["approvals"] else None


def templates(url):
    s, _, body = http("GET", f"{url}/v1/templates", USER_KEY)
    check("templates: the directory's file is listed", s == 200 and [(t["name"], t["version"], t["source"]) for t in body["templates"]] == [("hello", "1.0.0", "file:hello.json")], body)
    v2 = dict(HELLO, version="1.1.0", description="Greets twice.")
    s, h, body = http("POST", f"{url}/v1/templates", USER_KEY, v2)
    check("templates: a user may not create a version", s == 403, (s, body))
    s, h, body = http("POST", f"{url}/v1/templates", ADMIN_KEY, v2)
    check("templates: an admin creates 1.1.0", s == 201 and h.get("Location") == "/v1/templates/hello/1.1.0" and body["hash"].startswith("sha256:"), (s, body))
    s, _, body = http("POST", f"{url}/v1/templates", ADMIN_KEY, dict(v2, description="changed"))
    check("templates: a version never changes (409)", s == 409 and body["error"]["code"] == "version_exists", (s, body))
    s, _, body = http("POST", f"{url}/v1/templates", ADMIN_KEY, dict(v2, version="2.0.0", plan={"steps": [{"id": "x", "call": "nope.nope"}]}))
    check("templates: a template calling an unknown tool is refused (422)", s == 422, (s, body))
    s, _, body = http("POST", f"{url}/v1/templates/hello/render", USER_KEY, {"version": "1.0", "params": {"who": "ann"}})
    check("templates: render with defaults", s == 200 and body["plan"]["steps"][0]["input"] == {"text": "hello ann", "times": 2} and body["template"]["version"] == "1.0.0", body)
    s, _, body = http("POST", f"{url}/v1/templates/hello/render", USER_KEY, {"params": {"times": 3}})
    check("templates: missing param is a 422 naming it", s == 422 and "who" in json.dumps(body), (s, body))
    s, _, body = http("POST", f"{url}/v1/runs", USER_KEY, {"template": "hello@1", "params": {"who": "bo"}})
    check("templates: run by template accepted", s == 202, (s, body))
    if s != 202:
        return
    run = wait_for(lambda: run_status(url, body["run_id"], USER_KEY), "the template run")
    s, _, ep = http("GET", f"{url}/v1/episodes/{body['run_id']}", USER_KEY)
    t = ep["document"].get("template", {}) if s == 200 else {}
    check("templates: the run records the exact version and hash", run["status"] == "succeeded" and t.get("version") == "1.1.0"
          and t.get("hash", "").startswith("sha256:") and t.get("params") == {"who": "bo", "times": 2}, (run, t))


async def decide_over_mcp(url, approval_id):
    """approvals.decide through the MCP gateway with the installed SDK (2.x or 1.x)."""
    import importlib.metadata
    from mcp import ClientSession
    major = int(importlib.metadata.version("mcp").split(".")[0])
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    if major >= 2:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client
        transport = streamable_http_client(f"{url}/mcp", http_client=httpx2.AsyncClient(headers=headers, timeout=60))
    else:
        from mcp.client.streamable_http import streamablehttp_client
        transport = streamablehttp_client(f"{url}/mcp", headers=headers)
    async with transport as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            names = [t.name for t in (await session.list_tools()).tools]
            res = await session.call_tool("approvals.decide", {"id": approval_id, "decision": "approve", "comment": "via mcp"})
            return names, res


def approvals_over_rest_and_mcp(url):
    plan = {"steps": [{"id": "v", "call": "echo.version"}]}
    s, _, body = http("POST", f"{url}/v1/runs", USER_KEY, {"plan": plan})
    run_id = body.get("run_id")
    req = wait_for(lambda: pending(url, USER_KEY, run_id), "a pending approval")[0]
    check("approvals: the request carries tool, input digest, principal, rule", req["tool"] == "echo.version" and req["principal"] == "alice"
          and req["rule"] == "version-needs-a-person" and req["input_digest"].startswith("sha256:"), req)
    s, _, body = http("POST", f"{url}/v1/approvals/{req['id']}", USER_KEY, {"decision": "approve"})
    check("approvals: the requester (a user) may not approve (403)", s == 403, (s, body))
    names, res = asyncio.run(decide_over_mcp(url, req["id"]))
    check("approvals: MCP lists approvals.decide", "approvals.decide" in names and "approvals.list" in names, names)
    check("approvals: approved over MCP", not res.isError if hasattr(res, "isError") else not res.is_error, res)
    run = wait_for(lambda: run_status(url, run_id, USER_KEY), "the approved run")
    s, _, ep = http("GET", f"{url}/v1/episodes/{run_id}", USER_KEY)
    approval = ep["document"]["steps"][0]["attempts"][0].get("approval", {}) if s == 200 else {}
    check("approvals: the run ran after approval; the episode says who and why", run["status"] == "succeeded"
          and approval.get("decided_by") == "admin" and approval.get("comment") == "via mcp", (run, approval))
    s, _, body = http("POST", f"{url}/v1/approvals/{req['id']}", ADMIN_KEY, {"decision": "deny"})
    check("approvals: deciding twice is a 409", s == 409 and body["error"]["code"] == "not_pending", (s, body))


def approval_survives_a_restart():
    proc, url = start_serve(ARGS, f"{WORK}/serve1.log")
    plan = {"steps": [{"id": "first", "call": "echo.echo", "input": {"n": 1}},
                      {"id": "second", "call": "echo.version", "depends_on": ["first"]}]}
    s, _, body = http("POST", f"{url}/v1/runs", USER_KEY, {"plan": plan})
    run_id = body.get("run_id")
    req = wait_for(lambda: pending(url, ADMIN_KEY, run_id), "a pending approval")[0]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc, url = start_serve(ARGS, f"{WORK}/serve2.log")
    try:
        cli = subprocess.run([BIN, "approvals", "approve", req["id"], "--principal", "admin", "--comment", "after restart",
                              "--data", DATA, "--policy", f"{WORK}/policy.json", "--json"], capture_output=True, text=True)
        check("approvals: the CLI approves while the server runs", cli.returncode == 0 and json.loads(cli.stdout or "{}").get("status") == "approved",
              cli.stderr)
        run = wait_for(lambda: run_status(url, run_id, USER_KEY), "the resumed run", tries=1200)
        s, _, ep = http("GET", f"{url}/v1/episodes/{run_id}", USER_KEY)
        steps = ep["document"]["steps"] if s == 200 else []
        check("approvals: the run resumed after the restart and succeeded", run["status"] == "succeeded", run)
        check("approvals: the step finished before the crash was restored, not run again",
              len(steps) == 2 and steps[0].get("resumed") is True and steps[1]["attempts"][0]["approval"]["decided_by"] == "admin", steps)
        check("approvals: a later attempt of the job ran it", ep["document"].get("job", {}).get("attempt", 0) >= 2, ep["document"].get("job"))
    finally:
        proc.terminate()
        proc.wait()


def audit(url):
    """The control-plane audit log: actions through REST and a failed authentication are
    recorded with who did them; the export verifies offline and a changed line is named."""
    http("GET", f"{url}/v1/templates", "nova_not_a_key")
    s, _, agent = http("POST", f"{url}/v1/agents", ADMIN_KEY, {"name": "audited", "principal": "admin"})
    http("POST", f"{url}/v1/agents/{agent.get('id', 'x')}/pause", ADMIN_KEY)
    http("POST", f"{url}/v1/policy/reload", ADMIN_KEY)
    s, _, body = http("GET", f"{url}/v1/audit", USER_KEY)
    check("audit: a user may not read the audit log (403)", s == 403, (s, body))
    entries = []
    for _ in range(100):  # the policy reload's entry is written just after its answer
        s, _, body = http("GET", f"{url}/v1/audit?limit=1000", ADMIN_KEY)
        entries = body.get("entries", []) if s == 200 else []
        if any(e["action"] == "policy.reload" for e in entries):
            break
        time.sleep(0.05)
    seen = {(e["actor"], e["action"]) for e in entries}
    expected = {("unknown", "auth.failure"), ("admin", "agent.create"), ("admin", "agent.pause"), ("admin", "template.create"),
                ("admin", "approval.approve"), ("admin", "policy.reload"), ("system", "template.import")}
    check("audit: every control-plane action is recorded with its actor", expected <= seen, sorted(seen))
    check("audit: no credential is recorded", "nova_not_a_key" not in json.dumps(entries) and ADMIN_KEY not in json.dumps(entries), entries[:3])
    s, _, body = http("GET", f"{url}/v1/audit/verify", ADMIN_KEY)
    check("audit: the chain verifies", s == 200 and body["intact"] is True and body["entries"] == len(entries), body)
    req = urllib.request.Request(f"{url}/v1/audit?limit=1000", headers={"Authorization": f"Bearer {ADMIN_KEY}", "Accept": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=30) as r:
        lines = r.read().decode().splitlines()
    path = f"{WORK}/audit.jsonl"
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    ok = subprocess.run([BIN, "audit", "verify", "--file", path, "--json"], capture_output=True, text=True)
    check("audit: the JSON-lines export verifies offline", ok.returncode == 0 and json.loads(ok.stdout)["intact"] is True, (ok.stdout, ok.stderr))
    tampered = [json.loads(l) for l in lines]
    tampered[2]["actor"] = "mallory"
    with open(path, "w") as fh:
        fh.write("\n".join(json.dumps(e) for e in tampered) + "\n")
    bad = subprocess.run([BIN, "audit", "verify", "--file", path, "--json"], capture_output=True, text=True)
    out = json.loads(bad.stdout or "{}")
    check("audit: a changed entry is named by verify", bad.returncode == 1 and out.get("broken", {}).get("seq") == tampered[2]["seq"], (bad.stdout, bad.stderr))


proc, url = start_serve(ARGS, f"{WORK}/serve0.log")
try:
    templates(url)
    approvals_over_rest_and_mcp(url)
    audit(url)
finally:
    proc.terminate()
    proc.wait()
approval_survives_a_restart()
finish()
