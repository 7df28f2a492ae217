#!/usr/bin/env python3
"""Dashboard page load with many runs in the store (issue 17: "< 300 ms with 10,000 runs").

Starts a real `nova-host serve` (release binary by default) on a fresh data directory, records
N runs through POST /v1/runs (its own worker runs them; every tenth is a goal of one agent,
and half of the others have a second plan name, so the agent and plan filters select part of
the store), 200 memories of the agent and 100 dead letters of a bus subscription, logs in to
/ui like a browser (the login form's token, then the session cookie) and times each page over
one keep-alive connection: ROUNDS requests per page, median and p95 in milliseconds, against
the 300 ms goal.

    NOVA_HOST_BIN=.build/release/nova-host RUNS=10000 ROUNDS=15 python3 Benchmarks/ui/page-load.py
"""
import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("NOVA_HOST_BIN", f"{ROOT}/.build/release/nova-host")
RUNS = int(os.environ.get("RUNS", "10000"))
ROUNDS = int(os.environ.get("ROUNDS", "15"))
GOAL_MS = 300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(work, key):
    config = {"api_keys": [{"id": "bench", "principal": "admin", "role": "admin", "sha256": hashlib.sha256(key.encode()).hexdigest()}],
              "mcp": {"allowed_hosts": ["127.0.0.1:*"]}}
    with open(f"{work}/host.json", "w") as fh:
        json.dump(config, fh)
    # No rate limits or budgets: the default profile's per-principal bucket would deny most of
    # the seeded runs, and this measures pages, not the policy.
    with open(f"{work}/policy.json", "w") as fh:
        json.dump({"roles": ["admin"], "principals": {"admin": "admin"},
                   "rules": [{"id": "all", "effect": "allow", "roles": ["admin"], "tools": ["*"]}]}, fh)
    port = free_port()
    proc = subprocess.Popen([BIN, "serve", "--config", f"{work}/host.json", "--listen", f"127.0.0.1:{port}", "--drivers", f"{ROOT}/drivers",
                             "--data", f"{work}/data", "--policy", f"{work}/policy.json", "--log-level", "error",
                             "--concurrency", "16"], stdout=subprocess.DEVNULL, stderr=open(f"{work}/serve.log", "w"))
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"serve did not start: {open(f'{work}/serve.log').read()[-2000:]}")


