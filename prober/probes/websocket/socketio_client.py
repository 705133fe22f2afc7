"""Just enough Engine.IO v4 / Socket.IO v5 to probe a Socket.IO service over one WebSocket.

The `websocket` check with `protocol: socketio` uses this to do what a browser's socket.io-client
does first: read the Engine.IO open packet (`0{"sid": ...}`), send the Socket.IO CONNECT for a
namespace (`40/chat,{auth}`), wait for the acknowledgement (`40/chat,{"sid": ...}`) or the refusal
(CONNECT_ERROR, `44/chat,{"message": ...}`), emit one event, read the first event or acknowledgement,
and disconnect. It answers Engine.IO pings (`2` -> `3`) whenever it reads, so a slow run is not dropped
by the server's heartbeat.

Wire format of a Socket.IO packet inside an Engine.IO message (`4`):
`<type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]`.

This module never opens connections, never times anything and never judges: it speaks the protocol
over a connection it is given and raises SocketIOError with a sentence when the peer does not.
Only the WebSocket transport is spoken (no HTTP long-polling, no Engine.IO v3 / Socket.IO v2).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "ACK",
    "CONNECT",
    "CONNECT_ERROR",
    "DISCONNECT",
    "EVENT",
    "EngineOpen",
    "SocketIOError",
    "SocketIOPacket",
    "SocketIOSession",
    "encode_connect",
    "encode_disconnect",
    "encode_event",
    "parse_open",
    "parse_packet",
    "socketio_url",
]

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = range(7)
_TYPE_NAMES = ("CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK")

# Engine.IO v4 packet types, as the first character of a text frame.
_EIO_OPEN, _EIO_CLOSE, _EIO_PING, _EIO_PONG, _EIO_MESSAGE, _EIO_UPGRADE, _EIO_NOOP = "0123456"

_ACK_ID = re.compile(r"\d{1,15}")
"""An ack id is a counter; a longer run of digits is not one (and int() refuses 4300+ digits)."""


class SocketIOError(Exception):
    """The peer did not speak Engine.IO v4 / Socket.IO v5 as expected; the text says how."""


class Connection(Protocol):
    """The part of a websockets connection this module uses."""

    async def recv(self) -> str | bytes: ...

    async def send(self, message: str) -> None: ...


def socketio_url(url: str) -> str:
    """The WebSocket URL a Socket.IO client would open for `url`.

    `ws://host:port` (no path) gets `/socket.io/?EIO=4&transport=websocket`; a URL with a path but no
    `EIO` query parameter (`wss://host/chat/socket.io/`) gets the parameters added; a URL that already
    names `EIO` is used as given. `http`/`https` become `ws`/`wss`, as socket.io-client does.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if path in ("", "/"):
        path = "/socket.io/"
    if not any(key == "EIO" for key, _ in query):
        query += [("EIO", "4"), ("transport", "websocket")]
    return urllib.parse.urlunsplit((scheme, parts.netloc, path, urllib.parse.urlencode(query), ""))


@dataclass(frozen=True, slots=True)
class EngineOpen:
    """The Engine.IO open packet's handshake data."""

    sid: str
    ping_interval: float
    ping_timeout: float
    max_payload: int | None
    upgrades: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "ping_interval": self.ping_interval,
            "ping_timeout": self.ping_timeout,
            "max_payload": self.max_payload,
            "upgrades": self.upgrades,
        }


@dataclass(frozen=True, slots=True)
class SocketIOPacket:
    type: int
    namespace: str
    ack_id: int | None
    data: Any
    raw_data: str
    """The JSON payload as received (empty when there is none)."""

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES[self.type]


def _preview(text: str | bytes, limit: int = 60) -> str:
    shown = text if isinstance(text, str) else f"<{len(text)} binary bytes>"
    return repr(shown if len(shown) <= limit else shown[: limit - 3] + "...")


def parse_open(frame: str | bytes) -> EngineOpen:
    """Read the Engine.IO open packet (`0{"sid": ..., "pingInterval": ...}`)."""
    if not isinstance(frame, str) or not frame.startswith(_EIO_OPEN):
        raise SocketIOError(
            f"expected the Engine.IO open packet ('0{{\"sid\": ...}}') as the first message, got {_preview(frame)}; "
            "is this a Socket.IO v3/v4 server (Engine.IO v4)?"
        )
    try:
        data = json.loads(frame[1:])
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
        raise SocketIOError(f"the Engine.IO open packet has no session id: {_preview(frame)}")
    max_payload = data.get("maxPayload")
    upgrades = data.get("upgrades") or []
    return EngineOpen(
        sid=data["sid"],
        ping_interval=_milliseconds(data, "pingInterval", 25000, frame) / 1000,
        ping_timeout=_milliseconds(data, "pingTimeout", 20000, frame) / 1000,
        max_payload=max_payload if isinstance(max_payload, int) else None,
        upgrades=[str(u) for u in upgrades] if isinstance(upgrades, list) else [],
    )


def _milliseconds(data: dict[str, Any], key: str, default: int, frame: str) -> float:
    """A finite, non-negative number of milliseconds from the open packet, or a sentence saying it is not."""
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e12:
        raise SocketIOError(f"the Engine.IO open packet has an invalid {key} ({value!r:.40}): {_preview(frame)}")
    return float(value)


