"""Shared helpers of the end-to-end tests: results, HTTP, environment."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

RESULTS = []


def check(name, condition, detail=""):
    """Records one test; prints `ok NAME` or `FAIL NAME: detail` (run-e2e.sh counts them)."""
    RESULTS.append((name, bool(condition)))
    if condition:
        print(f"ok {name}", flush=True)
    else:
        print(f"FAIL {name}: {detail}", flush=True)


def env(name):
    value = os.environ.get(name)
    if not value:
        print(f"FAIL environment: {name} is not set (run Tests/server/run-e2e.sh)", flush=True)
        sys.exit(1)
    return value


def http(method, url, key=None, body=None, headers=None):
    """One request; returns (status, headers, parsed JSON or text)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw, status, hdrs = r.read(), r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        raw, status, hdrs = e.read(), e.code, dict(e.headers)
    try:
        return status, hdrs, json.loads(raw)
    except ValueError:
        return status, hdrs, raw.decode(errors="replace")


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(args, log_path):
    """Starts `nova-host serve --listen 127.0.0.1:<free port>` with `args`, its log in
    `log_path`, and waits until /health answers. Returns (process, base URL)."""
    port = free_port()
    proc = subprocess.Popen([env("NOVA_HOST_BIN"), "serve", "--listen", f"127.0.0.1:{port}", *args],
                            stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if http("GET", f"{url}/health")[0] == 200:
                return proc, url
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"the server did not start: {open(log_path).read()[-2000:]}")


def stop_all(procs):
    """SIGTERM to every process, then waits for each (SIGKILL after 10 s)."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def finish():
    failed = sum(1 for _, ok in RESULTS if not ok)
    sys.exit(1 if failed else 0)
