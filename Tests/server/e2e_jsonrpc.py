"""MCP transport rules checked by hand over a real socket and a real stdio pipe, where the SDK
clients would never send such messages: the Host check (DNS rebinding), JSON-RPC error codes
and batches by negotiated protocol version."""
import http.client
import json
import subprocess
import urllib.parse

from e2e_common import check, env, finish

URL = env("NOVA_URL")
USER_KEY = env("NOVA_USER_KEY")
ADDR = urllib.parse.urlparse(URL)
ACCEPT = "application/json, text/event-stream"


def post(body, host=None, session=None, version=None, raw=None):
    """POST /mcp over a fresh TCP connection; `host` replaces the Host header the client sends."""
    conn = http.client.HTTPConnection(ADDR.hostname, ADDR.port, timeout=30)
    headers = {"Authorization": f"Bearer {USER_KEY}", "Accept": ACCEPT, "Content-Type": "application/json"}
    if host is not None:
        headers["Host"] = host  # http.client then sends this one instead of its own
    if session:
        headers["Mcp-Session-Id"] = session
    if version:
        headers["MCP-Protocol-Version"] = version
    data = raw if raw is not None else json.dumps(body).encode()
    conn.request("POST", "/mcp", body=data, headers=headers)
    r = conn.getresponse()
    text = r.read().decode(errors="replace")
    conn.close()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return r.status, r.getheader("Mcp-Session-Id"), parsed


def initialize(version, host=None):
    return post({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                 "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}}, host=host)


def code(body):
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def host_check():
    status, _, body = initialize("2025-06-18", host="evil.example")
    check("mcp host: Host evil.example over TCP is 421", status == 421, (status, body))
    status, _, body = initialize("2025-06-18", host=f"evil.example:{ADDR.port}")
    check("mcp host: Host evil.example:PORT over TCP is 421", status == 421, (status, body))
    status, _, body = initialize("2025-06-18", host=f"127.0.0.1:{ADDR.port}")
    check("mcp host: an allowed Host over TCP is 200", status == 200, (status, body))


def error_codes():
    status, session, body = initialize("2025-06-18")
    if status != 200 or not session:
        check("jsonrpc: initialize for the error-code checks", False, (status, body))
        return
    v = "2025-06-18"
    post({"jsonrpc": "2.0", "method": "notifications/initialized"}, session=session, version=v)
    status, _, body = post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"arguments": {}}}, session=session, version=v)
    check("jsonrpc: tools/call without name is -32602", code(body) == -32602 and body.get("id") == 2, (status, body))
    status, _, body = post({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo.echo", "arguments": "x"}},
                           session=session, version=v)
    check("jsonrpc: tools/call with non-object arguments is -32602", code(body) == -32602 and body.get("id") == 3, (status, body))
    status, _, body = post({"jsonrpc": "1.0", "id": 4, "method": "tools/list"}, session=session, version=v)
    check("jsonrpc: jsonrpc 1.0 is -32600", code(body) == -32600, (status, body))
    status, _, body = post({"jsonrpc": "2.0", "id": None, "method": "tools/list"}, session=session, version=v)
    check("jsonrpc: id null is -32600 (an answer, not a silent 202)", status != 202 and code(body) == -32600 and body.get("id") is None,
          (status, body))
    status, _, body = post(None, session=session, version=v, raw=b'{"jsonrpc": "2.0", "id": 5, "method": ')
    check("jsonrpc: a parse error is -32700 with id null", code(body) == -32700 and body.get("id") is None, (status, body))
    batch = [{"jsonrpc": "2.0", "id": 6, "method": "tools/list"}, {"jsonrpc": "2.0", "id": 7, "method": "ping"}]
    status, _, body = post(batch, session=session, version=v)
    check("jsonrpc: a batch on 2025-06-18 is refused with -32600", code(body) == -32600, (status, body))


def batches_on_older_versions():
    for v in ("2025-03-26", "2024-11-05"):
        status, session, body = initialize(v)
        negotiated = body.get("result", {}).get("protocolVersion") if isinstance(body, dict) else None
        if status != 200 or not session or negotiated != v:
            check(f"jsonrpc: initialize with {v}", False, (status, body))
            continue
        post({"jsonrpc": "2.0", "method": "notifications/initialized"}, session=session, version=v)
        batch = [{"jsonrpc": "2.0", "id": 10, "method": "tools/list"},
                 {"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {"name": "echo.echo", "arguments": {"b": 1}}},
                 {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "t", "progress": 1}}]
        status, _, body = post(batch, session=session, version=v)
        by_id = {m.get("id"): m for m in body} if isinstance(body, list) else {}
        check(f"jsonrpc: a batch on {v} is answered as an array",
              status == 200 and set(by_id) == {10, 11} and "tools" in by_id[10].get("result", {})
              and by_id[11].get("result", {}).get("structuredContent") == {"b": 1}, (status, body))


def stdio():
    """`nova-host mcp` spoken to line by line."""
    proc = subprocess.Popen([env("NOVA_HOST_BIN"), "mcp", "--drivers", env("NOVA_E2E_DRIVERS"), "--data", env("NOVA_E2E_STDIO_DATA"),
                             "--policy", env("NOVA_E2E_POLICY"), "--principal", "alice"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def ask(line):
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    try:
        body = ask(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                               "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}}))
        check("stdio: initialize", body.get("result", {}).get("protocolVersion") == "2025-06-18", body)
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
        body = ask('{"jsonrpc": "2.0", "id": 2, "method": ')
        check("stdio: a parse error is -32700 with id null", code(body) == -32700 and body.get("id") is None, body)
        body = ask(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {}}))
        check("stdio: tools/call without name is -32602", code(body) == -32602 and body.get("id") == 3, body)
        body = ask(json.dumps([{"jsonrpc": "2.0", "id": 4, "method": "ping"}]))
        check("stdio: a batch on 2025-06-18 is refused with -32600", code(body) == -32600, body)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


host_check()
error_codes()
batches_on_older_versions()
stdio()
finish()