def parse_packet(text: str) -> SocketIOPacket:
    """Decode one Socket.IO packet (the part after the Engine.IO `4`)."""
    if not text or not text[0].isdigit() or int(text[0]) > BINARY_ACK:
        raise SocketIOError(f"not a Socket.IO packet: {_preview(text)}")
    kind = int(text[0])
    rest = text[1:]
    if kind in (BINARY_EVENT, BINARY_ACK):
        count, dash, after = rest.partition("-")
        if dash and count.isdigit():
            rest = after
    namespace = "/"
    if rest.startswith("/"):
        namespace, comma, after = rest.partition(",")
        rest = after if comma else ""
    ack_id = None
    match = _ACK_ID.match(rest)
    if match:
        ack_id = int(match.group(0))
        rest = rest[match.end() :]
    data: Any = None
    if rest:
        try:
            data = json.loads(rest)
        except (ValueError, RecursionError):
            raise SocketIOError(f"the {_TYPE_NAMES[kind]} packet's payload is not JSON: {_preview(text)}") from None
    return SocketIOPacket(kind, namespace, ack_id, data, rest)


def _prefix(kind: int, namespace: str) -> str:
    return f"{_EIO_MESSAGE}{kind}" + ("" if namespace == "/" else f"{namespace},")


def encode_connect(namespace: str, auth: dict[str, Any] | None = None) -> str:
    return _prefix(CONNECT, namespace) + (json.dumps(auth, separators=(",", ":")) if auth else "")


def encode_disconnect(namespace: str) -> str:
    return _prefix(DISCONNECT, namespace)


def encode_event(namespace: str, args: list[Any], ack_id: int | None = None) -> str:
    return _prefix(EVENT, namespace) + ("" if ack_id is None else str(ack_id)) + json.dumps(args, separators=(",", ":"))


def _refusal(packet: SocketIOPacket) -> str:
    data = packet.data
    if isinstance(data, dict):
        message = data.get("message")
        text = str(message) if message is not None else json.dumps(data)
        if data.get("data") is not None:
            text += f" ({json.dumps(data['data'])})"
        return text
    if isinstance(data, str):
        return data
    return packet.raw_data or "no reason given"


class SocketIOSession:
    """One Socket.IO client session for one namespace, over an open WebSocket."""

    def __init__(self, ws: Connection, namespace: str = "/") -> None:
        self.ws = ws
        self.namespace = namespace
        self.engine: EngineOpen | None = None
        self.connect_ack: Any = None
        self.pings_answered = 0
        self._early: list[SocketIOPacket] = []
        """Events that arrived before the CONNECT acknowledgement (some servers emit from the connect handler)."""

    async def _next_frame(self) -> str | bytes:
        """The next frame that is not an Engine.IO ping/pong/noop; pings are answered on the way."""
        while True:
            frame = await self.ws.recv()
            if isinstance(frame, str):
                if frame.startswith(_EIO_PING):
                    await self.ws.send(_EIO_PONG + frame[1:])
                    self.pings_answered += 1
                    continue
                if frame[:1] in (_EIO_PONG, _EIO_NOOP):
                    continue
                if frame[:1] == _EIO_CLOSE:
                    raise SocketIOError("the server closed the Engine.IO session (close packet '1')")
            return frame

    async def open(self) -> EngineOpen:
        """Read the Engine.IO open packet."""
        self.engine = parse_open(await self.ws.recv())
        return self.engine

    async def next_packet(self) -> SocketIOPacket:
        """The next Socket.IO packet (binary attachments and non-message frames are skipped)."""
        while True:
            frame = await self._next_frame()
            if not isinstance(frame, str):
                continue
            if not frame.startswith(_EIO_MESSAGE):
                if frame[:1] == _EIO_OPEN:
                    raise SocketIOError("the server sent a second Engine.IO open packet")
                raise SocketIOError(f"unexpected Engine.IO packet {_preview(frame)}")
            return parse_packet(frame[1:])

    async def connect(self, auth: dict[str, Any] | None = None) -> Any:
        """Join the namespace; return the CONNECT acknowledgement's payload (`{"sid": ...}`)."""
        await self.ws.send(encode_connect(self.namespace, auth))
        while True:
            packet = await self.next_packet()
            if packet.namespace != self.namespace:
                continue
            if packet.type == CONNECT:
                self.connect_ack = packet.data
                return packet.data
            if packet.type in (EVENT, BINARY_EVENT):
                self._early.append(packet)
                continue
            if packet.type == CONNECT_ERROR:
                raise SocketIOError(
                    f"Socket.IO refused the connection to namespace {self.namespace}: {_refusal(packet)}"
                )
            if packet.type == DISCONNECT:
                raise SocketIOError(f"the server disconnected namespace {self.namespace} instead of accepting it")
            raise SocketIOError(
                f"expected the CONNECT acknowledgement for namespace {self.namespace}, got a {packet.type_name} packet"
            )

    async def emit(self, args: list[Any], ack_id: int | None = None) -> None:
        await self.ws.send(encode_event(self.namespace, args, ack_id))

    async def first_message(self, ack_id: int | None = None) -> SocketIOPacket:
        """The first EVENT on the namespace, or the ACK for `ack_id`, whichever comes first."""
        if self._early:
            return self._early.pop(0)
        while True:
            packet = await self.next_packet()
            if packet.namespace != self.namespace:
                continue
            if packet.type in (EVENT, BINARY_EVENT):
                return packet
            if packet.type in (ACK, BINARY_ACK) and ack_id is not None and packet.ack_id == ack_id:
                return packet
            if packet.type == DISCONNECT:
                raise SocketIOError(f"the server disconnected namespace {self.namespace} before sending a message")

    async def drain(self) -> None:
        """Read forever, answering pings; returns never, raises when the server leaves the namespace."""
        while True:
            packet = await self.next_packet()
            if packet.namespace == self.namespace and packet.type == DISCONNECT:
                raise SocketIOError(f"the server disconnected namespace {self.namespace}")

    async def disconnect(self) -> None:
        await self.ws.send(encode_disconnect(self.namespace))
