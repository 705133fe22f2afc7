"""A WebSocket server announcing a huge frame: the same sentence at the same speed with or without a message
condition (before: with `message_contains` the check waited out its whole timeout and said "no message
received within 9s"). Each size has its healthy twin, a server that sends a small message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_hostile_targets import HOST, TIMEOUT, assert_contained, run_against

SIZES = [1 << 30, 2 << 30, (1 << 63) - 1]


async def _upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    key = ""
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


@contextlib.asynccontextmanager
async def ws_server(first_frame: bytes, *, polite: bool = False) -> AsyncIterator[int]:
    """A loopback server that upgrades, sends `first_frame`, then reads whatever comes. A hostile one never
    answers a close frame (it does not have to); a `polite` one answers the first thing it reads with a
    normal close and hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _upgrade(reader, writer)
            writer.write(first_frame)
            await writer.drain()
            while await reader.read(65536):
                if polite:
                    writer.write(b"\x88\x02\x03\xe8")
                    await writer.drain()
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def _huge(size: int) -> bytes:
    return bytes([0x81, 127]) + struct.pack(">Q", size) + b"a" * 4096


CONDITIONS: list[dict[str, Any]] = [
    {},
    {"expect": {"message_contains": "hello"}},
    {"expect": {"message_json": {"a": 1}}},
]


@pytest.mark.parametrize("size", SIZES, ids=["1GiB", "2GiB", "2^63-1"])
@pytest.mark.parametrize("expect", CONDITIONS, ids=["no condition", "message_contains", "message_json"])
async def test_a_huge_frame_is_refused_at_once_with_or_without_a_message_condition(
    tmp_path: Path, size: int, expect: dict[str, Any]
) -> None:
    async with ws_server(_huge(size)) as port:
        run = await run_against(tmp_path, {"type": "websocket", "url": f"ws://{HOST}:{port}/", **expect})
    assert run.result.status == "down"
    assert run.error.startswith("the server sent a message too big (the probe closed with code 1009"), run.error
    assert run.seconds < 1.0, f"took {run.seconds:.2f}s of a {TIMEOUT}s timeout: {run.error}"
    assert_contained(run)


@pytest.mark.parametrize("expect", CONDITIONS[:2], ids=["no condition", "message_contains"])
async def test_the_twin_with_a_small_message_is_up(tmp_path: Path, expect: dict[str, Any]) -> None:
    async with ws_server(bytes([0x81, 5]) + b"hello", polite=True) as port:
        run = await run_against(tmp_path, {"type": "websocket", "url": f"ws://{HOST}:{port}/", "ping": False, **expect})
    assert run.result.status == "up", run.error
    assert run.seconds < 1.5
