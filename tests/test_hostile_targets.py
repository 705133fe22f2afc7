"""What prober withstands: targets, check files and installations that try to hang, flood, bloat or crash it.

Each hostile case runs a real server that misbehaves in one way, in its own process (so a server that
floods cannot borrow the event loop it is attacking): `python tests/test_hostile_targets.py KIND` prints
its port and serves until killed. The check runs through the real Runner while a ticker measures how long
the event loop was held. Every case asserts the outcome a user reads (status and sentence), that it came
within the check's timeout, that the loop was never held long, and that memory stayed bounded; each
kind of server has a healthy twin (`ok-*`) the same check passes against. docs/hardening.md lists them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from prober.config.loader import ConfigError, load_config
from prober.daemon.lock import DatabaseInUseError, DatabaseLock
from prober.results import Result
from prober.scheduling.runner import Runner

HOST = "127.0.0.1"
TIMEOUT = 2.0
MAX_LAG = 0.25
"""Seconds the event loop may be held at most during a hostile run (a shared 2-core machine: generous;
the bugs these tests keep out held it for 2-10 s)."""
MAX_GROWTH_MB = 150
"""Peak memory the test process may gain during one hostile run."""

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# --- the hostile servers (run in a child process) --------------------------------------------------------


async def _request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    line = (await reader.readline()).decode("latin-1")
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            return line, headers
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()


async def _forever(writer: asyncio.StreamWriter, chunk: bytes) -> None:
    while True:
        writer.write(chunk)
        await writer.drain()


@functools.cache
def _gzip_bomb() -> bytes:
    """512 MiB of zeros, gzip-compressed to about 500 kB (512 times max_body)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    return b"".join([*(packer.compress(block) for _ in range(512)), packer.flush()])


def _http(status: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode() + body


async def _ws_upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *extra: bytes) -> None:
    _, headers = await _request(reader)
    key = headers.get("sec-websocket-key", "")
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + b"".join(extra)
    )
    await writer.drain()


def _frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        return bytes([first, size]) + payload
    if size < 65536:
        return bytes([first, 126]) + struct.pack(">H", size) + payload
    return bytes([first, 127]) + struct.pack(">Q", size) + payload


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack(">H", await reader.readexactly(2))[0]
    elif size == 127:
        size = struct.unpack(">Q", await reader.readexactly(8))[0]
    mask = await reader.readexactly(4) if second & 0x80 else b"\0\0\0\0"
    data = bytes(byte ^ mask[index % 4] for index, byte in enumerate(await reader.readexactly(size)))
    return first & 0x0F, data


