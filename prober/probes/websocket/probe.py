"""The `websocket` check type (docs/checks/websocket.md): raw WebSocket or Socket.IO, one or many connections.

A run resolves the host once, then opens `connections` connections at once (at most `batch_size`
handshakes in flight), each one walking the phases of `websocket_connection.Connection`: TCP, TLS,
the HTTP upgrade, for Socket.IO the Engine.IO open and the namespace CONNECT, the optional `send`,
the first message when a condition needs it, a WebSocket ping, and the optional `hold`. Every
connection stays open until the whole batch is done, then all are closed cleanly. The probe reports
`success_rate`, open latency (percentiles for a batch) and the first connection's message and close
code; conditions decide the status.

This module never judges, stores or alerts, and never prints secrets: headers, `auth` and URL
credentials stay out of metrics, details and error sentences.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from prober.config.conditions import MetricSpec
from prober.config.durations import format_duration
from prober.config.models import CheckBase, Duration
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.network import network_sentence
from prober.probes.registry import Export, SecretKind, register, standard_exports, url_target
from prober.probes.stats import percentile
from prober.probes.websocket.connection import Connection, Outcome, Plan
from prober.probes.websocket.socketio_client import socketio_url
from prober.redact import redact_url

__all__ = ["WebSocketCheck", "WebSocketProbe"]

MESSAGE_METRICS = frozenset({"message", "message_contains", "message_matches", "message_json", "message_size"})
"""A condition on any of these makes every connection wait for its first message."""

_MESSAGE_KEPT = 4096
"""Characters of the first message kept in the stored metrics (conditions see all of it)."""


class WebSocketCheck(CheckBase):
    """The keys of a `websocket` check."""

    type: Literal["websocket"]
    protocol: Literal["raw", "socketio"] = Field("raw", description="raw WebSocket, or Socket.IO (Engine.IO v4)")
    url: str = Field(description="ws:// or wss:// (socketio also takes http:// and https://)")
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers of the upgrade request")
    subprotocols: list[str] = Field(default_factory=list, description="Sec-WebSocket-Protocol values offered")
    namespace: str = Field("/", description="socketio: the namespace to CONNECT to")
    auth: dict[str, Any] | None = Field(None, description="socketio: the CONNECT payload (e.g. {token: ...})")
    send: str | list[Any] | dict[str, Any] | None = Field(
        None, description="raw: a text message (a list/mapping is sent as JSON); socketio: an event [name, args...]"
    )
    connections: int = Field(1, ge=1, le=1000, description="connections opened at once")
    batch_size: int = Field(50, ge=1, le=1000, description="at most this many handshakes in flight at once")
    hold: Duration = Field(0.0, description="keep each connection open this long after its work")
    ping: bool = Field(True, description="send a WebSocket ping (after the first message) and wait for the pong")
    verify_tls: bool = True
    ca_file: str | None = None
    max_message: int = Field(1 << 20, ge=1, le=64 << 20, description="largest message accepted, in bytes")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str, info: ValidationInfo) -> str:
        protocol = info.data.get("protocol", "raw")
        schemes = ("ws", "wss", "http", "https") if protocol == "socketio" else ("ws", "wss")
        try:
            parts = urllib.parse.urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            raise ValueError(f"{redact_url(value)!r} is not a valid URL: {exc}") from None
        if parts.scheme not in schemes:
            raise ValueError(
                f"the URL must start with {' or '.join(s + '://' for s in schemes)}, got {redact_url(value)!r}"
            )
        if not parts.hostname:
            raise ValueError(f"the URL has no host: {redact_url(value)!r}")
        return value

    @field_validator("namespace")
    @classmethod
    def _valid_namespace(cls, value: str, info: ValidationInfo) -> str:
        if not value.startswith("/") or "," in value:
            raise ValueError(f"a namespace starts with '/' and has no ',', like '/chat'; got {value!r}")
        if value != "/" and info.data.get("protocol") != "socketio":
            raise ValueError("namespace only applies to protocol: socketio")
        return value

    @field_validator("auth")
    @classmethod
    def _auth_needs_socketio(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        if value is not None and info.data.get("protocol") != "socketio":
            raise ValueError("auth only applies to protocol: socketio (for a raw WebSocket use headers)")
        return value

    @field_validator("send")
    @classmethod
    def _valid_send(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or info.data.get("protocol") != "socketio":
            return value
        event = value
        if isinstance(value, str):
            try:
                event = json.loads(value)
            except (ValueError, RecursionError):
                event = None
        if not isinstance(event, list) or not event or not isinstance(event[0], str):
            raise ValueError(
                "with protocol: socketio, send is an event: a list whose first item is the event name, "
                f"like [chat message, hello]; got {value!r}"
            )
        return value

    @field_validator("hold")
    @classmethod
    def _hold_fits(cls, value: float, info: ValidationInfo) -> float:
        timeout = info.data.get("timeout")
        if isinstance(timeout, float) and value >= timeout:
            raise ValueError(
                f"hold ({format_duration(value)}) must be shorter than the check's timeout ({format_duration(timeout)})"
            )
        return value


@cache
def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"prober/{version('prober')} (websocket check)"
    except PackageNotFoundError:
        return "prober (websocket check)"


def _ssl_context(check: WebSocketCheck) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=check.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ProbeError(f"cannot load ca_file {check.ca_file!r}: {exc}") from None
    if not check.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


_SPECS = (
    MetricSpec("connected", "at least one connection completed its handshake (for Socket.IO: joined the namespace)"),
    MetricSpec("success_rate", "fraction of the connections that opened, did all that was asked and closed cleanly"),
    MetricSpec("open_latency", "opening handshake: TCP, TLS and HTTP upgrade (median of a batch)", unit="s"),
    MetricSpec("open_latency_p50", "median opening handshake over the batch", unit="s"),
    MetricSpec("open_latency_p95", "95th percentile opening handshake over the batch", unit="s"),
    MetricSpec("open_latency_p99", "99th percentile opening handshake over the batch", unit="s"),
    MetricSpec("dns", "host name resolution, once per run", unit="s"),
    MetricSpec("connect", "TCP connect (single connection)", unit="s"),
    MetricSpec("connect_latency", "socketio: from TCP connect to the namespace's CONNECT acknowledgement", unit="s"),
    MetricSpec("ping_rtt", "WebSocket ping round trip after opening (median of a batch)", unit="s"),
    MetricSpec("subprotocol", "the subprotocol the server chose, null if none"),
    MetricSpec("message", "the first message received (text; for socketio the event's JSON array)"),
    MetricSpec("message_contains", "the first message contains this text", kind="contains", subject="message"),
    MetricSpec(
        "message_matches", "the first message matches this regular expression", kind="matches", subject="message"
    ),
    MetricSpec(
        "message_json", "dotted paths into the first message parsed as JSON", kind="paths", subject="JSON message"
    ),
    MetricSpec("message_size", "size of the first message", unit="bytes"),
    MetricSpec("close_code", "close code the server sent or echoed (1006: no close frame)"),
    MetricSpec("connections", "connections attempted"),
    MetricSpec("connections_failed", "connections that failed"),
    MetricSpec("sid", "socketio: the Engine.IO session id"),
    MetricSpec("connect_ack", "socketio: the payload of the namespace's CONNECT acknowledgement"),
)


@register("websocket")
class WebSocketProbe:
    """Open one or many WebSocket / Socket.IO connections and report what they saw."""

    type_name: ClassVar[str]
    Config = WebSocketCheck
    metrics: ClassVar[Mapping[str, MetricSpec]] = {spec.name: spec for spec in _SPECS}

    exports: ClassVar[Mapping[str, tuple[Export, ...]]] = standard_exports(
        "ws", metrics, text=("subprotocol", "message", "sid", "connect_ack")
    )
    headline: ClassVar[tuple[str, ...]] = ("open_latency",)
    secrets: ClassVar[Mapping[str, SecretKind]] = {"url": "url", "headers": "headers", "auth": "value", "send": "text"}
    target = url_target

    def default_expect(self, check: WebSocketCheck) -> Mapping[str, Any]:
        return {"connected": True, "success_rate": 1}

    async def run(self, check: WebSocketCheck, ctx: ProbeContext) -> Observation:
        loop = asyncio.get_running_loop()
        url = socketio_url(check.url) if check.protocol == "socketio" else check.url
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        started = loop.time()
        try:
            addresses = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ProbeError(network_sentence(exc, host, port), metrics={"connected": False}) from None
        dns = loop.time() - started
        if not addresses:
            raise ProbeError(f"cannot resolve host {host}: no addresses", metrics={"connected": False})
        plan = self._plan(check, ctx, url, host, port, addresses)
        outcomes = await self._open_all(plan, check.connections, check.batch_size)
        shown = redact_url(url)
        for index, outcome in enumerate(outcomes, 1):
            where = {"url.full": shown, "server.address": host, "server.port": port, "prober.connection": index}
            ctx.timeline.add("connection", outcome.started, outcome.ended, outcome.error, **where)
        return self._observe(check, url, dns, outcomes)

    def _plan(self, check: WebSocketCheck, ctx: ProbeContext, url: str, host: str, port: int, addresses: Any) -> Plan:
        margin = min(1.0, max(0.05, 0.15 * ctx.timeout))
        wants = MESSAGE_METRICS & (set(check.expect) | set(check.warn))
        send_text: str | None = None
        send_args: list[Any] | None = None
        if check.send is not None:
            if check.protocol == "socketio":
                send_args = json.loads(check.send) if isinstance(check.send, str) else list(check.send)
            else:
                send_text = check.send if isinstance(check.send, str) else json.dumps(check.send)
        parts = urllib.parse.urlsplit(url)
        return Plan(
            url=url,
            host=host,
            port=port,
            path=parts.path or "/",
            addresses=addresses,
            ssl_context=_ssl_context(check) if parts.scheme == "wss" else None,
            headers=dict(check.headers),
            subprotocols=list(check.subprotocols),
            user_agent=_user_agent(),
            max_message=check.max_message,
            socketio=check.protocol == "socketio",
            namespace=check.namespace,
            auth=check.auth,
            send_text=send_text,
            send_args=send_args,
            wants_message=bool(wants),
            ping=check.ping,
            hold=check.hold,
            work_deadline=ctx.deadline - margin,
            close_deadline=ctx.deadline - margin * 0.2,
            close_timeout=margin * 0.6,
        )

    async def _open_all(self, plan: Plan, count: int, batch_size: int) -> list[Outcome]:
        gate = asyncio.Semaphore(batch_size)
        everyone_done = asyncio.Event()
        remaining = count

        def work_done() -> None:
            nonlocal remaining
            remaining -= 1
            if remaining == 0:
                everyone_done.set()

        connections = [Connection(plan, gate, work_done, everyone_done) for _ in range(count)]
        return list(await asyncio.gather(*(c.run() for c in connections)))

    def _observe(self, check: WebSocketCheck, url: str, dns: float, outcomes: list[Outcome]) -> Observation:
        count = len(outcomes)
        good = [o for o in outcomes if o.ok]
        metrics: dict[str, Any] = {
            "connected": any(o.opened for o in outcomes),
            "success_rate": round(len(good) / count, 4),
            "dns": dns,
        }
        if count > 1:
            metrics["connections"] = count
            metrics["connections_failed"] = count - len(good)
        latencies = sorted(o.open_latency for o in outcomes if o.open_latency is not None)
        if count == 1:
            only = outcomes[0]
            _put(metrics, "connect", only.connect)
            _put(metrics, "open_latency", only.open_latency)
            _put(metrics, "connect_latency", only.connect_latency)
            _put(metrics, "ping_rtt", only.ping_rtt)
        elif latencies:
            metrics["open_latency"] = _pct(latencies, 0.5)
            for q in (50, 95, 99):
                metrics[f"open_latency_p{q}"] = _pct(latencies, q / 100)
            for name in ("connect_latency", "ping_rtt"):
                values = sorted(v for o in outcomes if (v := getattr(o, name)) is not None)
                if values:
                    metrics[name] = _pct(values, 0.5)
        first = next((o for o in outcomes if o.open_latency is not None), outcomes[0])
        if check.subprotocols:
            metrics["subprotocol"] = first.subprotocol
        if first.close_code is not None:
            metrics["close_code"] = first.close_code
        details: dict[str, Any] = {"url": redact_url(url)}
        if check.protocol == "socketio":
            if first.engine is not None:
                metrics["sid"] = first.engine.sid
                details["engineio"] = first.engine.to_json()
            if first.connect_ack is not None:
                metrics["connect_ack"] = first.connect_ack
        subjects: dict[str, Any] = {}
        spoke = next((o for o in outcomes if o.message is not None), None)
        if spoke is not None and spoke.message is not None:
            metrics["message"] = spoke.message[:_MESSAGE_KEPT]
            metrics["message_size"] = spoke.message_bytes
            subjects["message"] = spoke.message
            if spoke.message_is_json:
                subjects["JSON message"] = spoke.message_data
        errors = Counter(o.error for o in outcomes if o.error is not None)
        if errors and count > 1:
            details["errors"] = dict(errors.most_common())
        if not good:
            raise ProbeError(self._failure_sentence(count, errors), metrics=metrics, details=details)
        return Observation(metrics=metrics, subjects=subjects, details=details)

    @staticmethod
    def _failure_sentence(count: int, errors: Counter[str]) -> str:
        (top, _), *others = errors.most_common()
        if count == 1:
            return top
        more = f" (and {len(others)} other kind{'s' if len(others) > 1 else ''} of error)" if others else ""
        return f"all {count} connections failed: {top}{more}"


def _put(metrics: dict[str, Any], name: str, value: float | None) -> None:
    if value is not None:
        metrics[name] = value


def _pct(values: list[float], fraction: float) -> float:
    value = percentile(values, fraction)
    assert value is not None, "percentile of no values"
    return value
