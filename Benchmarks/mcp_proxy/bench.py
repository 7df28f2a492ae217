"""The cost of going through nova-host's mcp_proxy: the latency of one MCP `tools/call` of the
same no-op-sized tool (`add`, Tests/mcp_proxy/upstream_server.py), called one after the other by
the Python MCP SDK client (1.x API),
  direct    client → the upstream server (stdio child / streamable HTTP)
  proxied   client → nova-host serve /mcp (auth, policy, input validation, episode) → mcp_proxy →
            the same upstream server
and the difference of the medians (what the proxy hop and the host's checks add per call).

    ~/.cache/nova-e2e/mcp1/bin/python Benchmarks/mcp_proxy/bench.py
Knobs: NOVA_HOST_BIN (default .build/release/nova-host, else .build/debug/nova-host),
NOVA_MCP_DRIVER (default drivers/libnova_mcp_proxy.so), CALLS (default 300), WARMUP (30).
"""
import asyncio
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "Tests", "server"))
BIN = os.environ.get("NOVA_HOST_BIN") or next(
    (p for p in (f"{ROOT}/.build/release/nova-host", f"{ROOT}/.build/debug/nova-host") if os.path.exists(p)), "")
os.environ["NOVA_HOST_BIN"] = BIN
from e2e_common import free_port, start_serve, stop_all  # noqa: E402

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402
from mcp.client.streamable_http import streamablehttp_client  # noqa: E402

DRIVER = os.environ.get("NOVA_MCP_DRIVER", f"{ROOT}/drivers/libnova_mcp_proxy.so")
CALLS = int(os.environ.get("CALLS", "300"))
WARMUP = int(os.environ.get("WARMUP", "30"))
UPSTREAM = f"{ROOT}/Tests/mcp_proxy/upstream_server.py"


async def timed(session, tool):
    for i in range(WARMUP):
        await session.call_tool(tool, {"a": i, "b": 1})
    samples = []
    for i in range(CALLS):
        t = time.perf_counter()
        r = await session.call_tool(tool, {"a": i, "b": 1})
        samples.append((time.perf_counter() - t) * 1000)
        assert not r.isError, r
    return samples


def describe(samples):
    s = sorted(samples)
    return f"median {statistics.median(s):.2f} ms  p90 {s[int(len(s) * 0.9)]:.2f} ms", statistics.median(s)


async def main():
    work = tempfile.mkdtemp(prefix="nova-bench-mcp-proxy-")
    procs = []
    try:
        os.makedirs(f"{work}/drivers")
        shutil.copy(DRIVER, f"{work}/drivers/libnova_mcp_proxy.so")
        os.chmod(f"{work}/drivers/libnova_mcp_proxy.so", 0o644)
        port = free_port()
        procs.append(subprocess.Popen([sys.executable, UPSTREAM, "--transport", "http", "--port", str(port), "--state", f"{work}/http"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        key = "nova_bench_" + os.urandom(16).hex()
        json.dump({"drivers": {"mcp_proxy": {"config": {"servers": [
            {"name": "local", "command": [sys.executable, UPSTREAM, "--state", f"{work}/stdio"]},
            {"name": "remote", "url": f"http://127.0.0.1:{port}/mcp"}]}}}}, open(f"{work}/drivers.json", "w"))
        json.dump({"roles": {"admin": {}, "user": {}, "service": {}}, "principals": {"bench": "admin"},
                   "rules": [{"id": "all", "effect": "allow", "roles": ["admin"], "tools": ["*"]}]}, open(f"{work}/policy.json", "w"))
        json.dump({"api_keys": [{"id": "bench", "principal": "bench", "role": "admin", "sha256": hashlib.sha256(key.encode()).hexdigest()}],
                   "mcp": {"allowed_hosts": ["127.0.0.1:*"]}}, open(f"{work}/host.json", "w"))
        time.sleep(0)  # the upstream starts while nova-host does
        proc, url = start_serve(["--config", f"{work}/host.json", "--drivers", f"{work}/drivers", "--driver-config", f"{work}/drivers.json",
                                 "--policy", f"{work}/policy.json", "--data", f"{work}/data", "--log-level", "warning"], f"{work}/serve.log")
        procs.append(proc)
        print(f"nova-host: {BIN}; {CALLS} sequential calls after {WARMUP} warm-up calls each")
        results = {}
        params = StdioServerParameters(command=sys.executable, args=[UPSTREAM, "--state", f"{work}/direct"])
        async with stdio_client(params) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                results["stdio direct"] = await timed(s, "add")
        async with streamablehttp_client(f"http://127.0.0.1:{port}/mcp") as (r, w, _):
            async with ClientSession(r, w) as s:
                await s.initialize()
                results["http direct"] = await timed(s, "add")
        async with streamablehttp_client(f"{url}/mcp", headers={"Authorization": f"Bearer {key}"}) as (r, w, _):
            async with ClientSession(r, w) as s:
                await s.initialize()
                results["stdio via nova-host"] = await timed(s, "mcp_proxy.local.add")
                results["http via nova-host"] = await timed(s, "mcp_proxy.remote.add")
        medians = {}
        for label, samples in results.items():
            text, medians[label] = describe(samples)
            print(f"{label:22s} {text}")
        for t in ("stdio", "http"):
            d, p = medians[f"{t} direct"], medians[f"{t} via nova-host"]
            print(f"{t}: nova-host + mcp_proxy adds {p - d:.2f} ms per call (ratio {p / d:.2f}x)")
    finally:
        stop_all(procs)
        shutil.rmtree(work, ignore_errors=True)


asyncio.run(main())
