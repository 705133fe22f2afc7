"""Keeping the API's listener from taking the descriptors and the attention the checks need.

A monitor's own API must never make its checks fail. Without bounds, 2,000 idle connections to the
listener took every descriptor of a process with the usual soft limit of 1,024: results went down with
"Too many open files" and false incidents were paged. `GuardedSite` is aiohttp's `TCPSite` with a
`ConnectionGuard` in front of every accepted connection:

- at most `max_connections` connections are open at once; when a new one arrives at the cap, the
  oldest connection that is idle (no request under way: still waiting for its first request's headers,
  or kept alive between requests) is closed to make room, so a flood of idle connections cannot keep
  `/healthz` or the status page out; when none is idle the new one is refused;
- a connection must send its first request's headers within `header_timeout` (slow loris);
- descriptors are kept in reserve for probing: a connection whose descriptor number is within `reserve`
  of the process's soft open-file limit is refused at once (descriptor numbers are handed out lowest
  first, so number N means N descriptors are in use);
- every refusal and every connection closed early is counted in `REFUSED` by reason (`limit`,
  `descriptors`, `evicted`, `header_timeout`), exported in /metrics as
  `prober_api_connections_refused_total{reason}`.

`raise_open_file_limit` raises the process's soft open-file limit to its hard limit (the daemon calls it
at start). This module never reads a request (aiohttp does) and never closes a connection that is serving one.
"""

from __future__ import annotations

import asyncio
import resource
from collections import Counter, OrderedDict
from typing import Any, cast

from aiohttp import web

__all__ = [
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_RESERVE",
    "REFUSED",
    "ConnectionGuard",
    "GuardedSite",
    "raise_open_file_limit",
]

DEFAULT_MAX_CONNECTIONS = 256
"""A status page and its pollers need far fewer: every read endpoint is cached for a second."""
DEFAULT_HEADER_TIMEOUT = 10.0
"""Seconds a new connection has to send its first request's headers."""
DEFAULT_RESERVE = 512
"""Descriptors below the soft open-file limit that the API never takes: they are for probes, the
database, notifications (at most half the limit when the limit is small)."""

REFUSED: Counter[str] = Counter()
"""Connections refused or closed before they were served, by reason, since the process started."""


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard one (1,024 is a common soft default; probes, the API and
    the database all use descriptors). Returns (soft, hard) as they are afterwards; never raises."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return soft, hard


class ConnectionGuard:
    """The bounds of one listener (see the module docstring)."""

    def __init__(
        self,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        reserve: int = DEFAULT_RESERVE,
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.reserve = reserve
        self.open: OrderedDict[_GuardedProtocol, None] = OrderedDict()

    def fd_ceiling(self) -> int:
        """Descriptor numbers from here on are kept for probing."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return 1 << 30
        return soft - min(self.reserve, soft // 2)

    def admit(self, connection: _GuardedProtocol, fileno: int) -> str | None:
        """None when `connection` may be served, else the reason it is refused."""
        if fileno >= self.fd_ceiling():
            return "descriptors"
        if len(self.open) >= self.max_connections:
            idle = next((item for item in self.open if item.idle()), None)
            if idle is None:
                return "limit"
            idle.close("evicted")
        self.open[connection] = None
        return None

    def closed(self, connection: _GuardedProtocol) -> None:
        self.open.pop(connection, None)


class _GuardedProtocol(asyncio.Protocol):
    """aiohttp's request handler behind the guard: it sees the connection only once it is admitted."""

    def __init__(self, guard: ConnectionGuard, handler: Any) -> None:
        self.guard = guard
        self.handler = handler
        self.transport: asyncio.Transport | None = None
        self.headers_seen = False
        self.tail = b""
        self.timer: asyncio.TimerHandle | None = None
        self.admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes
        sock = transport.get_extra_info("socket")
        reason = self.guard.admit(self, sock.fileno() if sock is not None else -1)
        if reason is not None:
            REFUSED[reason] += 1
            self.transport.abort()
            return
        self.admitted = True
        self.timer = asyncio.get_running_loop().call_later(self.guard.header_timeout, self._too_slow)
        self.handler.connection_made(transport)

    def _too_slow(self) -> None:
        self.timer = None
        if not self.headers_seen:
            self.close("header_timeout")

    def idle(self) -> bool:
        """No request under way: waiting for the first headers, or kept alive between requests."""
        if not self.headers_seen:
            return True
        waiter = getattr(self.handler, "_waiter", None)  # aiohttp's "waiting for the next message"
        busy = getattr(self.handler, "_request_in_progress", True)
        return waiter is not None and not waiter.done() and not busy and not getattr(self.handler, "_messages", ())

    def close(self, reason: str) -> None:
        REFUSED[reason] += 1
        self.guard.closed(self)
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if not self.admitted:
            return
        if not self.headers_seen:
            window = self.tail + data
            if b"\r\n\r\n" in window or b"\n\n" in window:
                self.headers_seen = True
                if self.timer is not None:
                    self.timer.cancel()
                    self.timer = None
            else:
                self.tail = window[-3:]
        self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received() if self.admitted else None

    def pause_writing(self) -> None:
        if self.admitted:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.closed(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.admitted:
            self.admitted = False
            self.handler.connection_lost(exc)


class GuardedSite(web.TCPSite):
    """`web.TCPSite` whose every connection passes a `ConnectionGuard` first."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, guard: ConnectionGuard | None = None) -> None:
        super().__init__(runner, host, port)
        self.guard = guard or ConnectionGuard()

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        guard = self.guard

        def protocol() -> asyncio.Protocol:
            return _GuardedProtocol(guard, server())

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            protocol,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]
