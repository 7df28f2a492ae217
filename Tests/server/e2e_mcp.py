"""The real Python MCP client SDK against nova-host: streamable HTTP (`nova-host serve`, /mcp)
and stdio (`nova-host mcp`). Initialize, list tools, call a tool, see a denial, a rate limit,
and a call the client cancels. Runs under the SDK installed in the running interpreter: 1.x or
2.x (run-e2e.sh runs it under both; 2.x renamed the HTTP client and the result fields)."""
import asyncio
import importlib.metadata
import os
import time

import anyio
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client

from e2e_common import check, env, finish, http

SDK = importlib.metadata.version("mcp")
MAJOR = int(SDK.split(".")[0])
if MAJOR >= 2:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.exceptions import MCPError as McpError
else:
    from mcp.client.streamable_http import streamablehttp_client
    from mcp.shared.exceptions import McpError

URL = env("NOVA_URL")
USER_KEY = env("NOVA_USER_KEY")
ADMIN_KEY = env("NOVA_ADMIN_KEY")
TAG = f"sdk {SDK}"


def f(obj, name):
    """A result field by its 2.x (snake_case) name, or its 1.x (camelCase) one."""
    if hasattr(obj, name):
        return getattr(obj, name)
    parts = name.split("_")
    return getattr(obj, parts[0] + "".join(p.title() for p in parts[1:]))


def http_session(headers):
    """The SDK's streamable HTTP client with `headers`: yields (read, write)."""
    if MAJOR >= 2:
        return streamable_http_client(f"{URL}/mcp", http_client=httpx2.AsyncClient(headers=headers, timeout=60))
    return streamablehttp_client(f"{URL}/mcp", headers=headers)


def allowed_tools(key):
    """The tools GET /v1/tools says this caller's role may use: what tools/list must show."""
    status, _, body = http("GET", f"{URL}/v1/tools", key)
    return sorted(t["id"] for t in body["tools"] if t["allowed"]) if status == 200 else ["<GET /v1/tools failed>"]


def text_of(res):
    return res.content[0].text if res.content else ""


async def exercise(session, transport, expected_tools):
    init = await session.initialize()
    check(f"{TAG} {transport}: initialize", f(init, 'server_info').name == "nova-host" and init.capabilities.tools is not None, init)
    listed = await session.list_tools()
    names = sorted(t.name for t in listed.tools)
    check(f"{TAG} {transport}: tools/list shows exactly the role's tools",
          names == expected_tools and "echo.echo" in names and "echo.fail" not in names, (names, expected_tools))
    sleep = next((t for t in listed.tools if t.name == "echo.sleep"), None)
    check(f"{TAG} {transport}: tool schema and annotations from the manifest",
          sleep is not None and "ms" in f(sleep, 'input_schema').get("properties", {})
          and sleep.annotations is not None and f(sleep.annotations, 'read_only_hint') is True
          and (f(sleep, 'output_schema') or {}).get("type") == "object", sleep)
    res = await session.call_tool("echo.echo", {"text": "hello", "n": 2})
    check(f"{TAG} {transport}: tools/call returns structured content",
          not f(res, 'is_error') and f(res, 'structured_content') == {"text": "hello", "n": 2}, res)
    res = await session.call_tool("echo.sleep", {"ms": 3})
    check(f"{TAG} {transport}: tools/call validated against outputSchema", not f(res, 'is_error') and f(res, 'structured_content') == {"slept_ms": 3}, res)
    res = await session.call_tool("echo.fail", {})
    text = res.content[0].text if res.content else ""
    check(f"{TAG} {transport}: a denial is isError with the rule's reason", f(res, 'is_error') and "echo.fail is for admins" in text, res)
    res = await session.call_tool("echo.sleep", {"ms": "soon"})
    check(f"{TAG} {transport}: invalid input is isError", f(res, 'is_error') and "invalid_input" in (res.content[0].text if res.content else ""), res)
    try:
        await session.call_tool("echo.nope", {})
        check(f"{TAG} {transport}: unknown tool is a JSON-RPC error", False, "no error")
    except McpError as e:
        check(f"{TAG} {transport}: unknown tool is a JSON-RPC error", e.error.code == -32602, e)


