"""Serves an ASGI app for the tests: uvicorn on 127.0.0.1, on a free port chosen by the kernel,
written to --port-file (atomically) once the server accepts connections."""

import argparse
import asyncio
import os
import socket
import sys

import uvicorn


def serve(app, **uvicorn_options):
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it a response's head and body (two writes) meet
    # the client's delayed ACK and every keep-alive request takes 40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", **uvicorn_options))

    async def run():
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
                sys.exit(1)
            await asyncio.sleep(0.02)
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, args.port_file)
        await task

    asyncio.run(run())