async def _answer_pings(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the client's frames: pong its pings, stop at its close (a well-behaved peer in that respect)."""
    while True:
        opcode, data = await _read_frame(reader)
        if opcode == 0x9:
            writer.write(_frame(0xA, data))
        elif opcode == 0x8:
            writer.write(_frame(0x8, data[:2]))
            await writer.drain()
            return


ENGINE_OPEN = b'0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'


async def _socketio_join(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, engine_open: bytes = ENGINE_OPEN
) -> None:
    """The Socket.IO handshake over a raw WebSocket: the Engine.IO open packet, then the namespace CONNECT."""
    await _ws_upgrade(reader, writer, _frame(1, engine_open))
    while True:
        opcode, data = await _read_frame(reader)
        if opcode == 0x9:
            writer.write(_frame(0xA, data))
        elif data.startswith(b"40"):
            writer.write(_frame(1, b'40{"sid":"n1"}'))
            await writer.drain()
            return


async def _background(coroutine: Awaitable[None]) -> asyncio.Task[None]:
    async def run() -> None:
        with contextlib.suppress(Exception):
            await coroutine

    return asyncio.ensure_future(run())


async def serve_kind(kind: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One connection of the server `kind`."""
    if kind == "http-echo-401":  # a debug error page that shows what the client sent
        _, headers = await _request(reader)
        shown = f"denied: authorization={headers.get('authorization')} x-token={headers.get('x-token')}".encode()
        writer.write(_http("401 Unauthorized", {"Content-Length": str(len(shown))}, shown))
    elif kind == "http-hang":
        await _request(reader)
        await asyncio.sleep(3600)
    elif kind.startswith("http-") or kind == "ok-http":
        await _request(reader)
    if kind in ("http-echo-401", "http-hang"):
        pass
    elif kind == "ok-http":
        writer.write(_http("200 OK", {"Content-Length": "11", "Content-Type": "application/json"}, b'{"a": "ok"}'))
    elif kind == "http-endless-header":
        writer.write(b"HTTP/1.1 200 OK\r\nX-Long: ")
        await _forever(writer, b"a" * 65536)
    elif kind == "http-many-headers":
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for index in range(200_000):
            writer.write(b"X-H%d: v\r\n" % index)
            if index % 1000 == 0:
                await writer.drain()
        writer.write(b"Content-Length: 2\r\n\r\nok")
    elif kind == "http-endless-status":
        writer.write(b"HTTP/1.1 200 ")
        await _forever(writer, b"O" * 65536)
    elif kind == "http-10gb":
        writer.write(_http("200 OK", {"Content-Length": str(10 * 1024**3)}))
        await _forever(writer, b"z" * 65536)
    elif kind == "http-gzip-bomb":
        bomb = _gzip_bomb()  # cached: made before the port is printed
        writer.write(_http("200 OK", {"Content-Encoding": "gzip", "Content-Length": str(len(bomb))}, bomb))
    elif kind == "http-huge-chunk":
        writer.write(_http("200 OK", {"Transfer-Encoding": "chunked"}, b"FFFFFFFFFFFFFFFF\r\n"))
        await _forever(writer, b"q" * 65536)
    elif kind == "http-endless-chunk-line":
        writer.write(_http("200 OK", {"Transfer-Encoding": "chunked"}, b"10;"))
        await _forever(writer, b"e" * 65536)
    elif kind in ("http-deep-json", "http-long-number"):
        body = b"[" * 500_000 + b"]" * 500_000 if kind == "http-deep-json" else b'{"a": ' + b"9" * 100_000 + b"}"
        writer.write(_http("200 OK", {"Content-Type": "application/json", "Content-Length": str(len(body))}, body))
    elif kind in ("http-redirect-file", "http-redirect-junk"):
        location = "file:///etc/passwd" if kind == "http-redirect-file" else "http://[::1"
        writer.write(_http("302 Found", {"Location": location, "Content-Length": "0"}))
    elif kind == "http-nul-header":
        writer.write(b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 2\r\n\r\nok")
    elif kind == "tls-stall":
        await reader.read(5)  # the start of the ClientHello; then a record promising 16 KiB, 10 bytes, silence
        writer.write(b"\x16\x03\x03\x40\x00" + b"\x02\x00\x00\x46\x03\x03\x03\x03\x03\x03")
        await writer.drain()
        await asyncio.sleep(3600)
    elif kind == "tls-trickle":
        await reader.read(5)
        for byte in b"\x16\x03\x03\x40\x00" + b"\x00" * 20_000:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)
    elif kind == "ok-ws":
        await _ws_upgrade(reader, writer, _frame(1, b'{"a": "ok"}'))
        await _answer_pings(reader, writer)
    elif kind == "ws-1gb-frame":
        await _ws_upgrade(reader, writer, bytes([0x81, 127]) + struct.pack(">Q", 1 << 30))
        await _forever(writer, b"a" * 65536)
    elif kind == "ws-endless-fragments":
        await _ws_upgrade(reader, writer, _frame(1, b"start", fin=False))
        await _background(_answer_pings(reader, writer))
        await _forever(writer, _frame(0, b"x" * 1000, fin=False))
    elif kind == "ws-ping-flood":
        await _ws_upgrade(reader, writer)
        await _forever(writer, _frame(0x9, b"p"))
    elif kind == "ws-message-flood":
        await _ws_upgrade(reader, writer)
        await _background(_answer_pings(reader, writer))
        await _forever(writer, _frame(1, b"hello " * 10) * 100)
    elif kind == "ws-deep-json":
        await _ws_upgrade(reader, writer, _frame(1, b"[" * 300_000 + b"]" * 300_000))
        await _answer_pings(reader, writer)
    elif kind == "ws-endless-handshake-header":
        await _request(reader)
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nX-Long: ")
        await _forever(writer, b"a" * 65536)
    elif kind == "ws-many-handshake-headers":
        await _request(reader)
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\n")
        for index in range(100_000):
            writer.write(b"X-%d: v\r\n" % index)
            if index % 1000 == 0:
                await writer.drain()
        await reader.read()
    elif kind == "ok-socketio":
        await _socketio_join(reader, writer)
        writer.write(_frame(1, b'42["welcome",{"a":"ok"}]'))
        await _answer_pings(reader, writer)
    elif kind == "sio-event-flood":
        await _socketio_join(reader, writer)
        await _background(_answer_pings(reader, writer))
        await _forever(writer, _frame(1, b'42["tick",{"n":1}]') * 100)
    elif kind == "sio-engine-ping-flood":
        await _socketio_join(reader, writer)
        await _background(_answer_pings(reader, writer))
        await _forever(writer, _frame(1, b"2") * 1000)
    elif kind == "sio-bad-ping-interval":
        await _socketio_join(reader, writer, b'0{"sid":"s1","pingInterval":"soon","pingTimeout":20000}')
        await _answer_pings(reader, writer)
    elif kind == "sio-deep-event":
        await _socketio_join(reader, writer)
        writer.write(_frame(1, b'42["x",' + b"[" * 200_000 + b"]" * 200_000 + b"]"))
        await _answer_pings(reader, writer)
    elif kind == "sio-long-ack-id":
        await _socketio_join(reader, writer)
        while True:
            opcode, data = await _read_frame(reader)
            if opcode == 0x9:
                writer.write(_frame(0xA, data))
            elif data.startswith(b"42"):
                writer.write(_frame(1, b"43" + b"9" * 5000 + b'["ok"]'))
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    await writer.drain()
    await reader.read()


async def _serve_forever(kind: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await serve_kind(kind, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.transport.abort()

    if kind == "http-gzip-bomb":
        _gzip_bomb()
    server = await asyncio.start_server(handle, HOST, 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


@contextlib.contextmanager
def hostile(kind: str) -> Any:
    """Start the server `kind` in a child process; yield its port; kill it afterwards."""
    process = subprocess.Popen(
        [sys.executable, __file__, kind], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ""}
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip().isdigit(), f"the {kind} server did not start: {line!r}"
        yield int(line)
    finally:
        process.kill()
        process.wait()


def socket_port() -> int:
    """A loopback port that was just free: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --- running a check against one ---------------------------------------------------------------------------


@dataclass
class Run:
    result: Result
    seconds: float
    worst_lag: float
    growth_mb: float

    @property
    def error(self) -> str:
        return self.result.error or ""


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run_against(tmp_path: Path, check: dict[str, Any]) -> Run:
    """Load `check` from YAML as users write it, run it once, measure time, loop lag and memory."""
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump({"checks": [{"name": "hostile", "timeout": f"{TIMEOUT}s", **check}]}))
    (spec,) = load_config([path]).checks
    runner = Runner(artifacts_dir=tmp_path / "artifacts")
    lags: list[float] = [0.0]
    loop = asyncio.get_running_loop()

    async def tick() -> None:
        while True:
            asked = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - asked - 0.01)

    ticker = asyncio.ensure_future(tick())
    before = _peak_mb()
    started = time.monotonic()
    try:
        result = await runner.run(spec)
    finally:
        seconds = time.monotonic() - started
        ticker.cancel()
        await runner.resources.aclose()
    return Run(result, seconds, max(lags), _peak_mb() - before)


