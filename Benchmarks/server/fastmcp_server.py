"""The FastMCP peer of the MCP benchmark: the same no-op tool as nova-host's echo.echo (returns
its arguments), served over streamable HTTP with JSON responses, like nova-host's /mcp.

Runs on either major version of the Python `mcp` SDK: 1.x's `FastMCP`, or 2.x's `MCPServer`
(FastMCP renamed, with the transport options moved to `run`)."""
import logging
import sys

port = int(sys.argv[1])
try:
    from mcp.server.fastmcp import FastMCP  # mcp 1.x

    server = FastMCP("fastmcp-peer", host="127.0.0.1", port=port, json_response=True, log_level="WARNING")
    run_options = {}
except ModuleNotFoundError:
    from mcp.server.mcpserver import MCPServer  # mcp 2.x

    server = MCPServer("fastmcp-peer", log_level="WARNING")
    run_options = {"host": "127.0.0.1", "port": port, "json_response": True}


@server.tool(name="echo.echo", description="Returns its input.")
def echo(text: str = "") -> dict:
    return {"text": text}


logging.getLogger("uvicorn.access").disabled = True
server.run(transport="streamable-http", **run_options)
