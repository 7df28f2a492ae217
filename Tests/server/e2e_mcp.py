"""The real Python MCP client SDK against nova-host: streamable HTTP (`nova-host serve`, /mcp)
and stdio (`nova-host mcp`). Initialize, list tools, call a tool, see a denial."""
import asyncio
import os

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError

from e2e_common import check, env, finish, http

URL = env("NOVA_URL")
USER_KEY = env("NOVA_USER_KEY")
ADMIN_KEY = env("NOVA_ADMIN_KEY")


def allowed_tools(key):
    """The tools GET /v1/tools says this caller's role may use: what tools/list must show."""
    status, _, body = http("GET", f"{URL}/v1/tools", key)
    return sorted(t["id"] for t in body["tools"] if t["allowed"]) if status == 200 else ["<GET /v1/tools failed>"]


async def exercise(session, transport, expected_tools):
    init = await session.initialize()
    check(f"{transport}: initialize", init.serverInfo.name == "nova-host" and init.capabilities.tools is not None, init)
    listed = await session.list_tools()
    names = sorted(t.name for t in listed.tools)
    check(f"{transport}: tools/list shows exactly the role's tools",
          names == expected_tools and "echo.echo" in names and "echo.fail" not in names, (names, expected_tools))
    sleep = next((t for t in listed.tools if t.name == "echo.sleep"), None)
    check(f"{transport}: tool schema and annotations from the manifest",
          sleep is not None and "ms" in sleep.inputSchema.get("properties", {})
          and sleep.annotations is not None and sleep.annotations.readOnlyHint is True
          and (sleep.outputSchema or {}).get("type") == "object", sleep)
    res = await session.call_tool("echo.echo", {"text": "hello", "n": 2})
    check(f"{transport}: tools/call returns structured content",
          not res.isError and res.structuredContent == {"text": "hello", "n": 2}, res)
    res = await session.call_tool("echo.sleep", {"ms": 3})
    check(f"{transport}: tools/call validated against outputSchema", not res.isError and res.structuredContent == {"slept_ms": 3}, res)
    res = await session.call_tool("echo.fail", {})
    text = res.content[0].text if res.content else ""
    check(f"{transport}: a denial is isError with the rule's reason", res.isError and "echo.fail is for admins" in text, res)
    res = await session.call_tool("echo.sleep", {"ms": "soon"})
    check(f"{transport}: invalid input is isError", res.isError and "invalid_input" in (res.content[0].text if res.content else ""), res)
    try:
        await session.call_tool("echo.nope", {})
        check(f"{transport}: unknown tool is a JSON-RPC error", False, "no error")
    except McpError as e:
        check(f"{transport}: unknown tool is a JSON-RPC error", e.error.code == -32602, e)


async def over_http():
    async with streamablehttp_client(f"{URL}/mcp", headers={"Authorization": f"Bearer {USER_KEY}"}) as (read, write, _):
        async with ClientSession(read, write) as session:
            await exercise(session, "http", allowed_tools(USER_KEY))
    async with streamablehttp_client(f"{URL}/mcp", headers={"X-API-Key": ADMIN_KEY}) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
            check("http: an admin sees every tool", sorted(t.name for t in listed.tools) == allowed_tools(ADMIN_KEY)
                  and "echo.fail" in [t.name for t in listed.tools], listed)
            res = await session.call_tool("echo.fail", {})
            check("http: admin passes policy, the tool's own error is isError", res.isError and "tool_error" in res.content[0].text, res)
    # The episodes of those calls are the user's.
    status, _, body = http("GET", f"{URL}/v1/runs?limit=100", USER_KEY)
    check("http: MCP calls are runs with episodes in the caller's name",
          status == 200 and body["total"] >= 4 and all(r["principal"] == "alice" for r in body["runs"]), body)
    status, _, body = http("POST", f"{URL}/mcp", None, {"jsonrpc": "2.0", "id": 1, "method": "initialize"},
                           {"Accept": "application/json, text/event-stream"})
    check("http: /mcp without credentials is 401", status == 401, (status, body))
    status, _, body = http("POST", f"{URL}/mcp", USER_KEY,
                           {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}},
                           {"Accept": "application/json, text/event-stream", "Origin": "https://evil.example"})
    check("http: a foreign Origin is refused", status == 403, (status, body))


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


async def main():
    for name, coro in (("http", over_http), ("stdio", over_stdio)):
        try:
            await coro()
        except Exception as e:  # a crash is a failure, never a skip
            check(f"{name}: session ran to the end", False, repr(e))


asyncio.run(main())
finish()