def assert_contained(run: Run) -> None:
    """Whatever the target did: the run ended within its timeout, the loop was not held, memory stayed put,
    and the error is a sentence, not a Python exception's name."""
    assert run.seconds < TIMEOUT + 1.0, f"took {run.seconds:.1f}s for a {TIMEOUT}s timeout: {run.error}"
    assert run.worst_lag < MAX_LAG, f"the event loop was held for {run.worst_lag:.2f}s: {run.error}"
    assert run.growth_mb < MAX_GROWTH_MB, f"memory grew by {run.growth_mb:.0f} MB"
    for name in ("Traceback", "RecursionError", "ValueError", "TypeError", "KeyError", "probe error"):
        assert name not in run.error, run.error


# --- HTTP ---------------------------------------------------------------------------------------------------

HTTP_CASES = [
    ("http-endless-header", "down", "Got more than 8190 bytes"),
    ("http-many-headers", "down", "Too many headers"),
    ("http-endless-status", "down", "Got more than 8190 bytes"),
    ("http-nul-header", "down", "Invalid HTTP header"),
    ("http-endless-chunk-line", "down", f"timed out after {TIMEOUT:g}s"),
    ("http-redirect-file", "down", "the server redirected to 'file:///etc/passwd', which is not an http(s) URL"),
    ("http-redirect-junk", "down", "the server redirected to 'http://[::1', which is not a valid URL"),
]