def api(c, key, method, path, body=None):
    c.request(method, path, json.dumps(body).encode() if body is not None else None,
              {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        raise SystemExit(f"{method} {path} answered {r.status}: {data[:300]!r}")
    return json.loads(data) if data else None


def seed(port, key):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    agent = api(c, key, "POST", "/v1/agents", {"name": "bench-agent", "labels": {"team": "bench"}})
    plans = [{"name": name, "steps": [{"id": "a", "call": "echo.echo", "input": {"n": 1}}, {"id": "b", "call": "text.upper", "input": {"text": "x"}}]}
             for name in ("bench-plan", "bench-other")]
    run_bodies = [json.dumps({"plan": p}).encode() for p in plans]
    goal_body = json.dumps({"goal": "bench goal", "plan": plans[0]}).encode()

    def post(indices):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in indices:
            goal = i % 10 == 0
            path = f"/v1/agents/{agent['id']}/goals" if goal else "/v1/runs"
            conn.request("POST", path, goal_body if goal else run_bodies[i % 2],
                         {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status != 202:
                raise SystemExit(f"POST {path} answered {r.status}")
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(post, [range(i, RUNS, 8) for i in range(8)]))
    while True:
        # Recorded runs of any outcome: the index holds them once their episodes are written.
        total = 0
        for status in ("succeeded", "failed", "denied", "cancelled", "interrupted"):
            total += api(c, key, "GET", f"/v1/runs?status={status}&limit=1")["total"]
        print(f"\r  recorded {total}/{RUNS}", end="", file=sys.stderr, flush=True)
        if total >= RUNS:
            break
        time.sleep(0.5)
    print(f"\r  {RUNS} runs recorded in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    words = ["warehouse", "invoice", "shipment", "customer", "refund", "carrier", "pallet", "forecast"]
    for i in range(200):
        api(c, key, "POST", f"/v1/agents/{agent['id']}/memory", {"text": f"note {i}: {words[i % 8]} {words[(i * 3) % 8]} for order {i}"})
    api(c, key, "POST", "/v1/topics", {"name": "bench.events"})
    api(c, key, "POST", "/v1/subscriptions", {"id": "bench-sub", "topic": "bench.events", "max_deliveries": 1})
    for i in range(100):
        api(c, key, "POST", "/v1/topics/bench.events/messages", {"payload": {"n": i}})
    dead = 0
    while dead < 100:
        got = api(c, key, "GET", "/v1/subscriptions/bench-sub/messages?max=100&wait=0")["messages"]
        for m in got:
            api(c, key, "POST", "/v1/subscriptions/bench-sub/nack", {"receipt": m["receipt"], "error": "bench"})
        dead += len(got)
    return agent["id"]


def login(port, key):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", "/ui/login")
    r = c.getresponse()
    page = r.read().decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    login_cookie = r.getheader("Set-Cookie").split(";")[0]
    form = urllib.parse.urlencode({"csrf": token, "next": "/ui", "credential": key})
    c.request("POST", "/ui/login", form, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": login_cookie})
    r = c.getresponse()
    r.read()
    cookies = [v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie" and v.startswith("nova_session")]
    if r.status not in (302, 303) or not cookies:
        raise SystemExit(f"login failed: {r.status}")
    return cookies[0]


def time_page(port, cookie, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for _ in range(ROUNDS + 1):
        t0 = time.perf_counter()
        c.request("GET", path, headers={"Cookie": cookie})
        r = c.getresponse()
        r.read()
        samples.append((time.perf_counter() - t0) * 1000)
        if r.status != 200:
            raise SystemExit(f"{path} answered {r.status}")
    samples = samples[1:]  # the first request warms caches
    return statistics.median(samples), sorted(samples)[max(0, int(len(samples) * 0.95) - 1)]


def main():
    if not os.access(BIN, os.X_OK):
        raise SystemExit(f"no nova-host at {BIN} (swift build -c release --product nova-host, or set NOVA_HOST_BIN)")
    work = tempfile.mkdtemp(prefix="nova-ui-bench.")
    key = "nova_bench_" + secrets.token_hex(16)
    proc, port = start(work, key)
    try:
        agent_id = seed(port, key)
        cookie = login(port, key)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", "/v1/runs?limit=1", headers={"Authorization": f"Bearer {key}"})
        run_id = json.loads(c.getresponse().read())["runs"][0]["run_id"]
        pages = ["/ui", "/ui?window=24h", "/ui/runs", "/ui/runs?plan=bench-other", "/ui/runs?agent=bench-agent", "/ui/runs?agent=bench-agent&status=succeeded",
                 f"/ui/runs/{run_id}", "/ui/agents", "/ui/agents?q=bench", f"/ui/agents/{agent_id}", f"/ui/agents/{agent_id}?q=warehouse",
                 "/ui/approvals", "/ui/jobs", "/ui/jobs/subscriptions/bench-sub"]
        print(f"dashboard pages with {RUNS} runs in the store ({ROUNDS} requests each, one keep-alive connection)")
        print(f"{'page':<48} {'median ms':>10} {'p95 ms':>8}  goal < {GOAL_MS} ms")
        for path in pages:
            med, p95 = time_page(port, cookie, path)
            shown = path if len(path) < 40 else path[:20] + "…" + path[-8:]
            print(f"{shown:<48} {med:>10.1f} {p95:>8.1f}  {'met' if p95 < GOAL_MS else 'NOT MET'}")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
