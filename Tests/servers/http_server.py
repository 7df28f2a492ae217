"""The real HTTP server the http driver's tests talk to (an ASGI app served by uvicorn).

Listens on 127.0.0.1 only, on a free port chosen by the kernel, and writes that port to
--port-file once it accepts connections. Endpoints (all JSON unless said otherwise):

  GET  /json                    a fixed JSON document
  ANY  /echo                    echoes method, path, query, headers and body
  GET  /text                    text/plain
  GET  /binary                  application/octet-stream, bytes 0..255
  GET  /status/{code}           answers with that status
  GET  /slow?ms=N               answers after N milliseconds
  ANY  /flaky/{key}?fail=N&status=S   fails N times with status S (per key), then 200
  GET  /count/{key}             how many requests /flaky/{key} has seen
  GET  /redirect/{n}            302 chain of n hops ending at /json
  GET  /redirect-to?url=U&status=S    one redirect to U
  GET  /big?bytes=N             N bytes of text, streamed in chunks
  GET  /cookie                  sets a cookie (Set-Cookie) and answers JSON
  GET  /catalog                 the product catalog of examples/restock.plan.json
"""

import asyncio
import json
import urllib.parse

from asgi_serve import serve

COUNTS: dict[str, int] = {}


async def read_body(receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.request":
            body += message.get("body", b"")
            if not message.get("more_body"):
                return body
        elif message["type"] == "http.disconnect":
            return body


async def send_response(send, status, body=b"", content_type="application/json", headers=()):
    hdrs = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    hdrs.extend((k.encode(), v.encode()) for k, v in headers)
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def send_json(send, status, value, headers=()):
    await send_response(send, status, json.dumps(value).encode(), headers=headers)


CATALOG = {
    "products": [
        {"sku": "A-100", "name": "Anchor bolt", "reorder_quantity": 500},
        {"sku": "B-200", "name": "Bracket", "reorder_quantity": 120},
        {"sku": "C-300", "name": "Clamp", "reorder_quantity": 80},
        {"sku": "D-400", "name": "Dowel", "reorder_quantity": 1000},
    ],
}
CATALOG["skus"] = [p["sku"] for p in CATALOG["products"]]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    method = scope["method"]
    query = urllib.parse.parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True)
    q = {k: v[-1] for k, v in query.items()}
    body = await read_body(receive)
    parts = [p for p in path.split("/") if p]

    if path == "/json":
        return await send_json(send, 200, {"hello": "world", "n": 42, "items": [1, 2, 3], "nested": {"ok": True}})
    if path == "/echo":
        text = body.decode("utf-8", "replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        headers = {}
        for k, v in scope["headers"]:
            headers.setdefault(k.decode().lower(), v.decode())
        return await send_json(send, 200, {
            "method": method, "path": path, "query": query, "headers": headers,
            "body": text, "json": parsed,
        })
    if path == "/text":
        return await send_response(send, 200, "hello, text".encode(), "text/plain; charset=utf-8")
    if path == "/binary":
        return await send_response(send, 200, bytes(range(256)), "application/octet-stream")
    if len(parts) == 2 and parts[0] == "status":
        code = int(parts[1])
        return await send_json(send, code, {"status": code})
    if path == "/slow":
        ms = int(q.get("ms", "1000"))
        await asyncio.sleep(ms / 1000)
        return await send_json(send, 200, {"slept_ms": ms})
    if len(parts) == 2 and parts[0] == "flaky":
        key = parts[1]
        COUNTS[key] = COUNTS.get(key, 0) + 1
        fail = int(q.get("fail", "2"))
        status = int(q.get("status", "503"))
        if COUNTS[key] <= fail:
            return await send_json(send, status, {"attempt": COUNTS[key], "error": "try again"})
        return await send_json(send, 200, {"attempts": COUNTS[key]})
    if len(parts) == 2 and parts[0] == "count":
        return await send_json(send, 200, {"count": COUNTS.get(parts[1], 0)})
    if len(parts) == 2 and parts[0] == "redirect":
        n = int(parts[1])
        location = "/json" if n <= 1 else f"/redirect/{n - 1}"
        return await send_json(send, 302, {"to": location}, headers=[("location", location)])
    if path == "/redirect-to":
        status = int(q.get("status", "302"))
        return await send_json(send, status, {"to": q["url"]}, headers=[("location", q["url"])])
    if path == "/big":
        size = int(q.get("bytes", "1048576"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(size).encode())]})
        chunk = b"a" * 65536
        left = size
        while left > 0:
            piece = chunk[: min(left, len(chunk))]
            left -= len(piece)
            await send({"type": "http.response.body", "body": piece, "more_body": left > 0})
        if size == 0:
            await send({"type": "http.response.body", "body": b""})
        return
    if path == "/cookie":
        return await send_json(send, 200, {"ok": True}, headers=[("set-cookie", "session=s3cr3t-cookie; HttpOnly")])
    if path == "/catalog":
        return await send_json(send, 200, CATALOG)
    return await send_json(send, 404, {"error": "not found", "path": path})


def main():
    serve(app, timeout_keep_alive=30)


if __name__ == "__main__":
    main()