@pytest.mark.parametrize(("kind", "status", "words"), HTTP_CASES, ids=[case[0] for case in HTTP_CASES])
async def test_a_hostile_http_server_gives_a_sentence_within_the_timeout(
    tmp_path: Path, kind: str, status: str, words: str
) -> None:
    with hostile(kind) as port:
        run = await run_against(tmp_path, {"type": "http", "url": f"http://{HOST}:{port}/"})
    assert run.result.status == status, run.error
    assert words in run.error, run.error
    assert_contained(run)


@pytest.mark.parametrize("kind", ["http-10gb", "http-gzip-bomb", "http-huge-chunk"])
async def test_an_endless_or_bomb_body_is_read_up_to_max_body_and_no_further(tmp_path: Path, kind: str) -> None:
    with hostile(kind) as port:
        run = await run_against(tmp_path, {"type": "http", "url": f"http://{HOST}:{port}/"})
    assert run.result.status == "up", run.error
    assert run.result.metrics["body_size"] == 1024 * 1024
    assert run.result.details["body_truncated_at"] == 1024 * 1024
    assert_contained(run)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("http-deep-json", "the response body is not JSON (it is nested too deeply to parse); status 200"),
        ("http-long-number", "the response body is not JSON (Exceeds the limit (4300 digits)"),
    ],
)
async def test_a_json_body_built_to_crash_the_parser_is_not_json(tmp_path: Path, kind: str, words: str) -> None:
    with hostile(kind) as port:
        run = await run_against(
            tmp_path, {"type": "http", "url": f"http://{HOST}:{port}/", "expect": {"json": {"a": "ok"}}}
        )
    assert run.result.status == "down"
    assert words in run.error, run.error
    assert_contained(run)


async def test_the_healthy_http_twin_is_up(tmp_path: Path) -> None:
    with hostile("ok-http") as port:
        run = await run_against(
            tmp_path, {"type": "http", "url": f"http://{HOST}:{port}/", "expect": {"json": {"a": "ok"}}}
        )
    assert run.result.status == "up", run.error
    assert_contained(run)