async def rate_limited(session, transport):
    """text.length allows one call per principal per hour: within two calls one is refused,
    and the result says when to retry (in its text and as structured `retry_after_ms`)."""
    results = [await session.call_tool("text.length", {"text": "abc"}) for _ in range(2)]
    limited = [r for r in results if f(r, "is_error") and "rate_limited" in text_of(r)]
    retry = (f(limited[0], "structured_content") or {}).get("retry_after_ms", 0) if limited else 0
    check(f"{TAG} {transport}: a rate-limited call says when to retry",
          len(limited) >= 1 and "retry after" in text_of(limited[0]) and retry >= 1,
          [(text_of(r), f(r, "structured_content")) for r in results])


async def wait_for(predicate, what):
    """Polls `predicate` until it returns a value (the state is seen) or a minute passes."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await anyio.sleep(0.02)
    raise TimeoutError(f"never saw {what}")


def running_sleep():
    status, _, body = http("GET", f"{URL}/v1/runs?status=running&limit=100", USER_KEY)
    ids = [r["run_id"] for r in body.get("runs", []) if r.get("plan_name") == "tool:echo.sleep"] if status == 200 else []
    return ids[0] if ids else None


def finished(run_id):
    status, _, body = http("GET", f"{URL}/v1/runs/{run_id}", USER_KEY)
    return body if status == 200 and body.get("status") != "running" else None


async def cancelled_call(session):
    """A call the client cancels (`notifications/cancelled`) is recorded `cancelled`: episode,
    and the runs metric; never `interrupted` (that is for a server shutdown)."""
    answered = anyio.Event()

    async def call_abandoned():
        # The call ends either way (cancelled by the scope, or answered with an error after the
        # server cancelled it): neither is this test's outcome, the run record is.
        try:
            await session.call_tool("echo.sleep", {"ms": 30000})
        except Exception:
            pass
        finally:
            answered.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(call_abandoned)
        run_id = await wait_for(running_sleep, "the echo.sleep run")
        if MAJOR < 2:
            # 1.x does not send notifications/cancelled itself: the id of the request in flight.
            # Its answer is awaited before the scope ends, so that it does not reach a stream the
            # 1.x client already closed (ClosedResourceError inside the SDK).
            request_id = session._request_id - 1
            await session.send_notification(types.ClientNotification(types.CancelledNotification(
                method="notifications/cancelled", params=types.CancelledNotificationParams(requestId=request_id, reason="e2e"))))
            await wait_for(lambda: finished(run_id), "the cancelled run finish")
            with anyio.move_on_after(10):
                await answered.wait()
        tg.cancel_scope.cancel()  # 2.x sends notifications/cancelled for the abandoned request
    run = await wait_for(lambda: finished(run_id), "the cancelled run finish")
    check(f"{TAG} http: a client-cancelled call is recorded cancelled", run.get("status") == "cancelled", run)
    status, _, text = http("GET", f"{URL}/metrics", ADMIN_KEY)
    check(f"{TAG} http: the runs metric counts it as cancelled",
          'nova_runs_total{origin="mcp",status="cancelled"}' in text
          and not [l for l in text.splitlines() if 'status="interrupted"' in l and not l.endswith(" 0")], text[-3000:])


async def agent_operations(session):
    """Agent operations are tools (built-in driver `agents`): an MCP client submits a goal to its
    agent, follows it to the end and recalls what the goal remembered."""
    name = f"mcp-agent-{MAJOR}-{int(time.time() * 1000)}"
    status, _, body = http("POST", f"{URL}/v1/agents", ADMIN_KEY, {"name": name, "principal": "admin"})
    check(f"{TAG} http: an agent is created over REST", status == 201, body)
    listed = [t.name for t in (await session.list_tools()).tools]
    check(f"{TAG} http: tools/list offers the agent operations", {"agents.submit_goal", "agents.goal_status", "agents.recall"} <= set(listed), listed)
    plan = {"steps": [{"id": "note", "call": "memory.put", "input": {"text": f"mcp remembered {name}"}}]}
    res = await session.call_tool("agents.submit_goal", {"agent": name, "goal": "remember", "plan": plan})
    goal = f(res, 'structured_content') or {}
    check(f"{TAG} http: agents.submit_goal queues a goal", not f(res, 'is_error') and goal.get("status") in ("pending", "running", "completed"), res)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the goal ends (the state is seen), at most a minute
        r = await session.call_tool("agents.goal_status", {"goal_id": goal.get("id", "")})
        if (f(r, 'structured_content') or {}).get("status") in ("completed", "failed", "cancelled"):
            break
        await anyio.sleep(0.05)
    check(f"{TAG} http: agents.goal_status follows it to completed", (f(r, 'structured_content') or {}).get("status") == "completed", r)
    r = await session.call_tool("agents.recall", {"agent": name, "query": "remembered"})
    items = (f(r, 'structured_content') or {}).get("items", [])
    check(f"{TAG} http: agents.recall finds what the goal remembered", any(name in i.get("text", "") for i in items), r)


async def bus_operations(session):
    """The message bus is tools (built-in driver `bus`): an MCP client subscribes, publishes,
    receives and acks; the sender is the session's principal, never the input's."""
    topic = f"mcp.{MAJOR}.{int(time.time() * 1000)}"
    status, _, body = http("POST", f"{URL}/v1/topics", ADMIN_KEY, {"name": topic})
    check(f"{TAG} http: a topic is created over REST", status == 201, body)
    r = await session.call_tool("bus.subscribe", {"id": topic + ".sub", "topic": topic})
    check(f"{TAG} http: bus.subscribe creates a subscription", (f(r, 'structured_content') or {}).get("created") is True, r)
    r = await session.call_tool("bus.publish", {"topic": topic, "payload": {"hello": "mcp"}})
    check(f"{TAG} http: bus.publish stores a message", not f(r, 'is_error') and (f(r, 'structured_content') or {}).get("seq", 0) > 0, r)
    r = await session.call_tool("bus.receive", {"subscription": topic + ".sub", "wait_ms": 5000})
    msgs = (f(r, 'structured_content') or {}).get("messages", [])
    check(f"{TAG} http: bus.receive leases it, sent by the caller",
          len(msgs) == 1 and msgs[0]["message"]["payload"] == {"hello": "mcp"} and msgs[0]["message"]["sender"] == "admin", r)
    r = await session.call_tool("bus.ack", {"subscription": topic + ".sub", "receipts": [msgs[0]["receipt"] if msgs else "x"]})
    check(f"{TAG} http: bus.ack acks it", (f(r, 'structured_content') or {}).get("acked") == [True], r)
    r = await session.call_tool("bus.publish", {"topic": "no.such.topic", "payload": 1})
    check(f"{TAG} http: publishing to an unknown topic is isError naming it", f(r, "is_error") and "no topic" in r.content[0].text, r)


async def over_http():
    async with http_session({"Authorization": f"Bearer {USER_KEY}"}) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            await exercise(session, "http", allowed_tools(USER_KEY))
            await rate_limited(session, "http")
            await cancelled_call(session)
    async with http_session({"X-API-Key": ADMIN_KEY}) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
            check(f"{TAG} http: an admin sees every tool", sorted(t.name for t in listed.tools) == allowed_tools(ADMIN_KEY)
                  and "echo.fail" in [t.name for t in listed.tools], listed)
            res = await session.call_tool("echo.fail", {})
            check(f"{TAG} http: admin passes policy, the tool's own error is isError", f(res, 'is_error') and "tool_error" in res.content[0].text, res)
            await agent_operations(session)
            await bus_operations(session)
    # The episodes of those calls are the user's.
    status, _, body = http("GET", f"{URL}/v1/runs?limit=100", USER_KEY)
    check(f"{TAG} http: MCP calls are runs with episodes in the caller's name",
          status == 200 and body["total"] >= 4 and all(r["principal"] == "alice" for r in body["runs"]), body)
    status, _, body = http("POST", f"{URL}/mcp", None, {"jsonrpc": "2.0", "id": 1, "method": "initialize"},
                           {"Accept": "application/json, text/event-stream"})
    check(f"{TAG} http: /mcp without credentials is 401", status == 401, (status, body))
    status, _, body = http("POST", f"{URL}/mcp", USER_KEY,
                           {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}},
                           {"Accept": "application/json, text/event-stream", "Origin": "https://evil.example"})
    check(f"{TAG} http: a foreign Origin is refused", status == 403, (status, body))


async def over_stdio():
    params = StdioServerParameters(
        command=env("NOVA_HOST_BIN"),
        args=["mcp", "--drivers", env("NOVA_E2E_DRIVERS"), "--data", env("NOVA_E2E_STDIO_DATA"),
              "--policy", env("NOVA_E2E_POLICY"), "--principal", "alice"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await exercise(session, "stdio", allowed_tools(USER_KEY))
            await rate_limited(session, "stdio")


async def main():
    for name, coro in (("http", over_http), ("stdio", over_stdio)):
        try:
            await coro()
        except Exception as e:  # a crash is a failure, never a skip
            check(f"{TAG} {name}: session ran to the end", False, repr(e))


asyncio.run(main())
finish()
