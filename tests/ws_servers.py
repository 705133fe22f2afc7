"""Real WebSocket and Socket.IO servers on 127.0.0.1 for the `websocket` check's tests and benchmark.

* `raw_server()`      a websockets server whose behaviour is chosen by the request path (echo, greet,
                      close with a code, require a header, pick a subprotocol, ...);
* `bad_server(kind)`  raw TCP servers that misbehave: never upgrade, close at once, answer garbage
                      instead of HTTP, or upgrade properly and then send garbage frames;
* `socketio_server()` python-socketio on aiohttp with namespaces that accept (`/`, `/chat`), refuse
                      (`/admin`) or check an auth token (`/private`);
* `refused_port()`    a port nothing listens on.

Run as a script (`python tests/ws_servers.py socketio|echo [--ping-interval S]`) it serves one of them
in its own process and prints the port on the first line, so a test can SIGKILL it and the benchmark
can keep the server's CPU out of the probe's. Never binds anything but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import ssl
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import socketio
import yaml
from aiohttp import web
from loopback import free_port
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from prober.config.loader import load_config
from prober.results import Result
from prober.scheduling.runner import Runner

HOST = "127.0.0.1"
GREETING = {"type": "hello", "version": 3, "motd": "welcome to the test server"}
CHAT_WELCOME = {"text": "hi", "room": "lobby"}
TOKEN = "s3cret-token"


@dataclass
class RawServer:
    port: int
    requests: list[Headers] = field(default_factory=list)
    flaky_count: int = 0

    def url(self, path: str = "/echo") -> str:
        return f"ws://{HOST}:{self.port}{path}"


async def _raw_handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request else "/"
    route, _, query = path.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
    if route == "/greet":
        await ws.send(json.dumps(GREETING))
    elif route == "/binary":
        await ws.send(b"\x00\x01binary-hello")
    elif route == "/close":
        await ws.close(int(params.get("code", "1000")), params.get("reason", ""))
        return
    elif route == "/slow":
        await asyncio.sleep(float(params.get("delay", "1")))
        await ws.send("late hello")
    elif route == "/say-and-close":
        await ws.send("goodbye")
        await ws.close(1000, "done")
        return
    elif route == "/close-after":
        await asyncio.sleep(float(params.get("delay", "0.2")))
        await ws.close(1011, "went wrong")
        return
    if route in ("/silent", "/slow"):
        await ws.wait_closed()
        return
    async for message in ws:  # echo
        await ws.send(message)


def _process_request(server: RawServer) -> Any:
    def process(ws: ServerConnection, request: Request) -> Response | None:
        server.requests.append(request.headers)
        if request.path.startswith("/auth") and request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return ws.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
        if request.path.startswith("/missing"):
            return ws.respond(HTTPStatus.NOT_FOUND, "no such endpoint\n")
        if request.path.startswith("/flaky"):  # every other upgrade is refused
            server.flaky_count += 1
            if server.flaky_count % 2 == 0:
                return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE, "overloaded\n")
        return None

    return process


def _select_subprotocol(ws: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """Only /subproto speaks a subprotocol (chat.v2); elsewhere none is chosen, whatever is offered."""
    if ws.request is not None and ws.request.path.startswith("/subproto") and "chat.v2" in offered:
        return Subprotocol("chat.v2")
    return None


@contextlib.asynccontextmanager
async def raw_server(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[RawServer]:
    """A websockets server on 127.0.0.1 (wss:// when given a server TLS context)."""
    state = RawServer(port=0)
    async with serve(
        _raw_handler,
        HOST,
        0,
        process_request=_process_request(state),
        select_subprotocol=_select_subprotocol,
        ping_interval=None,
        ssl=ssl_context,
    ) as server:
        state.port = next(iter(server.sockets)).getsockname()[1]
        yield state


def _accept_key(key: str) -> str:
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest).decode()


