"""REST checks against the live `nova-host serve`, and graceful shutdown of a real process
(SIGTERM): in-flight runs finish, or are recorded as interrupted."""
from http.client import HTTPConnection
import json
import os
import urllib.parse
import signal
import socket
import subprocess
import tempfile
import time

from e2e_common import check, env, finish, http, start_serve

URL = env("NOVA_URL")
USER_KEY = env("NOVA_USER_KEY")
ADMIN_KEY = env("NOVA_ADMIN_KEY")
BIN = env("NOVA_HOST_BIN")


def rest():
    status, headers, body = http("GET", f"{URL}/health")
    check("rest: /health is public", status == 200 and body == {"status": "ok"}, body)
    check("rest: security headers", headers.get("X-Content-Type-Options") == "nosniff" and headers.get("X-Frame-Options") == "DENY"
          and "default-src 'none'" in headers.get("Content-Security-Policy", ""), headers)
    status, headers, body = http("GET", f"{URL}/health", headers={"X-Request-ID": "e2e-req-1"})
    check("rest: X-Request-ID echoed", headers.get("X-Request-ID") == "e2e-req-1", headers)
    status, _, body = http("POST", f"{URL}/tools/echo.echo", USER_KEY, {"hello": "world"})
    check("rest: POST /tools/echo.echo", status == 200 and body["output"] == {"hello": "world"} and body["episode"]["seq"] >= 1, body)
    status, _, body = http("POST", f"{URL}/tools/echo.fail", USER_KEY, {})
    check("rest: policy denial is 403 with the rule's reason",
          status == 403 and body["error"]["code"] == "denied" and body["error"]["message"] == "echo.fail is for admins", body)
    status, _, body = http("POST", f"{URL}/tools/echo.echo", None, {})
    check("rest: no credentials is 401", status == 401 and body["error"]["code"] == "unauthorized", body)
    plan = {"name": "e2e", "steps": [{"id": "a", "call": "echo.echo", "input": {"x": 1}}]}
    status, headers, body = http("POST", f"{URL}/v1/runs", USER_KEY, {"plan": plan}, {"Idempotency-Key": "e2e-1"})
    run_id = body.get("run_id") if isinstance(body, dict) else None
    check("rest: POST /v1/runs is 202 with Location", status == 202 and headers.get("Location") == f"/v1/runs/{run_id}", (status, body))
    check("rest: the accepted run is queued (a durable job)", body.get("status") == "queued" and body.get("job", {}).get("state") == "available", body)
    for _ in range(3000):
        status, _, body = http("GET", f"{URL}/v1/runs/{run_id}", USER_KEY)
        if body.get("status") not in ("running", "queued"):
            break
        time.sleep(0.01)
    check("rest: the run succeeds", body.get("status") == "succeeded" and body.get("output") == {"x": 1}, body)
    check("rest: the run says which job attempt recorded it", body.get("recorded_by", {}).get("attempt") == 1, body)
    status, _, again = http("POST", f"{URL}/v1/runs", USER_KEY, {"plan": plan}, {"Idempotency-Key": "e2e-1"})
    check("rest: Idempotency-Key replays the run", status == 202 and again.get("run_id") == run_id, again)
    status, _, text = http("GET", f"{URL}/metrics", ADMIN_KEY)
    check("rest: /metrics has tool calls", status == 200 and 'nova_tool_calls_total{driver="echo",tool="echo",outcome="ok"}' in text, text[:300])


