"""The `websocket` check with `protocol: socketio` against a real python-socketio server (aiohttp) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from ws_servers import CHAT_WELCOME, TOKEN, SocketIOServer, raw_server, run_check, socketio_server, spawned_server


@pytest.fixture
async def server() -> AsyncIterator[SocketIOServer]:
    async with socketio_server() as running:
        yield running


async def _until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait (bounded) for the server to process what the client already did."""
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)


async def test_the_default_namespace_connects_and_reports_the_sid_and_the_connect_ack(
    server: SocketIOServer, tmp_path: Path
) -> None:
    result = await run_check(tmp_path, {"url": server.url, "protocol": "socketio"})
    assert result.status == "up", result.error
    metrics = result.metrics
    assert metrics["connected"] is True and metrics["success_rate"] == 1.0
    assert isinstance(metrics["sid"], str) and metrics["sid"]
    assert isinstance(metrics["connect_ack"]["sid"], str)
    assert metrics["connect_ack"]["sid"] != metrics["sid"], "the namespace sid is not the Engine.IO sid"
    assert 0 < metrics["open_latency"] <= metrics["connect_latency"] < 1.0
    assert metrics["close_code"] == 1000
    assert result.details["engineio"]["ping_interval"] == 25.0
    assert result.details["url"] == f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
    stats = server.sio.stats
    await _until(lambda: stats["disconnect /"] == 1)
    assert stats["connect /"] == 1 and stats["disconnect /"] == 1, "the probe leaves the namespace cleanly"


async def test_a_welcome_event_on_the_chat_namespace_is_the_first_message(
    server: SocketIOServer, tmp_path: Path
) -> None:
    result = await run_check(
        tmp_path,
        {
            "url": server.url,
            "protocol": "socketio",
            "namespace": "/chat",
            "expect": {"message_json": {"0": "welcome", "1.room": "lobby"}, "message_contains": "hi"},
        },
    )
    assert result.status == "up", result.error
    assert json.loads(result.metrics["message"]) == ["welcome", CHAT_WELCOME]


async def test_a_namespace_whose_connect_handler_refuses_is_down_with_the_servers_message(
    server: SocketIOServer, tmp_path: Path
) -> None:
    result = await run_check(tmp_path, {"url": server.url, "protocol": "socketio", "namespace": "/admin"})
    assert result.status == "down"
    assert result.error == "Socket.IO refused the connection to namespace /admin: unauthorized"
    assert result.metrics["connected"] is False
    assert "sid" in result.metrics, "the Engine.IO session opened before the namespace refused"


async def test_the_auth_payload_is_sent_with_connect(server: SocketIOServer, tmp_path: Path) -> None:
    good = await run_check(
        tmp_path, {"url": server.url, "protocol": "socketio", "namespace": "/private", "auth": {"token": TOKEN}}
    )
    bad = await run_check(
        tmp_path,
        {"url": server.url, "protocol": "socketio", "namespace": "/private", "auth": {"token": "wrong"}},
        name="bad",
    )
    assert good.status == "up", good.error
    assert bad.status == "down"
    assert bad.error == "Socket.IO refused the connection to namespace /private: bad token"
    assert TOKEN not in json.dumps(good.to_json()), "the auth payload never appears in results"


async def test_an_emitted_event_is_acknowledged_and_the_ack_is_the_message(
    server: SocketIOServer, tmp_path: Path
) -> None:
    result = await run_check(
        tmp_path,
        {
            "url": server.url,
            "protocol": "socketio",
            "send": ["echo", "ping", 42],
            "expect": {"message_json": {"0.echo.1": 42}},
        },
    )
    assert result.status == "up", result.error
    assert json.loads(result.metrics["message"]) == [{"echo": ["ping", 42]}]


