#!/usr/bin/env python3
"""Crash test of the durable queue (issue 12): one `nova-host serve` accepts runs and
`--workers` `nova-host worker` processes execute them from one store, while workers are
SIGKILLed and restarted at random moments. At the end every run succeeded exactly once — one
episode, one `succeeded` attempt in its job's history, earlier attempts `interrupted` — none
lost, none stuck, and the episode chain verifies.

    crash_test.py --backend postgres|sqlite [--runs 1000] [--workers 3] [--kills 12] [--seed 7]

Needs NOVA_HOST_BIN (default .build/debug/nova-host), the echo driver in NOVA_DRIVERS
(default drivers/), and for PostgreSQL NOVA_TEST_PG_DSN (Tests/servers/with-servers.sh sets
it; a fresh database is created for the run). Prints `ok …`/`FAIL …` lines; exits 1 on failure.
"""
import argparse
import hashlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("NOVA_HOST_BIN", os.path.join(ROOT, ".build/debug/nova-host"))
DRIVERS = os.environ.get("NOVA_DRIVERS", os.path.join(ROOT, "drivers"))
POLICY = os.path.join(ROOT, "Tests/server/policy.e2e.json")
FAILED = []


def check(name, ok, detail=""):
    print(("ok " if ok else "FAIL ") + name + ("" if ok else f": {str(detail)[:2000]}"), flush=True)
    if not ok:
        FAILED.append(name)


