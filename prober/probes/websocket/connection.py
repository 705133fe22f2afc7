"""One probe connection of a `websocket` check: open, talk, hold, close, and say what went wrong.

A `_Connection` walks the phases a real client goes through (TCP connect, TLS and the HTTP upgrade,
for Socket.IO the Engine.IO open and the namespace CONNECT, a WebSocket ping, the `send`, the first
message, the `hold`) and records what it measured in an Outcome. Every failure becomes one sentence
naming the phase, the peer and the actual value (a status code, a close code, a timeout), because
that sentence is what an on-call engineer reads.

This module never raises out of `Connection.run` (a failure is an Outcome, so a batch of 100 can
count its successes), never judges a result and never touches storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    NegotiationError,
)
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.typing import Subprotocol

from prober.config.durations import format_duration
from prober.probes.network import network_sentence
from prober.probes.websocket.socketio_client import EngineOpen, SocketIOError, SocketIOSession

__all__ = ["Address", "Connection", "Outcome", "Plan", "Refused", "describe"]

Address = tuple[Any, Any, int, str, Any]
"""(family, type, proto, canonname, sockaddr) from getaddrinfo."""

_NORMAL_CLOSE = (1000, 1001)
_OUR_FAILURE_CODES = {1002: "an invalid WebSocket frame", 1007: "invalid UTF-8 text", 1009: "a message too big"}

_DURING = {
    "connect": "while connecting",
    "upgrade": "during the WebSocket handshake",
    "engine.io open": "while waiting for the Engine.IO open packet",
    "namespace connect": "while joining the namespace",
    "ping": "before answering a WebSocket ping",
    "send": "while sending the message",
    "message": "before sending a message",
    "hold": "while it was held open",
    "idle": "while the other connections of the batch opened",
    "close": "while closing",
    "early": "before the probe closed it",
}


class Refused(Exception):
    """The server answered, but not in a way a client can use; the text says how."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What every connection of one run shares: where to go, what to say, when to give up."""

    url: str
    host: str
    port: int
    path: str
    addresses: Sequence[Address]
    ssl_context: ssl.SSLContext | None
    headers: dict[str, str]
    subprotocols: list[str]
    user_agent: str
    max_message: int
    socketio: bool
    namespace: str
    auth: dict[str, Any] | None
    send_text: str | None
    send_args: list[Any] | None
    wants_message: bool
    ping: bool
    hold: float
    work_deadline: float
    """`loop.time()` by which every connection must have done its work (then they are closed)."""
    close_deadline: float
    close_timeout: float

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(slots=True)
class Outcome:
    """What one connection measured; `error` is set when it failed."""

    ok: bool = False
    opened: bool = False
    """The handshake completed (for Socket.IO: the namespace accepted), whatever happened next."""
    error: str | None = None
    connect: float | None = None
    open_latency: float | None = None
    connect_latency: float | None = None
    ping_rtt: float | None = None
    subprotocol: str | None = None
    message: str | None = None
    message_bytes: int | None = None
    message_data: Any = None
    message_is_json: bool = False
    close_code: int | None = None
    started: float = 0.0
    ended: float = 0.0
    """perf_counter moments the connection began (after waiting for its batch slot) and ended: its span."""
    engine: EngineOpen | None = None
    connect_ack: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def _close_sentence(rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None, phase: str) -> str:
    during = _DURING.get(phase, "")
    if sent is not None and sent.code in _OUR_FAILURE_CODES and not rcvd_then_sent:
        detail = f": {sent.reason}" if sent.reason else ""
        return f"the server sent {_OUR_FAILURE_CODES[sent.code]} (the probe closed with code {sent.code}{detail})"
    if rcvd is not None:
        return f"the server closed the connection {during} (code {rcvd})"
    return f"the connection was lost without a close frame (code 1006) {during}"


READ_CHUNK = 16 * 1024
"""Bytes read from the socket per event-loop turn (asyncio's default is 256 KiB). websockets parses a whole
read at once and answers every ping in it; 256 KiB of 3-byte pings held the loop for a second or more."""
PING_BURST = 100
PING_RATE = 50.0
"""A server may send PING_BURST pings at once and PING_RATE a second on average; beyond that it floods."""


class _GuardedConnection(ClientConnection):
    """A client connection that a hostile server cannot use to hold the event loop: small reads, and a
    ping flood (pings answered automatically, with no backpressure) ends the connection with a sentence."""

    flooded: str | None = None
    _pings = 0
    _opened_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._opened_at = time.monotonic()
        if hasattr(transport, "max_size"):  # selector socket transports; TLS reads stay asyncio's size
            transport.max_size = READ_CHUNK

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        sent = self.protocol.close_sent
        if sent is not None and sent.code in _OUR_FAILURE_CODES and self.protocol.close_rcvd is None:
            # We refused what the server sent (a frame announcing 1 GiB, invalid UTF-8...) and told it so.
            # Waiting for its closing answer would keep a `recv()` (a message condition) blocked until the
            # check's timeout; end the connection now, so the sentence and the speed are the same either way.
            self.transport.close()

    def process_event(self, event: Any) -> None:
        super().process_event(event)
        if isinstance(event, Frame) and event.opcode is Opcode.PING and self.flooded is None:
            self._pings += 1
            elapsed = time.monotonic() - self._opened_at
            if self._pings > PING_BURST and self._pings > PING_RATE * elapsed:
                self.flooded = (
                    f"the server flooded the connection with WebSocket pings ({self._pings} in "
                    f"{format_duration(elapsed)}); the probe gave up on it"
                )
                self.transport.abort()