async def test_send_written_as_a_json_string_is_emitted_on_the_namespace(
    server: SocketIOServer, tmp_path: Path
) -> None:
    result = await run_check(
        tmp_path,
        {
            "url": server.url,
            "protocol": "socketio",
            "namespace": "/chat",
            "send": '["chat message", "hello room"]',
        },
    )
    assert result.status == "up", result.error
    await _until(lambda: server.sio.stats["chat message hello room"] == 1)
    assert server.sio.stats["chat message hello room"] == 1


async def test_twenty_connections_report_success_rate_one_and_percentiles_and_all_leave(
    server: SocketIOServer, tmp_path: Path
) -> None:
    result = await run_check(
        tmp_path, {"url": server.url, "protocol": "socketio", "namespace": "/chat", "connections": 20, "timeout": "5s"}
    )
    assert result.status == "up", result.error
    metrics = result.metrics
    assert metrics["success_rate"] == 1.0
    assert metrics["connections"] == 20 and metrics["connections_failed"] == 0
    assert 0 < metrics["open_latency_p50"] <= metrics["open_latency_p95"] <= metrics["open_latency_p99"] < 2.0
    stats = server.sio.stats
    assert stats["connect /chat"] == 20
    await _until(lambda: stats["disconnect /chat"] == 20)
    assert stats["disconnect /chat"] == 20, "every connection is closed cleanly"


async def test_engineio_pings_are_answered_while_a_connection_is_held(tmp_path: Path) -> None:
    # The server pings every 150ms and drops a client that has not answered within 150ms more.
    async with socketio_server(ping_interval=0.15, ping_timeout=0.15) as fast:
        result = await run_check(
            tmp_path, {"url": fast.url, "protocol": "socketio", "namespace": "/chat", "hold": "800ms"}
        )
    assert result.status == "up", result.error
    assert result.duration_ms >= 800


async def test_a_full_url_is_used_as_given_and_a_wrong_path_is_down(server: SocketIOServer, tmp_path: Path) -> None:
    full = await run_check(
        tmp_path,
        {"url": f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket", "protocol": "socketio"},
    )
    wrong = await run_check(
        tmp_path, {"url": f"http://127.0.0.1:{server.port}/chat-app/socket.io/", "protocol": "socketio"}, name="wrong"
    )
    assert full.status == "up", full.error
    assert wrong.status == "down"
    assert wrong.error is not None and "/chat-app/socket.io/ answered HTTP 404 Not Found" in wrong.error


async def test_a_plain_websocket_server_is_not_taken_for_socketio(tmp_path: Path) -> None:
    async with raw_server() as plain:
        result = await run_check(tmp_path, {"url": plain.url("/greet"), "protocol": "socketio"})
    assert result.status == "down"
    assert result.error is not None and result.error.startswith("expected the Engine.IO open packet")


async def test_a_killed_server_gives_down(tmp_path: Path) -> None:
    with spawned_server("socketio") as (process, port):
        check = {"url": f"ws://127.0.0.1:{port}", "protocol": "socketio", "connections": 3}
        before = await run_check(tmp_path, check)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=5)
        after = await run_check(tmp_path, check, name="after")
    assert before.status == "up", before.error
    assert after.status == "down"
    assert after.error == f"all 3 connections failed: connection refused by 127.0.0.1:{port}"


async def test_a_server_killed_while_connections_are_held_gives_down(tmp_path: Path) -> None:
    with spawned_server("socketio") as (process, port):
        check = {"url": f"ws://127.0.0.1:{port}", "protocol": "socketio", "connections": 4, "hold": "2s"}
        run = asyncio.ensure_future(run_check(tmp_path, {**check, "timeout": "4s"}))
        await asyncio.sleep(0.8)
        process.send_signal(signal.SIGKILL)
        result = await asyncio.wait_for(run, 5)
    assert result.status == "down"
    assert result.error is not None
    assert result.error.startswith(
        "all 4 connections failed: the connection was lost without a close frame (code 1006)"
    )
    assert result.metrics["close_code"] == 1006