async def _read_request(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    await reader.readline()
    while True:
        line = (await reader.readline()).decode("latin-1").strip()
        if not line:
            return headers
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()


@contextlib.asynccontextmanager
async def bad_server(kind: str) -> AsyncIterator[int]:
    """A TCP server that misbehaves in one way: never-upgrades, closes-at-once, garbage-http, garbage-frames."""
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if kind == "closes-at-once":
                writer.close()
                return
            headers = await _read_request(reader)
            if kind == "never-upgrades":
                held.append(writer)
                await reader.read()  # until the client gives up
            elif kind == "garbage-http":
                writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\xff\xfe garbage\r\n\r\n")
                await writer.drain()
                await reader.read()
            elif kind == "garbage-frames":
                accept = _accept_key(headers.get("sec-websocket-key", ""))
                writer.write(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
                    + b"\x8b\x05hello\xff\xff\xff\xff"  # opcode 0xB is reserved: not a valid frame
                )
                await writer.drain()
                await reader.read()
            else:
                raise ValueError(f"unknown bad server kind {kind!r}")
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


refused_port = free_port
"""A loopback port that was just free: connecting to it is refused."""


def build_socketio(ping_interval: float = 25, ping_timeout: float = 20) -> socketio.AsyncServer:
    """A Socket.IO server; `sio.stats` counts connects and disconnects per namespace (`connect /chat`)."""
    sio = socketio.AsyncServer(
        async_mode="aiohttp", ping_interval=ping_interval, ping_timeout=ping_timeout, cors_allowed_origins="*"
    )
    stats: Counter[str] = Counter()
    sio.stats = stats

    def counting(event: str, namespace: str) -> Any:
        async def handler(sid: str, *args: Any) -> None:
            stats[f"{event} {namespace}"] += 1

        return handler

    async def chat_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        stats["connect /chat"] += 1

        async def welcome() -> None:
            await asyncio.sleep(0.01)
            await sio.emit("welcome", CHAT_WELCOME, to=sid, namespace="/chat")

        sio.start_background_task(welcome)

    async def chat_message(sid: str, data: Any) -> None:
        stats[f"chat message {data}"] += 1
        await sio.emit("chat message", {"from": sid, "text": data}, namespace="/chat")

    async def echo(sid: str, *args: Any) -> Any:
        return {"echo": list(args)}

    async def admin_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        raise socketio.exceptions.ConnectionRefusedError("unauthorized")

    async def private_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if not isinstance(auth, dict) or auth.get("token") != TOKEN:
            raise socketio.exceptions.ConnectionRefusedError("bad token")

    sio.on("connect", counting("connect", "/"), namespace="/")
    sio.on("disconnect", counting("disconnect", "/"), namespace="/")
    sio.on("echo", echo, namespace="/")
    sio.on("connect", chat_connect, namespace="/chat")
    sio.on("disconnect", counting("disconnect", "/chat"), namespace="/chat")
    sio.on("chat message", chat_message, namespace="/chat")
    sio.on("connect", admin_connect, namespace="/admin")
    sio.on("connect", private_connect, namespace="/private")
    return sio


@dataclass
class SocketIOServer:
    port: int
    sio: socketio.AsyncServer
    runner: web.AppRunner

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}"


@contextlib.asynccontextmanager
async def socketio_server(ping_interval: float = 25, ping_timeout: float = 20) -> AsyncIterator[SocketIOServer]:
    sio = build_socketio(ping_interval, ping_timeout)
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield SocketIOServer(port, sio, runner)
    finally:
        await runner.cleanup()


async def run_check(tmp_path: Path, check: Mapping[str, Any], *, name: str = "ws") -> Result:
    """Write one websocket check as a user would (YAML), load it and run it once."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"checks": [{"name": name, "type": "websocket", "timeout": "2s", **check}]}))
    config = load_config([path])
    return await Runner().run(config.checks[0])


@contextlib.contextmanager
def spawned_server(kind: str, *extra: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Run `python tests/ws_servers.py KIND` in its own process; yield (process, port); kill it at the end."""
    process = subprocess.Popen([sys.executable, str(Path(__file__)), kind, *extra], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"test server {kind} did not start (printed {line!r})")
        yield process, int(line)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


async def _serve_forever(kind: str, ping_interval: float) -> None:
    if kind == "socketio":
        async with socketio_server(ping_interval=ping_interval) as sio_server:
            print(sio_server.port, flush=True)
            await asyncio.Event().wait()
    else:
        async with raw_server() as raw:
            print(raw.port, flush=True)
            await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a test WebSocket server on 127.0.0.1 and print its port.")
    parser.add_argument("kind", choices=["socketio", "echo"])
    parser.add_argument("--ping-interval", type=float, default=25.0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args.kind, args.ping_interval))


if __name__ == "__main__":
    main()