def describe(exc: BaseException, plan: Plan, phase: str) -> str:
    """The sentence for an exception raised in `phase`."""
    where = plan.where
    during = _DURING.get(phase, "")
    if isinstance(exc, SocketIOError | Refused):
        return str(exc)
    if isinstance(exc, ConnectionClosed):
        return _close_sentence(exc.rcvd, exc.sent, exc.rcvd_then_sent, phase)
    if isinstance(exc, InvalidStatus):
        response = exc.response
        body = response.body.decode("utf-8", "replace").strip() if response.body else ""
        shown = f": {body[:120]!r}" if body else ""
        return (
            f"{where}{plan.path} answered HTTP {response.status_code} {response.reason_phrase} "
            f"instead of upgrading to WebSocket{shown}"
        )
    if isinstance(exc, InvalidMessage):
        cause = exc.__cause__
        if isinstance(cause, EOFError):
            return f"{where} closed the connection before answering the WebSocket upgrade"
        return f"{where} did not answer the WebSocket upgrade with a valid HTTP response ({cause or exc})"
    if isinstance(exc, NegotiationError | InvalidHandshake):
        return f"the WebSocket handshake with {where} failed: {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the TLS certificate of {plan.host} is not valid: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake with {where} failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionResetError):
        return f"{where} reset the connection {during}"
    if isinstance(exc, OSError):
        return network_sentence(exc, plan.host, plan.port)
    return f"{type(exc).__name__} {during}: {exc}"


def _timeout_sentence(plan: Plan, phase: str, elapsed: float) -> str:
    took = format_duration(elapsed)
    if phase == "connect":
        return f"no TCP connection to {plan.where} within {took}"
    if phase == "upgrade":
        what = "TLS and WebSocket handshake" if plan.ssl_context else "WebSocket handshake response"
        return f"{plan.where} accepted the TCP connection but sent no {what} within {took}"
    if phase == "engine.io open":
        return f"the WebSocket opened but no Engine.IO open packet arrived within {took}; is this a Socket.IO server?"
    if phase == "namespace connect":
        return f"Socket.IO did not acknowledge the CONNECT to namespace {plan.namespace} within {took}"
    if phase == "ping":
        return f"the server did not answer a WebSocket ping within {took}"
    if phase == "message":
        after = "opening and sending" if plan.send_text is not None or plan.send_args is not None else "opening"
        return f"no message received within {took} after {after}"
    return f"timed out {_DURING.get(phase, '')} after {took}"


async def _open_tcp(addresses: Sequence[Address]) -> socket.socket:
    """Connect to the first address that accepts, like a browser without Happy Eyeballs."""
    loop = asyncio.get_running_loop()
    first_error: OSError | None = None
    for family, kind, proto, _, sockaddr in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            first_error = first_error or exc
        except BaseException:
            sock.close()
            raise
    raise first_error or OSError("no address to connect to")


