"""The FastMCP peer of the MCP benchmark: the same no-op tool as nova-host's echo.echo (returns
its arguments), served over streamable HTTP with JSON responses, like nova-host's /mcp."""
import logging
import sys

from mcp.server.fastmcp import FastMCP

port = int(sys.argv[1])
mcp = FastMCP("fastmcp-peer", host="127.0.0.1", port=port, json_response=True, log_level="WARNING")


@mcp.tool(name="echo.echo", description="Returns its input.")
def echo(text: str = "") -> dict:
    return {"text": text}


logging.getLogger("uvicorn.access").disabled = True
mcp.run(transport="streamable-http")