def test_max_body_and_max_message_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(
        "checks:\n"
        "  - {name: a, type: http, url: 'http://127.0.0.1:9/', max_body: 10000000000}\n"
        "  - {name: b, type: websocket, url: 'ws://127.0.0.1:9/', max_message: 10000000000}\n"
        "  - {name: c, type: http, url: 'http://127.0.0.1:9/', max_body: 67108864}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config([path])
    text = str(caught.value)
    assert "check 'a': field 'max_body': Input should be less than or equal to 67108864" in text
    assert "check 'b': field 'max_message': Input should be less than or equal to 67108864" in text
    assert "check 'c'" not in text


# --- secrets against hostile targets --------------------------------------------------------------------------

SECRET = "s3cr@t-Passw0rd"
ENCODED = "s3cr%40t-Passw0rd"


@pytest.mark.parametrize("mode", ["refused", "bad-host", "timeout", "tls-stall"])
async def test_a_percent_encoded_url_password_is_masked_in_every_failure_mode(
    tmp_path: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    refused = socket_port()
    with hostile("http-hang" if mode == "timeout" else "tls-stall") as port:
        url = {
            "refused": f"http://admin:{ENCODED}@{HOST}:{refused}/?token={ENCODED}",
            "bad-host": f"http://admin:{ENCODED}@no-such-host.invalid/?token={ENCODED}",
            "timeout": f"http://admin:{ENCODED}@{HOST}:{port}/?token={ENCODED}",
            "tls-stall": f"https://admin:{ENCODED}@{HOST}:{port}/?token={ENCODED}",
        }[mode]
        run = await run_against(tmp_path, {"type": "http", "url": url})
    assert run.result.status == "down"
    everything = json.dumps(run.result.to_json()) + caplog.text
    assert SECRET not in everything and ENCODED not in everything and "s3cr" not in everything, everything


async def test_a_token_echoed_by_the_target_is_masked_in_the_result(tmp_path: Path) -> None:
    token = "tok-9f8e7d6c5b4a"
    with hostile("http-echo-401") as port:
        http = await run_against(
            tmp_path,
            {"type": "http", "url": f"http://{HOST}:{port}/", "headers": {"X-Token": token},
             "expect": {"body_contains": "welcome"}},
        )  # fmt: skip
        ws = await run_against(
            tmp_path,
            {"type": "websocket", "url": f"ws://{HOST}:{port}/", "headers": {"Authorization": f"Bearer {token}"}},
        )
    assert "answered HTTP 401 Unauthorized instead of upgrading to WebSocket" in ws.error, ws.error
    assert "authorization=****" in ws.error or "authorization=Bearer ****" in ws.error, ws.error
    for run in (http, ws):
        assert run.result.status == "down"
        assert token not in json.dumps(run.result.to_json()), run.result.to_json()


async def test_an_ingest_body_that_is_a_gzip_bomb_is_413_without_inflating_it(tmp_path: Path) -> None:
    from api_helpers import fake_daemon, serve

    config = (
        "version: 1\ningest:\n  tokens: {eu-west: 'eu-secret-token-1234'}\nchecks:\n"
        "  - {name: api, type: http, url: 'http://127.0.0.1:9/', locations: [default, eu-west]}\n"
    )
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join([packer.compress(b'{"results": ['), *(packer.compress(b" " * (1 << 20)) for _ in range(512)),
                     packer.flush()])  # fmt: skip
    headers = {"Authorization": "Bearer eu-secret-token-1234", "Content-Type": "application/json"}
    before = _peak_mb()
    async with fake_daemon(tmp_path, config) as daemon, serve(daemon) as client:
        answer = await client.post("/api/v1/ingest", data=bomb, headers={**headers, "Content-Encoding": "gzip"})
        assert answer.status == 413, await answer.text()
        assert "larger than 8388608 bytes" in (await answer.json())["error"]
        twin = await client.post("/api/v1/ingest", json={"results": []}, headers=headers)
        assert twin.status == 200, await twin.text()
    assert _peak_mb() - before < MAX_GROWTH_MB
    assert daemon.accepted == []


# --- TLS -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tls-stall", "tls-trickle"])
async def test_a_tls_server_that_stalls_or_trickles_mid_handshake_is_down_within_the_timeout(
    tmp_path: Path, kind: str
) -> None:
    with hostile(kind) as port:
        tls = await run_against(tmp_path, {"type": "tls", "host": HOST, "port": port})
        https = await run_against(tmp_path, {"type": "http", "url": f"https://{HOST}:{port}/"})
    assert tls.result.status == "down"
    assert "accepted the connection but sent no TLS handshake answer within" in tls.error, tls.error
    assert https.result.status == "down"
    assert f"timed out after {TIMEOUT:g}s" in https.error, https.error
    assert_contained(tls)
    assert_contained(https)


# --- WebSocket -----------------------------------------------------------------------------------------------


async def test_a_1_gib_frame_is_refused_from_its_header(tmp_path: Path) -> None:
    with hostile("ws-1gb-frame") as port:
        run = await run_against(tmp_path, {"type": "websocket", "url": f"ws://{HOST}:{port}/"})
    assert run.result.status == "down"
    assert "the server sent a message too big (the probe closed with code 1009" in run.error, run.error
    assert run.seconds < 1.5
    assert_contained(run)


async def test_a_ping_flood_ends_the_connection_and_does_not_hold_the_loop(tmp_path: Path) -> None:
    # Before: websockets answered every ping of each 256 KiB read in one go; the loop was held for ~5 s at a
    # time and a 3 s check took 11 s.
    with hostile("ws-ping-flood") as port:
        run = await run_against(tmp_path, {"type": "websocket", "url": f"ws://{HOST}:{port}/", "hold": "1s"})
    assert run.result.status == "down"
    assert "the server flooded the connection with WebSocket pings" in run.error, run.error
    assert run.seconds < 1.0
    assert_contained(run)


async def test_endless_fragments_never_make_a_message_and_stay_bounded(tmp_path: Path) -> None:
    with hostile("ws-endless-fragments") as port:
        run = await run_against(
            tmp_path,
            {"type": "websocket", "url": f"ws://{HOST}:{port}/", "ping": False, "expect": {"message_contains": "x"}},
        )
    assert run.result.status == "down"
    assert "no message received within" in run.error or "message too big" in run.error, run.error
    assert_contained(run)


async def test_a_message_flood_while_held_is_read_and_dropped_without_holding_the_loop(tmp_path: Path) -> None:
    with hostile("ws-message-flood") as port:
        run = await run_against(
            tmp_path, {"type": "websocket", "url": f"ws://{HOST}:{port}/", "ping": False, "hold": "1s"}
        )
    assert run.result.status == "up", run.error
    assert_contained(run)


async def test_a_message_nested_too_deeply_is_not_json(tmp_path: Path) -> None:
    with hostile("ws-deep-json") as port:
        run = await run_against(
            tmp_path,
            {"type": "websocket", "url": f"ws://{HOST}:{port}/", "ping": False, "expect": {"message_json": {"a": 1}}},
        )
    assert run.result.status == "down"
    assert "message_json.a: no JSON message to check" in run.error, run.error
    assert_contained(run)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("ws-endless-handshake-header", "sent no WebSocket handshake response within"),
        ("ws-many-handshake-headers", "expected no more than 128 headers"),
    ],
)
async def test_a_hostile_upgrade_response_is_down_with_a_sentence(tmp_path: Path, kind: str, words: str) -> None:
    with hostile(kind) as port:
        run = await run_against(tmp_path, {"type": "websocket", "url": f"ws://{HOST}:{port}/"})
    assert run.result.status == "down"
    assert words in run.error, run.error
    assert_contained(run)