def http(method, url, key, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fresh_postgres_url():
    base = os.environ.get("NOVA_TEST_PG_DSN")
    if not base:
        print("FAIL setup: NOVA_TEST_PG_DSN is not set (run under Tests/servers/with-servers.sh)")
        sys.exit(1)
    name = "nova_crash_" + secrets.token_hex(6)
    u = urllib.parse.urlparse(base)
    env = dict(os.environ, PGPASSWORD=urllib.parse.unquote(u.password or ""))
    subprocess.run(["psql", "-h", u.hostname, "-p", str(u.port), "-U", urllib.parse.unquote(u.username), "-d", u.path.lstrip("/"),
                    "-v", "ON_ERROR_STOP=1", "-qc", f"CREATE DATABASE {name}"], env=env, check=True)
    return u._replace(path="/" + name).geturl()


class Cluster:
    def __init__(self, backend, workers, lease):
        self.work = tempfile.mkdtemp(prefix=f"nova-crash-{backend}-")
        self.store = fresh_postgres_url() if backend == "postgres" else None
        self.lease = lease
        self.user_key = "nova_crash_" + secrets.token_hex(12)
        self.config = os.path.join(self.work, "host.json")
        with open(self.config, "w") as f:
            json.dump({"api_keys": [{"id": "u", "principal": "alice", "role": "user",
                                     "sha256": hashlib.sha256(self.user_key.encode()).hexdigest()}],
                       "worker": {"enabled": False}}, f)
        self.workers = [None] * workers
        self.starts = 0
        self.kills = 0

    def data(self, name):
        # With PostgreSQL every process has a data directory of its own (nothing shared but
        # the database); with SQLite they all share one.
        d = os.path.join(self.work, name if self.store else "data")
        os.makedirs(d, exist_ok=True)
        return d

    def common(self, name):
        args = ["--drivers", DRIVERS, "--policy", POLICY, "--data", self.data(name)]
        return args + (["--store", self.store] if self.store else [])

    def start_serve(self):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.serve = subprocess.Popen([BIN, "serve", "--config", self.config, "--listen", f"127.0.0.1:{port}",
                                       "--log-level", "warning", *self.common("serve")],
                                      stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.work, "serve.log"), "w"))
        for _ in range(600):
            try:
                urllib.request.urlopen(self.url + "/health", timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("FAIL setup: serve did not start: " + open(os.path.join(self.work, "serve.log")).read()[-2000:])

    def start_worker(self, i):
        self.starts += 1
        log = open(os.path.join(self.work, f"worker-{i}.log"), "a")
        self.workers[i] = subprocess.Popen([BIN, "worker", "--concurrency", "4", "--lease-seconds", str(self.lease), "--poll-ms", "100",
                                            "--log-level", "warning", *self.common(f"worker-{i}")],
                                           stdout=subprocess.DEVNULL, stderr=log)

    def kill_worker(self, i):
        self.workers[i].send_signal(signal.SIGKILL)
        self.workers[i].wait()
        self.kills += 1

    def cli(self, *args):
        """A data command (jobs, runs, episodes) on the store."""
        store = ["--store", self.store] if self.store else []
        return subprocess.run([BIN, *args, "--data", self.data("cli"), *store], capture_output=True, text=True)

    def stop(self):
        for p in self.workers:
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.workers:
            if p:
                p.wait(timeout=60)
        self.serve.send_signal(signal.SIGTERM)
        return self.serve.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["postgres", "sqlite"], required=True)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--kills", type=int, default=12)
    ap.add_argument("--lease", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    c = Cluster(a.backend, a.workers, a.lease)
    c.start_serve()
    for i in range(a.workers):
        c.start_worker(i)

    # Short runs, every fourth sleeping a little so that kills often land inside a run;
    # submitted from a thread while the main thread kills and restarts workers.
    ids = []
    refused = []

    def submit():
        for n in range(a.runs):
            steps = [{"id": "a", "call": "echo.echo", "input": {"n": n}}]
            if n % 4 == 0:
                steps.append({"id": "b", "call": "echo.sleep", "input": {"ms": 100}, "depends_on": ["a"]})
            status, body = http("POST", c.url + "/v1/runs", c.user_key, {"plan": {"name": f"crash-{n}", "steps": steps}})
            if status != 202:
                refused.append((n, status, body))
                return
            ids.append(body["run_id"])

    submitter = threading.Thread(target=submit)
    submitter.start()
    while c.kills < a.kills or submitter.is_alive():
        time.sleep(0.2 + rng.random() * 0.6)
        if c.kills < a.kills:
            i = rng.randrange(a.workers)
            c.kill_worker(i)
            time.sleep(rng.random() * 0.2)
            c.start_worker(i)
    submitter.join()
    check(f"submit: {a.runs} runs accepted", len(ids) == a.runs and not refused, refused[:3])

    # Wait until the queue is drained (a rescued job waits at most about one lease).
    deadline = time.time() + 600
    pending = None
    while time.time() < deadline:
        out = c.cli("jobs", "list", "--state", "available,running,retryable", "--json", "--limit", "10000")
        try:
            pending = json.loads(out.stdout)["total"]
        except (ValueError, KeyError):
            pending = out.stderr
            if out.returncode == 2:
                break
        if pending == 0:
            break
        time.sleep(0.5)
    check("drain: no job left available, running or retryable", pending == 0, pending)
    code = c.stop()
    check("serve: SIGTERM exits 0", code == 0, open(os.path.join(c.work, "serve.log")).read()[-1500:])

    jobs = json.loads(c.cli("jobs", "list", "--json", "--limit", "10000").stdout)["jobs"]
    by_id = {j["id"]: j for j in jobs}
    lost = [i for i in ids if i not in by_id]
    check("no run lost: every accepted run has its job", not lost, lost[:5])
    not_once = [(i, [x["outcome"] for x in by_id[i]["attempts"]]) for i in ids if i in by_id
                and ([x["outcome"] for x in by_id[i]["attempts"]].count("succeeded") != 1
                     or by_id[i]["state"] != "succeeded"
                     or any(x["outcome"] not in ("interrupted", "succeeded") for x in by_id[i]["attempts"]))]
    check("every job succeeded exactly once; earlier attempts are recorded interrupted", not not_once, not_once[:5])
    retried = sum(1 for i in ids if i in by_id and len(by_id[i]["attempts"]) > 1)
    print(f"   {c.kills} worker kills, {c.starts} worker starts, {retried} runs needed more than one attempt", flush=True)
    check("the kills interrupted some runs (the test exercised rescue)", retried > 0, retried)

    episodes = json.loads(c.cli("episodes", "list", "--json", "--limit", str(a.runs * 2)).stdout)
    recorded = [e["run_id"] for e in episodes]
    check("every run has exactly one episode", sorted(recorded) == sorted(ids),
          (len(recorded), len(set(recorded)), len(ids), sorted(set(ids) - set(recorded))[:5]))
    check("every episode says succeeded", all(e["status"] == "succeeded" for e in episodes),
          [e for e in episodes if e["status"] != "succeeded"][:3])
    sample = [i for i in ids if i in by_id and len(by_id[i]["attempts"]) > 1][:3]
    for i in sample:
        doc = json.loads(c.cli("episodes", "show", i).stdout)
        last = by_id[i]["attempts"][-1]["attempt"]
        if doc.get("job", {}).get("attempt") != last and by_id[i]["result"].get("note") is None:
            check("a retried run's episode names the attempt that produced it", False, (doc.get("job"), by_id[i]["attempts"]))
            break
    else:
        check("a retried run's episode names the attempt that produced it", True)
    verify = c.cli("episodes", "verify")
    check("the episode chain verifies", verify.returncode == 0, verify.stdout + verify.stderr)
    print(f"crash test ({a.backend}): {'FAILED' if FAILED else 'passed'}", flush=True)
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
