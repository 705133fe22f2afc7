"""The `websocket` check against real raw WebSocket servers (and misbehaving TCP servers) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from certs_factory import make_cert, server_ssl_context
from ws_servers import GREETING, TOKEN, RawServer, bad_server, raw_server, refused_port, run_check

from prober.results import Assertion, Result

if TYPE_CHECKING:
    from conftest import ProberCli


@pytest.fixture
async def server() -> AsyncIterator[RawServer]:
    async with raw_server() as running:
        yield running


def _assertion(result: Result, metric: str) -> Assertion:
    found = [a for a in result.assertions if a.metric == metric]
    assert len(found) == 1, f"expected one assertion on {metric}, got {result.assertions}"
    return found[0]


# --- a healthy server ----------------------------------------------------------------------------------


async def test_echo_server_is_up_with_open_latency_ping_and_a_normal_close(server: RawServer, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": server.url("/echo")})
    assert result.status == "up", result.error
    metrics = result.metrics
    assert metrics["connected"] is True
    assert metrics["success_rate"] == 1.0
    assert 0 < metrics["connect"] <= metrics["open_latency"] < 1.0
    assert 0 < metrics["ping_rtt"] < 1.0
    assert metrics["close_code"] == 1000
    assert "open_latency_p95" not in metrics, "percentiles are for batches of connections"
    assert {a.metric for a in result.assertions} == {"connected", "success_rate"}


async def test_first_message_is_checked_by_contains_matches_and_json_paths(server: RawServer, tmp_path: Path) -> None:
    result = await run_check(
        tmp_path,
        {
            "url": server.url("/greet"),
            "expect": {
                "message_contains": "welcome",
                "message_matches": r'"version": \d+',
                "message_json": {"type": "hello", "version": ">= 3"},
            },
        },
    )
    assert result.status == "up", result.error
    assert json.loads(result.metrics["message"]) == GREETING
    assert result.metrics["message_size"] == len(json.dumps(GREETING))
    assert _assertion(result, "message_json.version").actual == 3


async def test_a_first_message_that_does_not_match_is_down_naming_what_was_missing(
    server: RawServer, tmp_path: Path
) -> None:
    result = await run_check(tmp_path, {"url": server.url("/greet"), "expect": {"message_json": {"type": "goodbye"}}})
    assert result.status == "down"
    assert result.error == "message_json.type was 'hello', expected goodbye"


async def test_a_first_message_that_is_not_json_fails_a_json_condition(server: RawServer, tmp_path: Path) -> None:
    result = await run_check(
        tmp_path, {"url": server.url("/echo"), "send": "plain text", "expect": {"message_json": {"a": 1}}}
    )
    assert result.status == "down"
    assert result.error is not None and "no JSON message" in result.error
    assert result.metrics["message"] == "plain text"


async def test_sent_text_comes_back_from_an_echo_server(server: RawServer, tmp_path: Path) -> None:
    result = await run_check(
        tmp_path, {"url": server.url("/echo"), "send": "ping 42", "expect": {"message": "ping 42"}}
    )
    assert result.status == "up", result.error
    assert result.metrics["message"] == "ping 42"


async def test_send_as_a_mapping_is_sent_as_json(server: RawServer, tmp_path: Path) -> None:
    result = await run_check(
        tmp_path,
        {
            "url": server.url("/echo"),
            "send": {"op": "subscribe", "channel": "ticker"},
            "expect": {"message_json": {"op": "subscribe"}},
        },
    )
    assert result.status == "up", result.error
    assert json.loads(result.metrics["message"]) == {"op": "subscribe", "channel": "ticker"}


async def test_a_binary_first_message_is_reported_as_text_with_its_size(server: RawServer, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": server.url("/binary"), "expect": {"message_contains": "binary-hello"}})
    assert result.status == "up", result.error
    assert result.metrics["message_size"] == len(b"\x00\x01binary-hello")


async def test_no_message_within_the_timeout_is_down_saying_so(server: RawServer, tmp_path: Path) -> None:
    started = time.perf_counter()
    result = await run_check(
        tmp_path, {"url": server.url("/silent"), "timeout": "1s", "expect": {"message_contains": "anything"}}
    )
    assert time.perf_counter() - started < 1.5
    assert result.status == "down"
    assert result.error is not None and result.error.startswith("no message received within")
    assert result.metrics["connected"] is True, "it did connect; it is the message that never came"
    assert result.metrics["success_rate"] == 0.0


async def test_headers_reach_the_server_and_unlock_a_protected_endpoint(server: RawServer, tmp_path: Path) -> None:
    allowed = await run_check(
        tmp_path, {"url": server.url("/auth"), "headers": {"Authorization": f"Bearer {TOKEN}", "X-Probe": "yes"}}
    )
    assert allowed.status == "up", allowed.error
    assert server.requests[-1]["X-Probe"] == "yes"
    assert server.requests[-1]["User-Agent"].startswith("prober")
    refused = await run_check(tmp_path, {"url": server.url("/auth")})
    assert refused.status == "down"
    assert refused.error == (
        f"127.0.0.1:{server.port}/auth answered HTTP 401 Unauthorized instead of upgrading to WebSocket: "
        "'missing or wrong token'"
    )
    assert TOKEN not in json.dumps(allowed.to_json()), "header values never appear in results"


async def test_http_404_instead_of_an_upgrade_is_down_with_the_status(server: RawServer, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": server.url("/missing")})
    assert result.status == "down"
    assert result.error is not None and "answered HTTP 404 Not Found instead of upgrading" in result.error


async def test_the_negotiated_subprotocol_is_reported_and_can_be_expected(server: RawServer, tmp_path: Path) -> None:
    result = await run_check(
        tmp_path,
        {"url": server.url("/subproto"), "subprotocols": ["chat.v3", "chat.v2"], "expect": {"subprotocol": "chat.v2"}},
    )
    assert result.status == "up", result.error
    assert result.metrics["subprotocol"] == "chat.v2"
    assert server.requests[-1]["Sec-WebSocket-Protocol"] == "chat.v3, chat.v2"


async def test_a_server_choosing_none_of_the_subprotocols_is_down(server: RawServer, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": server.url("/echo"), "subprotocols": ["chat.v2"]})
    assert result.status == "down"
    assert result.error is not None and "accepted none of the requested subprotocols (chat.v2)" in result.error
    assert result.metrics["subprotocol"] is None


# --- servers that close ----------------------------------------------------------------------------------


async def test_a_server_closing_with_4001_right_after_opening_is_down_with_the_close_code(
    server: RawServer, tmp_path: Path
) -> None:
    result = await run_check(tmp_path, {"url": server.url("/close?code=4001&reason=unauthorized")})
    assert result.status == "down"
    assert result.error is not None and "closed the connection" in result.error
    assert "4001" in result.error and "unauthorized" in result.error
    assert result.metrics["close_code"] == 4001


async def test_a_server_that_says_goodbye_and_closes_normally_is_up_when_its_message_is_expected(
    server: RawServer, tmp_path: Path
) -> None:
    result = await run_check(tmp_path, {"url": server.url("/say-and-close"), "expect": {"message": "goodbye"}})
    assert result.status == "up", result.error
    assert result.metrics["close_code"] == 1000


async def test_a_server_dropping_a_held_connection_is_down(server: RawServer, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": server.url("/close-after?delay=0.2"), "hold": "600ms"})
    assert result.status == "down"
    assert (
        result.error
        == "the server closed the connection while it was held open (code 1011 (internal error) went wrong)"
    )
    held = await run_check(tmp_path, {"url": server.url("/echo"), "hold": "300ms"}, name="held")
    assert held.status == "up", held.error
    assert held.duration_ms >= 300


# --- bad servers: each a clear `down` within the timeout ------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected", "handshake_done"),
    [
        ("never-upgrades", "accepted the TCP connection but sent no WebSocket handshake response within", False),
        ("closes-at-once", "closed the connection before answering the WebSocket upgrade", False),
        (
            "garbage-http",
            "did not answer the WebSocket upgrade with a valid HTTP response (invalid HTTP status line",
            False,
        ),
        ("garbage-frames", "the server sent an invalid WebSocket frame (the probe closed with code 1002", True),
    ],
)
async def test_a_misbehaving_server_is_down_within_the_timeout(
    kind: str, expected: str, handshake_done: bool, tmp_path: Path
) -> None:
    async with bad_server(kind) as port:
        started = time.perf_counter()
        result = await run_check(tmp_path, {"url": f"ws://127.0.0.1:{port}/feed", "timeout": "1s"})
        elapsed = time.perf_counter() - started
    assert result.status == "down"
    assert result.error is not None and expected in result.error, result.error
    assert elapsed < 1.1, f"took {elapsed:.2f}s with a 1s timeout"
    assert result.metrics["connected"] is handshake_done
    assert result.metrics["success_rate"] == 0.0


async def test_a_refused_port_is_down_with_connection_refused(tmp_path: Path) -> None:
    port = refused_port()
    result = await run_check(tmp_path, {"url": f"ws://127.0.0.1:{port}/"})
    assert result.status == "down"
    assert result.error == f"connection refused by 127.0.0.1:{port}"


# --- batches ---------------------------------------------------------------------------------------------


async def test_twenty_connections_report_success_rate_and_open_latency_percentiles(
    server: RawServer, tmp_path: Path
) -> None:
    result = await run_check(tmp_path, {"url": server.url("/echo"), "connections": 20, "batch_size": 7})
    assert result.status == "up", result.error
    metrics = result.metrics
    assert metrics["success_rate"] == 1.0
    assert metrics["connections"] == 20 and metrics["connections_failed"] == 0
    assert 0 < metrics["open_latency_p50"] <= metrics["open_latency_p95"] <= metrics["open_latency_p99"] < 1.0
    assert len(server.requests) == 20


async def test_a_batch_where_half_the_upgrades_fail_is_down_on_success_rate(server: RawServer, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": server.url("/flaky"), "connections": 10})
    assert result.status == "down"
    assert result.metrics["success_rate"] == 0.5
    assert result.metrics["connections_failed"] == 5
    ((sentence, count),) = result.details["errors"].items()
    assert count == 5 and "answered HTTP 503 Service Unavailable" in sentence
    assert result.error == f"success_rate was 0.5, expected 1 ({sentence})"
    tolerant = await run_check(
        tmp_path,
        {"url": server.url("/flaky"), "connections": 10, "expect": {"success_rate": ">= 0.5"}},
        name="tolerant",
    )
    assert tolerant.status == "up", tolerant.error


async def test_a_batch_that_cannot_connect_at_all_says_so_once(tmp_path: Path) -> None:
    port = refused_port()
    result = await run_check(tmp_path, {"url": f"ws://127.0.0.1:{port}/", "connections": 5})
    assert result.status == "down"
    assert result.error == f"all 5 connections failed: connection refused by 127.0.0.1:{port}"
    assert result.metrics["success_rate"] == 0.0


# --- TLS -------------------------------------------------------------------------------------------------


async def test_wss_is_up_with_the_issuing_ca_and_down_without_it(tmp_path: Path) -> None:
    files = make_cert("good", tmp_path / "certs")
    async with raw_server(server_ssl_context(files)) as tls:
        url = f"wss://localhost:{tls.port}/greet"
        trusted = await run_check(tmp_path, {"url": url, "ca_file": str(files.ca)})
        untrusted = await run_check(tmp_path, {"url": url}, name="untrusted")
        unverified = await run_check(tmp_path, {"url": url, "verify_tls": False}, name="unverified")
    assert trusted.status == "up", trusted.error
    assert untrusted.status == "down"
    assert untrusted.error is not None and untrusted.error.startswith("the TLS certificate of localhost is not valid")
    assert unverified.status == "up", unverified.error


# --- the command line ------------------------------------------------------------------------------------


async def test_prober_check_json_prints_the_websocket_result_and_exits_by_status(
    server: RawServer, tmp_path: Path, prober_cli: ProberCli
) -> None:
    path = tmp_path / "ws.yaml"
    checks = [
        {"name": "ws-up", "type": "websocket", "url": server.url("/greet"), "expect": {"message_contains": "hello"}},
        {"name": "ws-down", "type": "websocket", "url": f"ws://127.0.0.1:{refused_port()}/", "timeout": "1s"},
    ]
    path.write_text(yaml.safe_dump({"checks": checks}))
    process = await asyncio.to_thread(prober_cli.run, "check", "--json", path, timeout=30)
    lines = [json.loads(line) for line in process.stdout.splitlines()]
    by_name = {line["check"]: line for line in lines}
    assert process.returncode == 1
    assert by_name["ws-up"]["status"] == "up" and by_name["ws-up"]["type"] == "websocket"
    assert by_name["ws-down"]["status"] == "down" and "connection refused" in by_name["ws-down"]["error"]