async def test_the_healthy_websocket_twin_is_up(tmp_path: Path) -> None:
    with hostile("ok-ws") as port:
        run = await run_against(
            tmp_path,
            {"type": "websocket", "url": f"ws://{HOST}:{port}/", "hold": "1s", "expect": {"message_json": {"a": "ok"}}},
        )
    assert run.result.status == "up", run.error
    assert_contained(run)


# --- Socket.IO -------------------------------------------------------------------------------------------------


def _socketio(port: int, **extra: Any) -> dict[str, Any]:
    return {"type": "websocket", "protocol": "socketio", "url": f"ws://{HOST}:{port}/socket.io/", **extra}


@pytest.mark.parametrize("kind", ["sio-event-flood", "sio-engine-ping-flood"])
async def test_a_socketio_flood_is_bounded_by_the_timeout_and_does_not_hold_the_loop(tmp_path: Path, kind: str) -> None:
    with hostile(kind) as port:
        run = await run_against(tmp_path, _socketio(port, hold="1s"))
    assert run.result.status in ("up", "down")  # a flooding server may miss our ping; the loop must not suffer
    assert_contained(run)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("sio-bad-ping-interval", "the Engine.IO open packet has an invalid pingInterval ('soon')"),
        ("sio-deep-event", "the EVENT packet's payload is not JSON"),
    ],
)
async def test_a_malformed_socketio_server_is_down_with_a_sentence(tmp_path: Path, kind: str, words: str) -> None:
    with hostile(kind) as port:
        run = await run_against(tmp_path, _socketio(port, expect={"message_contains": "x"}))
    assert run.result.status == "down"
    assert words in run.error, run.error
    assert_contained(run)


