"""A real MCP server (the Python `mcp` SDK: MCPServer in 2.x, FastMCP in 1.x) that
run-mcp-proxy-tests.sh federates through the mcp_proxy driver, over stdio or streamable HTTP.

It records what the tests must observe from the server's side into --state DIR:
  started-<tag> / cancelled-<tag>   a `slow` call began / was cancelled (notifications/cancelled)
  headers.jsonl                     the headers of every HTTP request it received
  pids                              one line per process start (a restarted stdio server adds one)
"""
import argparse
import json
import os
import sys

import anyio

try:  # mcp 2.x
    from mcp.server.mcpserver import MCPServer as Server, Context
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as Server, Context
    from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations

parser = argparse.ArgumentParser()
parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--state", required=True)
parser.add_argument("--name", default="upstream")
parser.add_argument("--json-response", action="store_true", help="HTTP: answer each POST with one JSON body, no event stream")
args = parser.parse_args()
os.makedirs(args.state, exist_ok=True)


def record(name, text=""):
    with open(os.path.join(args.state, name), "a") as f:
        f.write(text)


record("pids", f"{os.getpid()}\n")
server = Server(args.name, log_level="WARNING")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False))
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def fail(message: str) -> str:
    """Always fails with `message` (an isError result)."""
    raise ToolError(message)


@server.tool()
async def slow(seconds: float, tag: str) -> str:
    """Sleeps `seconds`; records whether it was cancelled."""
    record(f"started-{tag}")
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        record(f"cancelled-{tag}")
        raise
    return "slept"


@server.tool()
def crash() -> str:
    """Ends the server process at once (exit status 3)."""
    sys.stdout.flush()
    os._exit(3)


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
async def add_tool(name: str, notify: bool, ctx: Context) -> str:
    """Registers a new tool `name`; sends notifications/tools/list_changed when `notify`."""
    def greet() -> str:
        return f"hello from {name}"
    server.add_tool(greet, name=name, description=f"added at run time: {name}")
    if notify:
        await ctx.session.send_tool_list_changed()
    return f"added {name}"


if args.transport == "stdio":
    server.run("stdio")
else:
    import uvicorn

    if args.json_response:
        if hasattr(server, "settings") and hasattr(server.settings, "json_response"):  # 1.x
            server.settings.json_response = True
            app = server.streamable_http_app()
        else:  # 2.x
            app = server.streamable_http_app(json_response=True)
    else:
        app = server.streamable_http_app()

    async def with_header_log(scope, receive, send):
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            record("headers.jsonl", json.dumps({"method": scope["method"], "headers": headers}) + "\n")
        await app(scope, receive, send)

    uvicorn.run(with_header_log, host="127.0.0.1", port=args.port, log_level="warning", lifespan="on")
