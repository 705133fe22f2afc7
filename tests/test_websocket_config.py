"""Validation of `websocket` check definitions, and the pure pieces: Socket.IO framing, URLs, percentiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from prober.config.loader import ConfigError, load_config
from prober.probes.stats import percentile
from prober.probes.websocket.socketio_client import (
    ACK,
    BINARY_EVENT,
    CONNECT,
    CONNECT_ERROR,
    EVENT,
    SocketIOError,
    encode_connect,
    encode_event,
    parse_open,
    parse_packet,
    socketio_url,
)
from prober.redact import redact_url

EXAMPLE = Path(__file__).resolve().parent.parent / "checks" / "chat-socketio.yaml"


def _problems(tmp_path: Path, check: dict[str, Any]) -> list[str]:
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump({"checks": [{"name": "ws", "type": "websocket", **check}]}))
    with pytest.raises(ConfigError) as caught:
        load_config([path])
    return [str(problem) for problem in caught.value.problems]


def test_the_example_chat_check_is_valid_and_opens_twenty_connections() -> None:
    config = load_config([EXAMPLE], env={})
    chat = next(spec for spec in config.checks if spec.name == "chat-socketio")
    assert chat.model.connections == 20  # type: ignore[attr-defined]
    assert chat.model.protocol == "socketio"  # type: ignore[attr-defined]
    assert {c.metric for c in chat.conditions} >= {"connected", "success_rate", "open_latency_p95"}


def test_a_raw_check_needs_a_ws_or_wss_url(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, {"url": "http://chat.example.com/ws"})
    assert "field 'url'" in problem
    assert "the URL must start with ws:// or wss://, got 'http://chat.example.com/ws'" in problem


def test_a_socketio_check_also_takes_an_http_url(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(
        yaml.safe_dump(
            {"checks": [{"name": "s", "type": "websocket", "protocol": "socketio", "url": "https://x.test"}]}
        )
    )
    assert load_config([path]).checks[0].model.url == "https://x.test"  # type: ignore[attr-defined]


def test_namespace_and_auth_only_apply_to_socketio(tmp_path: Path) -> None:
    problems = _problems(tmp_path, {"url": "ws://x.test", "namespace": "/chat", "auth": {"token": "t"}})
    assert any("field 'namespace'" in p and "only applies to protocol: socketio" in p for p in problems)
    assert any("field 'auth'" in p and "only applies to protocol: socketio" in p for p in problems)


def test_a_namespace_starts_with_a_slash(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, {"url": "ws://x.test", "protocol": "socketio", "namespace": "chat"})
    assert "a namespace starts with '/'" in problem and "got 'chat'" in problem


def test_socketio_send_is_an_event_list_with_a_name(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, {"url": "ws://x.test", "protocol": "socketio", "send": "hello"})
    assert "field 'send'" in problem and "a list whose first item is the event name" in problem


def test_hold_must_be_shorter_than_the_timeout(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, {"url": "ws://x.test", "timeout": "2s", "hold": "5s"})
    assert "hold (5s) must be shorter than the check's timeout (2s)" in problem


def test_an_unknown_metric_lists_the_websocket_metrics(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, {"url": "ws://x.test", "expect": {"latency": "< 1s"}})
    assert "unknown metric 'latency'" in problem
    assert "open_latency_p95" in problem and "message_json" in problem


def test_connections_are_bounded(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, {"url": "ws://x.test", "connections": 0})
    assert "field 'connections'" in problem


@pytest.mark.parametrize(
    ("given", "opened"),
    [
        ("ws://127.0.0.1:3000", "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket"),
        ("https://127.0.0.1/", "wss://127.0.0.1/socket.io/?EIO=4&transport=websocket"),
        ("ws://127.0.0.1/?room=a", "ws://127.0.0.1/socket.io/?room=a&EIO=4&transport=websocket"),
        ("ws://127.0.0.1/app/socket.io/", "ws://127.0.0.1/app/socket.io/?EIO=4&transport=websocket"),
        (
            "ws://127.0.0.1/socket.io/?EIO=4&transport=websocket&x=1",
            "ws://127.0.0.1/socket.io/?EIO=4&transport=websocket&x=1",
        ),
    ],
)
def test_socketio_url_adds_the_engineio_path_and_query_only_when_missing(given: str, opened: str) -> None:
    assert socketio_url(given) == opened


def test_socketio_packets_are_read_with_namespace_ack_id_and_payload() -> None:
    ack = parse_packet('0/chat,{"sid":"abc"}')
    assert (ack.type, ack.namespace, ack.data) == (CONNECT, "/chat", {"sid": "abc"})
    refusal = parse_packet('4/admin,{"message":"unauthorized"}')
    assert (refusal.type, refusal.namespace, refusal.data) == (CONNECT_ERROR, "/admin", {"message": "unauthorized"})
    event = parse_packet('212["reply",1]')
    assert (event.type, event.namespace, event.ack_id, event.data) == (EVENT, "/", 12, ["reply", 1])
    answer = parse_packet("3/chat,7[true]")
    assert (answer.type, answer.ack_id, answer.data) == (ACK, 7, [True])
    binary = parse_packet('51-/chat,["file",{"_placeholder":true,"num":0}]')
    assert (binary.type, binary.namespace, binary.data[0]) == (BINARY_EVENT, "/chat", "file")
    with pytest.raises(SocketIOError, match=r"not a Socket\.IO packet"):
        parse_packet("x")
    with pytest.raises(SocketIOError, match="payload is not JSON"):
        parse_packet("2[oops")


def test_socketio_packets_are_written_as_socketio_client_writes_them() -> None:
    assert encode_connect("/") == "40"
    assert encode_connect("/chat", {"token": "t"}) == '40/chat,{"token":"t"}'
    assert encode_event("/", ["echo", 1], 3) == '423["echo",1]'
    assert encode_event("/chat", ["hi"]) == '42/chat,["hi"]'


def test_the_engineio_open_packet_gives_sid_and_heartbeat() -> None:
    opened = parse_open('0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}')
    assert (opened.sid, opened.ping_interval, opened.ping_timeout, opened.max_payload) == ("s1", 25.0, 20.0, 1000000)
    with pytest.raises(SocketIOError, match=r"expected the Engine\.IO open packet"):
        parse_open('{"type": "hello"}')
    with pytest.raises(SocketIOError, match="no session id"):
        parse_open("0{}")


def test_percentiles_interpolate_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == pytest.approx(50.5)
    assert percentile(values, 0.95) == pytest.approx(95.05)
    assert percentile(values, 0.99) == pytest.approx(99.01)
    assert percentile([0.2], 0.99) == 0.2
    assert percentile([], 0.5) is None


def test_urls_are_shown_without_passwords_or_tokens() -> None:
    assert redact_url("wss://bob:hunter2@h/ws?token=abc&room=1") == "wss://bob:****@h/ws?token=****&room=1"