def raw(method, path, body=b"", headers=None):
    """One request over a fresh TCP connection with exactly these headers (urllib would add a
    Content-Type of its own)."""
    addr = urllib.parse.urlparse(URL)
    conn = HTTPConnection(addr.hostname, addr.port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    text = r.read().decode(errors="replace")
    conn.close()
    try:
        return r.status, dict(r.getheaders()), json.loads(text)
    except ValueError:
        return r.status, dict(r.getheaders()), text


def conformance():
    status, _, body = raw("POST", "/tools/echo.echo", b'{"a": 1}', {"Authorization": f"Bearer {USER_KEY}"})
    check("rest: a body without Content-Type is 415", status == 415 and body["error"]["code"] == "unsupported_media_type", (status, body))
    status, _, body = raw("POST", "/tools/echo.echo", b'{"a": 1}', {"Authorization": f"Bearer {USER_KEY}", "Content-Type": "text/plain"})
    check("rest: a text/plain body is 415", status == 415, (status, body))
    status, headers, body = raw("GET", "/v1/drivers/reload", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    check("rest: GET /v1/drivers/reload is 405 and Allow lists only POST",
          status == 405 and headers.get("Allow") == "POST" and "allowed: POST)" in body["error"]["message"], (status, headers, body))
    status, _, text = http("GET", f"{URL}/metrics", ADMIN_KEY)
    check("rest: nova_episode_write_failures_total is exported (0)",
          status == 200 and "\nnova_episode_write_failures_total 0" in text, text[:2000])


def rate_limit():
    """text.length allows alice one call an hour (policy.e2e.json): the second call is 429."""
    replies = [http("POST", f"{URL}/tools/text.length", USER_KEY, {"text": "abc"}) for _ in range(2)]
    status, headers, body = replies[1]
    retry = headers.get("Retry-After", "")
    check("rest: a rate-limited call is 429 with Retry-After",
          replies[0][0] in (200, 429) and status == 429 and body["error"]["code"] == "rate_limited" and retry.isdigit() and int(retry) >= 1
          and body["error"].get("retry_after_ms", 0) > 0, replies)


def disconnect():
    """A REST client that closes its connection while waiting on /tools/{id}: the call is
    cancelled and recorded `cancelled` (episode and metric), not `interrupted`."""
    addr = urllib.parse.urlparse(URL)
    payload = json.dumps({"ms": 30000}).encode()
    sock = socket.create_connection((addr.hostname, addr.port))
    sock.sendall(b"POST /tools/echo.sleep HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 + f"Authorization: Bearer {USER_KEY}\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
    run_id = None
    for _ in range(3000):
        _, _, body = http("GET", f"{URL}/v1/runs?status=running&limit=100", USER_KEY)
        ids = [r["run_id"] for r in body.get("runs", []) if r.get("plan_name") == "tool:echo.sleep"]
        if ids:
            run_id = ids[0]
            break
        time.sleep(0.02)
    sock.close()
    run = {}
    for _ in range(3000):
        _, _, run = http("GET", f"{URL}/v1/runs/{run_id}", USER_KEY)
        if run.get("status") != "running":
            break
        time.sleep(0.02)
    check("rest: a client that disconnects while waiting is recorded cancelled", run_id and run.get("status") == "cancelled", run)
    _, _, text = http("GET", f"{URL}/metrics", ADMIN_KEY)
    check("rest: the runs metric counts the disconnect as cancelled", 'nova_runs_total{origin="tool",status="cancelled"}' in text, text[-3000:])


def start_server(config, data):
    cfg = os.path.join(data, "host.json")
    with open(cfg, "w") as f:
        json.dump(config, f)
    return start_serve(["--config", cfg, "--drivers", env("NOVA_E2E_DRIVERS"), "--data", data, "--policy", env("NOVA_E2E_POLICY")],
                       os.path.join(data, "server.log"))


def episode_status(data, run_id):
    out = subprocess.run([BIN, "episodes", "show", run_id, "--data", data], capture_output=True, text=True)
    try:
        return json.loads(out.stdout).get("status")
    except ValueError:
        return f"unreadable: {out.stderr}"


def shutdown(grace, sleep_ms, expected):
    data = tempfile.mkdtemp(prefix="nova-e2e-shutdown-")
    config = json.loads(env("NOVA_E2E_CONFIG_JSON"))
    config["shutdown_grace_seconds"] = grace
    proc, url = start_server(config, data)
    plan = {"name": "nap", "steps": [{"id": "nap", "call": "echo.sleep", "input": {"ms": sleep_ms}}]}
    status, _, body = http("POST", f"{url}/v1/runs", USER_KEY, {"plan": plan})
    run_id = body.get("run_id")
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = "timeout"
    name = f"shutdown: SIGTERM with grace {grace}s and a {sleep_ms} ms run -> {expected}"
    check(name, status == 202 and code == 0 and episode_status(data, run_id) == expected,
          (status, code, episode_status(data, run_id), open(os.path.join(data, "server.log")).read()[-2000:]))


def cli_json(*args):
    out = subprocess.run([BIN, *args], capture_output=True, text=True)
    try:
        return json.loads(out.stdout)
    except ValueError:
        return {"unreadable": out.stdout + out.stderr}


def shutdown_requeues():
    """SIGTERM with a queued run still running past the grace period: nothing is recorded, the
    job goes back to the queue with its attempt `interrupted`; a `nova-host worker` on the same
    data directory then runs it as attempt 2, which its episode names."""
    data = tempfile.mkdtemp(prefix="nova-e2e-requeue-")
    config = json.loads(env("NOVA_E2E_CONFIG_JSON"))
    config["shutdown_grace_seconds"] = 0.3
    proc, url = start_server(config, data)
    plan = {"name": "nap", "steps": [{"id": "nap", "call": "echo.sleep", "input": {"ms": 3000}}]}
    status, _, body = http("POST", f"{url}/v1/runs", USER_KEY, {"plan": plan})
    run_id = body.get("run_id")
    for _ in range(3000):
        if http("GET", f"{url}/v1/runs/{run_id}", USER_KEY)[2].get("status") == "running":
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    job = cli_json("jobs", "show", run_id, "--data", data)
    check("shutdown: a queued run past the grace period goes back to the queue, unrecorded",
          status == 202 and code == 0 and episode_status(data, run_id) != "interrupted" and job.get("state") == "retryable"
          and [a.get("outcome") for a in job.get("attempts", [])] == ["interrupted"], (status, code, job))
    worker = subprocess.Popen([BIN, "worker", "--data", data, "--drivers", env("NOVA_E2E_DRIVERS"), "--policy", env("NOVA_E2E_POLICY"),
                               "--poll-ms", "50"], stdout=subprocess.DEVNULL, stderr=open(os.path.join(data, "worker.log"), "w"))
    for _ in range(6000):
        if episode_status(data, run_id) == "succeeded":
            break
        time.sleep(0.02)
    episode = cli_json("episodes", "show", run_id, "--data", data)
    run = cli_json("runs", "show", run_id, "--data", data)
    check("worker: runs the released run as attempt 2, recorded by the episode",
          episode.get("status") == "succeeded" and episode.get("job", {}).get("attempt") == 2, (episode, open(os.path.join(data, "worker.log")).read()[-1500:]))
    check("runs show: both attempts in the run's history",
          [a.get("outcome") for a in run.get("job", {}).get("attempts", [])] == ["interrupted", "succeeded"], run)
    worker.send_signal(signal.SIGTERM)
    check("worker: SIGTERM exits 0", worker.wait(timeout=30) == 0, open(os.path.join(data, "worker.log")).read()[-1500:])


rest()
conformance()
rate_limit()
disconnect()
shutdown(10, 1000, "succeeded")
shutdown_requeues()
finish()