async def test_an_ack_id_of_5000_digits_is_not_taken_for_our_ack(tmp_path: Path) -> None:
    with hostile("sio-long-ack-id") as port:
        run = await run_against(tmp_path, _socketio(port, send=["hello"], expect={"message_contains": "ok"}))
    assert run.result.status == "down", run.error  # the only answer is not an ack of ours
    assert_contained(run)


async def test_the_healthy_socketio_twin_is_up(tmp_path: Path) -> None:
    with hostile("ok-socketio") as port:
        run = await run_against(tmp_path, _socketio(port, hold="1s", expect={"message_contains": "welcome"}))
    assert run.result.status == "up", run.error
    assert_contained(run)


# --- check files, the database, the installation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("((a{100}){100}){100}", "invalid repetition size"),
        ("a|" * 200_000 + "b", "the pattern is 400001 characters long; at most 4096 are accepted"),
        ("(a)\\1", "back-references"),
    ],
    ids=["nested-repetition", "400k-alternation", "back-reference"],
)
def test_a_regex_built_to_blow_up_compilation_is_one_short_problem_line(
    tmp_path: Path, pattern: str, words: str
) -> None:
    path = tmp_path / "regex.yaml"
    check = {"name": "r", "type": "http", "url": "http://127.0.0.1:9/", "expect": {"body_matches": pattern}}
    path.write_text(yaml.safe_dump({"checks": [check]}))
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_config([path])
    (problem,) = map(str, caught.value.problems)
    assert words in problem, problem
    assert len(problem) < 400, f"the problem line is {len(problem)} characters long"
    assert time.monotonic() - started < 5


