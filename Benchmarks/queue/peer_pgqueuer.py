#!/usr/bin/env python3
"""pgqueuer, the peer of nova-bench queue, on the same PostgreSQL in the same run.

    peer_pgqueuer.py --dsn postgres://… [--jobs N]

Prints one JSON object: {"version", "throughput": {"1": jobs/s, "4": …, "16": …},
"latency_p50_ns", "latency_p99_ns"}. Measured as nova-bench measures the nova queue:

- throughput: N no-op jobs enqueued (in batches, not timed), then W worker processes (one
  QueueManager each, batch_size 10, as deployed) drain them; jobs/s = N / (last worker done −
  first worker started). A fresh database per W.
- latency: one idle QueueManager; a job enqueued on another connection, one at a time; time
  from before the enqueue call until the entrypoint starts, 500 samples after 20 warm-up jobs.
"""
import argparse
import asyncio
import json
import multiprocessing as mp
import secrets
import time
import urllib.parse

import asyncpg
import pgqueuer
from pgqueuer import QueueManager, Queries
from pgqueuer.db import AsyncpgDriver
from pgqueuer.types import QueueExecutionMode


async def fresh_database(dsn):
    name = "pgq_bench_" + secrets.token_hex(6)
    conn = await asyncpg.connect(dsn)
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()
    url = urllib.parse.urlparse(dsn)._replace(path="/" + name).geturl()
    conn = await asyncpg.connect(url)
    await Queries(AsyncpgDriver(conn)).install()
    await conn.close()
    return url


async def fill(url, jobs):
    conn = await asyncpg.connect(url)
    queries = Queries(AsyncpgDriver(conn))
    for start in range(0, jobs, 1000):
        n = min(1000, jobs - start)
        await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
    await conn.close()


def drain_process(url, barrier, results):
    async def main():
        conn = await asyncpg.connect(url)
        qm = QueueManager(Queries(AsyncpgDriver(conn)))

        @qm.entrypoint("noop")
        async def noop(job):
            pass

        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
        start = time.time()
        await qm.run(mode=QueueExecutionMode.drain, batch_size=10)
        results.put((start, time.time()))
        await conn.close()

    asyncio.run(main())


def throughput(dsn, jobs, workers):
    url = asyncio.run(fresh_database(dsn))
    asyncio.run(fill(url, jobs))
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=drain_process, args=(url, barrier, results)) for _ in range(workers)]
    for p in procs:
        p.start()
    spans = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    left = asyncio.run(count_left(url))
    if left:
        raise SystemExit(f"pgqueuer left {left} jobs queued")
    return jobs / (max(e for _, e in spans) - min(s for s, _ in spans))


async def count_left(url):
    conn = await asyncpg.connect(url)
    n = await conn.fetchval("SELECT count(*) FROM pgqueuer")
    await conn.close()
    return n


async def latency(dsn, samples=500, warmup=20):
    url = await fresh_database(dsn)
    consumer = await asyncpg.connect(url)
    producer = await asyncpg.connect(url)
    qm = QueueManager(Queries(AsyncpgDriver(consumer)))
    queries = Queries(AsyncpgDriver(producer))
    started = {}
    arrived = asyncio.Event()

    @qm.entrypoint("noop")
    async def noop(job):
        started[job.payload.decode()] = time.monotonic_ns()
        arrived.set()

    runner = asyncio.create_task(qm.run(batch_size=1))
    await asyncio.sleep(0.3)
    deltas = []
    for i in range(samples + warmup):
        key = f"lat-{i}"
        arrived.clear()
        t0 = time.monotonic_ns()
        await queries.enqueue("noop", key.encode())
        while key not in started:
            await asyncio.wait_for(arrived.wait(), 30)
            arrived.clear()
        if i >= warmup:
            deltas.append(started[key] - t0)
        await asyncio.sleep(0.002)
    qm.shutdown.set()
    await runner
    await producer.close()
    deltas.sort()
    return deltas[len(deltas) // 2], deltas[min(len(deltas) - 1, int(len(deltas) * 0.99))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--jobs", type=int, default=5000)
    a = ap.parse_args()
    out = {"version": getattr(pgqueuer, "__version__", "?"), "throughput": {}}
    for workers in (1, 4, 16):
        out["throughput"][str(workers)] = throughput(a.dsn, a.jobs, workers)
    p50, p99 = asyncio.run(latency(a.dsn))
    out["latency_p50_ns"], out["latency_p99_ns"] = p50, p99
    print(json.dumps(out))


if __name__ == "__main__":
    main()