class Connection:
    """One connection's walk through the phases; `run` returns its Outcome and never raises."""

    def __init__(
        self, plan: Plan, gate: asyncio.Semaphore, work_done: Callable[[], None], everyone_done: asyncio.Event
    ) -> None:
        self.plan = plan
        self.gate = gate
        self.work_done = work_done
        self.everyone_done = everyone_done
        self.ws: ClientConnection | None = None
        self.session: SocketIOSession | None = None
        self.phase = "connect"
        self.outcome = Outcome()
        self.started = time.perf_counter()

    async def run(self) -> Outcome:
        timer = asyncio.timeout_at(self.plan.work_deadline)
        try:
            try:
                async with timer:
                    await self._open()
                    await self._talk()
                self.outcome.ok = True
            except TimeoutError as exc:
                if timer.expired():
                    self._fail(_timeout_sentence(self.plan, self.phase, time.perf_counter() - self.started))
                else:
                    self._fail(describe(exc, self.plan, self.phase))
            except Exception as exc:
                self._fail(describe(exc, self.plan, self.phase))
            finally:
                self.work_done()
            if self.ws is not None and self.outcome.ok:
                self.phase = "idle"
                try:
                    await self._pump(stop=self.everyone_done)
                except ConnectionClosed:
                    pass  # judged by _closed_early: a normal hang-up after the message is fine
                except Exception as exc:
                    self._fail(describe(exc, self.plan, self.phase))
        finally:
            if self.ws is not None:
                await self._close()
            self.outcome.started, self.outcome.ended = self.started, time.perf_counter()
        return self.outcome

    def _fail(self, sentence: str) -> None:
        self.outcome.ok = False
        flooded = getattr(self.ws, "flooded", None)
        if self.outcome.error is None:
            self.outcome.error = flooded or sentence

    async def _open(self) -> None:
        plan, out = self.plan, self.outcome
        async with self.gate:
            self.started = started = time.perf_counter()
            self.phase = "connect"
            sock = await _open_tcp(plan.addresses)
            out.connect = time.perf_counter() - started
            self.phase = "upgrade"
            try:
                self.ws = await connect(
                    plan.url,
                    sock=sock,
                    ssl=plan.ssl_context,
                    server_hostname=plan.host if plan.ssl_context else None,
                    additional_headers=plan.headers or None,
                    subprotocols=[Subprotocol(p) for p in plan.subprotocols] or None,
                    user_agent_header=plan.user_agent,
                    proxy=None,
                    open_timeout=None,
                    ping_interval=None,
                    close_timeout=plan.close_timeout,
                    max_size=plan.max_message,
                    create_connection=_GuardedConnection,
                )
            except BaseException:
                sock.close()
                raise
            out.open_latency = time.perf_counter() - started
            out.subprotocol = self.ws.subprotocol
            if plan.subprotocols and self.ws.subprotocol is None:
                raise Refused(
                    f"the server accepted none of the requested subprotocols ({', '.join(plan.subprotocols)}); "
                    "browsers refuse such a connection"
                )
            if plan.socketio:
                self.session = SocketIOSession(self.ws, plan.namespace)
                self.phase = "engine.io open"
                out.engine = await self.session.open()
                self.phase = "namespace connect"
                out.connect_ack = await self.session.connect(plan.auth)
                out.connect_latency = time.perf_counter() - started
            out.opened = True

    async def _talk(self) -> None:
        plan, out, ws = self.plan, self.outcome, self.ws
        assert ws is not None
        ack_id = None
        if plan.send_text is not None or plan.send_args is not None:
            self.phase = "send"
            if self.session is not None and plan.send_args is not None:
                ack_id = 1
                await self.session.emit(plan.send_args, ack_id)
            elif plan.send_text is not None:
                await ws.send(plan.send_text)
        if plan.wants_message:
            self.phase = "message"
            if self.session is not None:
                packet = await self.session.first_message(ack_id)
                self._record_message(packet.raw_data, packet.data, parsed=True)
            else:
                data = await ws.recv()
                self._record_message(data, None, parsed=False)
        if plan.ping:
            self.phase = "ping"
            try:
                out.ping_rtt = await (await ws.ping())
            except ConnectionClosed:
                if self._closed_early() is not None:
                    raise  # a server that hangs up normally right after its message is fine
        if plan.hold > 0:
            self.phase = "hold"
            await self._pump(timeout=plan.hold)

    def _record_message(self, data: str | bytes, parsed_data: Any, *, parsed: bool) -> None:
        out = self.outcome
        if isinstance(data, bytes):
            out.message_bytes = len(data)
            text = data.decode("utf-8", "replace")
        else:
            out.message_bytes = len(data.encode("utf-8"))
            text = data
        out.message = text
        if parsed:
            out.message_data, out.message_is_json = parsed_data, True
            return
        try:
            out.message_data, out.message_is_json = json.loads(text), True
        except (ValueError, RecursionError):  # RecursionError: [[[[... nested deeper than the parser goes
            out.message_data, out.message_is_json = None, False

    async def _drain_raw(self) -> None:
        assert self.ws is not None
        while True:
            await self.ws.recv()

    async def _pump(self, *, stop: asyncio.Event | None = None, timeout: float | None = None) -> None:
        """Keep reading (answering Engine.IO pings, dropping messages) until `stop` is set or `timeout` passes.

        Raises what the reader raised if the connection ends first: a server that drops a held
        connection makes it a failed one.
        """
        if stop is not None and stop.is_set():
            return
        reader = asyncio.ensure_future(self.session.drain() if self.session is not None else self._drain_raw())
        waiters: set[asyncio.Future[Any]] = {reader}
        stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
        if stopper is not None:
            waiters.add(stopper)
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waiters:
                task.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        failure = None if reader.cancelled() else reader.exception()
        if failure is not None:
            raise failure

    def _closed_early(self) -> str | None:
        """The sentence when the server closed before we did, unless it hung up normally after its message."""
        ws = self.ws
        assert ws is not None
        if ws.state is State.OPEN:
            return None
        protocol = ws.protocol
        rcvd = protocol.close_rcvd
        if self.outcome.message is not None and rcvd is not None and rcvd.code in _NORMAL_CLOSE:
            return None
        return _close_sentence(rcvd, protocol.close_sent, protocol.close_rcvd_then_sent, "early")

    async def _close(self) -> None:
        ws, out = self.ws, self.outcome
        assert ws is not None
        if out.ok:
            early = self._closed_early()
            if early is not None:
                self._fail(early)
        try:
            async with asyncio.timeout_at(self.plan.close_deadline):
                if self.session is not None and ws.state is State.OPEN:
                    with contextlib.suppress(ConnectionClosed):
                        await self.session.disconnect()
                await ws.close()
        except (TimeoutError, OSError):
            ws.transport.abort()
        out.close_code = ws.close_code
