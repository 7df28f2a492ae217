#!/usr/bin/env python3
"""The message bus (issue 14) beside Redis Streams, on this machine, in one run.

Both are driven the same way from Python, one connection per thread: a producer publishes, C
consumers (1 and 8) receive up to 10 at a time with a blocking wait, then ack what they got.

- nova-host: `nova-host serve` on the SQLite store (data directory on local disk) and on the
  PostgreSQL store (NOVA_TEST_PG_DSN), over HTTP/1.1 keep-alive: POST /v1/topics/{t}/messages,
  GET /v1/subscriptions/{s}/messages?wait=…&max=10, POST …/ack. Every publish and ack is
  durable on commit (SQLite synchronous=FULL; PostgreSQL's default synchronous_commit=on).
- Redis Streams: redis-server (Debian) with appendonly yes, appendfsync everysec, through
  redis-py: XADD, XREADGROUP BLOCK … COUNT 10, XACK.

Figures: throughput (N messages published as fast as the producer can, until the last is
acked: messages/s) and delivery latency (publish → receive, from a timestamp in the payload:
p50/p99/mean) with the producer paced at PACE messages/s so that queueing does not dominate.
Prints nova's figure, Redis's, and the ratio. Machines are noisy: run it twice.

Usage: bench_bus.py --nova-host PATH [--drivers DIR] [--messages N] [--pace N]
(`make bench` runs it under Tests/servers/with-servers.sh with the release build.)
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import redis

ADMIN = "nova_bench_admin_" + os.urandom(8).hex()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, what):
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"{what} exited: {proc.returncode}")
            time.sleep(0.05)
    raise SystemExit(f"{what} did not start")


class Nova:
    """One `nova-host serve` and an HTTP connection per calling thread."""

    def __init__(self, binary, drivers, store, work):
        import hashlib
        self.port = free_port()
        data = os.path.join(work, "data-" + str(self.port))
        os.makedirs(data)
        config = os.path.join(work, f"host-{self.port}.json")
        with open(config, "w") as f:
            json.dump({"api_keys": [{"id": "admin", "principal": "admin", "role": "admin",
                                     "sha256": hashlib.sha256(ADMIN.encode()).hexdigest()}],
                       "body_limit_bytes": 1048576}, f)
        policy = os.path.join(work, "policy.json")
        with open(policy, "w") as f:
            json.dump({"roles": {"admin": {}}, "principals": {"admin": "admin"},
                       "rules": [{"id": "all", "effect": "allow", "roles": ["admin"], "tools": ["*"]}]}, f)
        args = [binary, "serve", "--config", config, "--listen", f"127.0.0.1:{self.port}", "--drivers", drivers,
                "--data", data, "--policy", policy, "--log-level", "error"]
        if store:
            args += ["--store", store]
        self.proc = subprocess.Popen(args, stderr=open(os.path.join(work, f"serve-{self.port}.log"), "w"))
        wait_port(self.port, self.proc, "nova-host serve")
        self.local = threading.local()

    def conn(self):
        c = getattr(self.local, "c", None)
        if c is None:
            c = self.local.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        return c

    def call(self, method, path, body=None):
        c = self.conn()
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": "Bearer " + ADMIN}
        if data is not None:
            headers["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        payload = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {payload[:300]!r}")
        return json.loads(payload) if payload else None

    def setup(self, name):
        self.call("POST", "/v1/topics", {"name": name})
        self.call("POST", "/v1/subscriptions", {"id": name + ".g", "topic": name})
        return name

    def publish(self, topic, payload):
        self.call("POST", f"/v1/topics/{topic}/messages", {"payload": payload})

    def receive(self, topic, consumer):
        got = self.call("GET", f"/v1/subscriptions/{topic}.g/messages?wait=1s&max=10&consumer={consumer}")["messages"]
        return [(d["message"]["payload"], d["receipt"]) for d in got]

    def ack(self, topic, receipts):
        self.call("POST", f"/v1/subscriptions/{topic}.g/ack", {"receipts": receipts})

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Redis:
    """redis-server with AOF (appendfsync everysec) and a client per calling thread."""

    def __init__(self, work):
        self.port = free_port()
        path = shutil.which("redis-server")
        if not path:
            raise SystemExit("redis-server is not installed (scripts/install-deps.sh test installs it)")
        d = os.path.join(work, "redis")
        os.makedirs(d)
        self.proc = subprocess.Popen([path, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", d, "--appendonly", "yes",
                                      "--appendfsync", "everysec", "--save", ""], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "redis-server")
        self.local = threading.local()
        self.version = self.client().info()["redis_version"]

    def client(self):
        c = getattr(self.local, "c", None)
        if c is None:
            c = self.local.c = redis.Redis(port=self.port)
        return c

    def setup(self, name):
        self.client().xgroup_create(name, "g", id="0", mkstream=True)
        return name

    def publish(self, topic, payload):
        self.client().xadd(topic, {"p": json.dumps(payload)})

    def receive(self, topic, consumer):
        got = self.client().xreadgroup("g", consumer, {topic: ">"}, count=10, block=1000) or []
        return [(json.loads(fields[b"p"]), mid) for _, entries in got for mid, fields in entries]

    def ack(self, topic, receipts):
        self.client().xack(topic, "g", *receipts)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def run(system, topic, messages, consumers, pace):
    """Publishes `messages` (paced at `pace`/s when given) while `consumers` threads receive and
    ack; returns (messages/s from first publish to last ack, latencies in seconds)."""
    latencies = []
    lock = threading.Lock()
    done = threading.Event()
    count = [0]

    def consume(i):
        while not done.is_set():
            got = system.receive(topic, f"c{i}")
            now = time.time()
            if not got:
                continue
            system.ack(topic, [r for _, r in got])
            with lock:
                latencies.extend(now - p["t"] for p, _ in got)
                count[0] += len(got)
                if count[0] >= messages:
                    done.set()

    threads = [threading.Thread(target=consume, args=(i,), daemon=True) for i in range(consumers)]
    for t in threads:
        t.start()
    start = time.time()
    for n in range(messages):
        if pace:
            target = start + n / pace
            delay = target - time.time()
            if delay > 0:
                time.sleep(delay)
        system.publish(topic, {"n": n, "t": time.time()})
    done.wait(timeout=600)
    elapsed = time.time() - start
    for t in threads:
        t.join(timeout=5)
    return messages / elapsed, latencies


def median_call(call, n=500):
    ts = []
    for _ in range(n):
        a = time.perf_counter()
        call()
        ts.append(time.perf_counter() - a)
    ts.sort()
    return ts[n // 2]


def ms(v):
    return f"{v * 1000:7.2f} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nova-host", required=True)
    ap.add_argument("--drivers", help="drivers directory for serve (default: an empty one; the bus needs none)")
    ap.add_argument("--messages", type=int, default=int(os.environ.get("NOVA_BUS_BENCH_MESSAGES", "2000")))
    ap.add_argument("--pace", type=int, default=200, help="messages/s in the latency runs")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="nova-bus-bench-")
    if not args.drivers:
        args.drivers = os.path.join(work, "drivers")
        os.makedirs(args.drivers)
    systems = []
    try:
        rd = Redis(work)
        systems.append(("Redis Streams " + rd.version, rd))
        systems.append(("nova SQLite", Nova(args.nova_host, args.drivers, None, work)))
        dsn = os.environ.get("NOVA_TEST_PG_DSN")
        if dsn:
            systems.append(("nova PostgreSQL", Nova(args.nova_host, args.drivers, dsn, work)))
        else:
            print("  (NOVA_TEST_PG_DSN not set: PostgreSQL left out; run under Tests/servers/with-servers.sh)")
        results = {}
        for consumers in (1, 8):
            for name, system in systems:
                print(f"  … {name}, {consumers} consumer(s)", file=sys.stderr, flush=True)
                t = system.setup(f"bench.t{consumers}.{os.urandom(3).hex()}")
                rate, _ = run(system, t, args.messages, consumers, None)
                t = system.setup(f"bench.l{consumers}.{os.urandom(3).hex()}")
                _, lat = run(system, t, min(args.messages, args.pace * 5), consumers, args.pace)
                lat.sort()
                results[(name, consumers)] = (rate, lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1], statistics.mean(lat))
        peer = systems[0][0]
        print(f"  publish → receive → ack, {args.messages} messages as fast as one producer publishes (throughput),"
              f" then paced at {args.pace}/s (latency):")
        for consumers in (1, 8):
            for name, _ in systems:
                rate, p50, p99, mean = results[(name, consumers)]
                line = f"    {consumers} consumer(s)  {name:<22} {rate:8.0f} msg/s   latency p50 {ms(p50)}  p99 {ms(p99)}  mean {ms(mean)}"
                if name != peer:
                    prate, pp50, pp99, _ = results[(peer, consumers)]
                    line += f"   ratio vs Redis: throughput {rate / prate:.2f}×, p99 {p99 / pp99:.2f}×"
                print(line)
        # Where a publish's time goes: one call at a time, p50 of 500 (the same client as above).
        print("  one call at a time, p50 of 500 (where the time goes):")
        for name, system in systems:
            t = system.setup(f"bench.c.{os.urandom(3).hex()}")
            calls = [("publish", lambda: system.publish(t, {"n": 0}))]
            if isinstance(system, Nova):
                calls = [("GET /health", lambda: system.call("GET", "/health")),
                         ("GET /v1/topics/{t} (one store read)", lambda: system.call("GET", f"/v1/topics/{t}"))] + calls
            else:
                calls = [("PING", lambda: system.client().ping())] + calls
            print(f"    {name:<22} " + "   ".join(f"{label} {ms(median_call(f))}" for label, f in calls))
        print("  goals: delivery p99 < 10 ms; throughput ≥ 0.5× Redis Streams with every message durable on commit"
              " (Redis: appendfsync everysec, so up to a second of messages may be lost on power failure)")
    finally:
        for _, s in systems:
            try:
                s.close()
            except Exception:
                pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
