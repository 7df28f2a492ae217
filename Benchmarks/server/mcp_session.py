"""Opens an MCP session (initialize + notifications/initialized) and prints its id, so that
wrk can send tools/call requests on it. Usage: mcp_session.py URL [AUTH_HEADER_VALUE]."""
import json
import sys
import urllib.request

url = sys.argv[1]
headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
if len(sys.argv) > 2:
    headers["Authorization"] = sys.argv[2]


def post(body, session=None):
    h = dict(headers)
    if session:
        h["Mcp-Session-Id"] = session
        h["MCP-Protocol-Version"] = "2025-06-18"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=h, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers.get("Mcp-Session-Id"), r.read()


session, _ = post({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                   "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
post({"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
_, body = post({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo.echo", "arguments": {"text": "hi"}}}, session)
assert b'"isError":false' in body.replace(b" ", b"") or b"hi" in body, body
print(session)