@pytest.mark.slow
def test_a_check_file_with_100k_checks_validates_in_bounded_time_and_memory(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    lines = ["checks:"] + [
        f"  - {{name: c{n}, type: http, url: 'http://127.0.0.1:9/{n}', schedule: every 1m}}" for n in range(100_000)
    ]
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 8 * 1024 * 1024  # under the file-size bound: it must be parsed, not refused
    done = subprocess.run(
        [sys.executable, "-c", f"import resource, sys; from prober.cli.commands import main; "
         f"sys.argv = ['prober', 'validate', "
         f"{str(path)!r}]\ntry: main()\nfinally: print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "100000 check(s) in 1 file(s) are valid." in done.stdout, done.stdout + done.stderr
    peak_mb = int(done.stdout.split("peak")[-1]) / 1024
    assert peak_mb < 1024, f"validating 100k checks took {peak_mb:.0f} MB"


def test_a_symlink_to_a_database_in_use_is_refused_too(tmp_path: Path) -> None:
    db = tmp_path / "prober.db"
    db.touch()
    (tmp_path / "link.db").symlink_to(db)
    (tmp_path / "data").symlink_to(tmp_path)
    with DatabaseLock(db):
        for other in (tmp_path / "link.db", tmp_path / "data" / "prober.db"):
            with pytest.raises(DatabaseInUseError, match=rf"database {other} is in use by another prober \(pid"):
                DatabaseLock(other).acquire()
    with DatabaseLock(tmp_path / "link.db") as held:  # the twin: free again once released
        assert held.held


def _prober_check(tmp_path: Path, check: dict[str, Any], prelude: str, env: dict[str, str]) -> tuple[int, str]:
    path = tmp_path / "browser.yaml"
    path.write_text(yaml.safe_dump({"checks": [{"name": "page", "timeout": "20s", **check}]}))
    code = (
        f"{prelude}\nimport sys\nfrom prober.cli.commands import main\n"
        f"sys.argv = ['prober', 'check', {str(path)!r}]\nmain()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )
    return done.returncode, done.stdout + done.stderr


def test_without_playwright_a_browser_check_is_down_saying_what_is_missing(tmp_path: Path) -> None:
    # The slim image: no Playwright, no Chromium. Importing it fails as it would there.
    code, output = _prober_check(
        tmp_path, {"type": "browser", "url": "http://127.0.0.1:9/"}, "import sys; sys.modules['playwright'] = None", {}
    )
    assert code == 1, output
    flat = " ".join(output.replace("│", " ").split())
    assert "browser checks need Playwright and Chromium" in flat, output
    assert "Traceback" not in output and "ModuleNotFoundError" not in output, output


def test_without_chromium_a_browser_check_is_down_saying_where_it_looked(tmp_path: Path) -> None:
    # No system Chromium and no Playwright download: the pool must say so, not print Playwright's banner.
    code, output = _prober_check(
        tmp_path,
        {"type": "browser", "url": "http://127.0.0.1:9/"},
        "import prober.probes.browser.pool as pool; pool.DEFAULT_CHROMIUM = '/nonexistent/chromium'",
        {"PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "no-browsers"), "PROBER_CHROMIUM": ""},
    )
    assert code == 1, output
    flat = " ".join(output.replace("│", " ").split())
    assert "browser checks need Chromium: not found at /nonexistent/chromium" in flat, output
    assert "Traceback" not in output and "╔" not in output, output


def test_chromium_is_told_not_to_keep_its_shared_memory_in_dev_shm() -> None:
    from prober.probes.browser.pool import CHROMIUM_ARGS

    assert "--disable-dev-shm-usage" in CHROMIUM_ARGS


@pytest.mark.slow
async def test_the_launched_chromium_really_has_disable_dev_shm_usage(tmp_path: Path) -> None:
    from prober.probes.browser.pool import BrowserPool, chromium_executable

    executable = chromium_executable()
    assert executable is not None, "this test needs Chromium at /usr/bin/chromium or PROBER_CHROMIUM"
    pool = BrowserPool(executable=executable, pages=1)
    try:
        await pool.start()
        pid = pool.pid
        assert pid is not None
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    finally:
        await pool.aclose()
    assert b"--disable-dev-shm-usage" in command, command


# --- HLS (reported to the hls owner; not fixed here) ------------------------------------------------------------


@contextlib.asynccontextmanager
async def _master_origin(variants: int) -> AsyncIterator[tuple[str, list[int]]]:
    from aiohttp import web

    lines = ["#EXTM3U"] + [f"#EXT-X-STREAM-INF:BANDWIDTH={1000 + n}\nv{n}.m3u8" for n in range(variants)]
    master = "\n".join(lines) + "\n"
    media = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2,\ns.ts\n#EXT-X-ENDLIST\n"
    fetched = [0]

    async def serve_master(_: web.Request) -> web.Response:
        return web.Response(text=master)

    async def serve_media(_: web.Request) -> web.Response:
        fetched[0] += 1
        return web.Response(text=media)

    async def serve_segment(_: web.Request) -> web.Response:
        return web.Response(body=b"\x47" + b"\0" * 187)

    app = web.Application()
    app.router.add_get("/master.m3u8", serve_master)
    app.router.add_get("/{name}.m3u8", serve_media)
    app.router.add_get("/{name}.ts", serve_segment)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    try:
        yield f"http://{HOST}:{runner.addresses[0][1]}/master.m3u8", fetched
    finally:
        await runner.cleanup()


@pytest.mark.slow
async def test_a_master_playlist_with_10k_variants_is_checked_within_the_timeout(tmp_path: Path) -> None:
    async with _master_origin(10_000) as (url, fetched):
        run = await run_against(tmp_path, {"type": "hls", "url": url, "live": False})
    assert fetched[0] == 50, f"{fetched[0]} variant playlists fetched for one run"
    assert run.result.status == "up", run.error
    notes = run.result.details["notes"]
    assert notes[0] == (
        "the master lists 10000 variant and rendition playlists; only the first 50 were checked (max_playlists: 50)"
    )
    assert_contained(run)


async def test_max_playlists_is_the_users_to_raise_and_a_small_master_is_checked_whole(tmp_path: Path) -> None:
    async with _master_origin(120) as (url, fetched):
        run = await run_against(tmp_path, {"type": "hls", "url": url, "live": False, "max_playlists": 200})
    assert fetched[0] == 120 and run.result.status == "up", run.error
    assert not any("max_playlists" in note for note in run.result.details.get("notes", ()))


if __name__ == "__main__":
    asyncio.run(_serve_forever(sys.argv[1]))
