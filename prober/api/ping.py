"""`GET|POST /ping/<token>[/start|/fail|/<exit-code>]`: heartbeat pings, an inbound result source like ingest.

    curl -fsS -m 10 --retry 5 https://status.example.com/ping/<token>          the job succeeded
    curl -fsS -m 10 --retry 5 https://status.example.com/ping/<token>/start    it began
    curl -fsS -m 10 --retry 5 https://status.example.com/ping/<token>/fail     it failed
    curl -fsS -m 10 --retry 5 --data-binary @job.log https://.../ping/<token>/$?   its exit code, with its log

→ 200 `OK`. An unknown token, an unknown action or a check this process does not watch: 404 `not found`, the
same answer every time, so nobody learns whether a check exists. More than `RATE` pings a minute for one
check: 429 with Retry-After (the ping is not stored). The first MAX_BODY characters of a body are kept as the
run's log; the rest of a body over MAX_READ bytes is not read.

The token is found by its SHA-256 (a dict lookup whose timing says nothing about the token) and then compared
with `hmac.compare_digest`; it is never logged (every check's token is a declared secret, masked in logs). A
ping is handed to the source's `accept_ping` (the daemon stores it, measures the check at once and passes it
on to its peer hubs); this module never writes anything itself. A ping carrying FORWARD_HEADER comes from a
peer: it keeps that ping's id and time (so each hub stores it once) and is not passed on again.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from prober.api.source import ApiSource
from prober.config.loader import Config
from prober.pings import FORWARD_HEADER, MAX_BODY, Ping, ping_action, read_forward_header
from prober.probes.registry import passive
from prober.store import StoreError

__all__ = ["MAX_READ", "RATE", "PingHandler"]

RATE = 30
"""Pings a minute one check may receive (a burst of RATE, then one every 60/RATE seconds)."""
MAX_READ = 64 * 1024
"""Bytes of a ping's body read at most."""

_NOT_FOUND = "not found"


class _Bucket:
    """A token bucket: RATE pings, refilled at RATE a minute."""

    __slots__ = ("at", "tokens")

    def __init__(self, now: float) -> None:
        self.tokens = float(RATE)
        self.at = now

    def take(self, now: float) -> float:
        """0 when a ping may pass (one is taken), else the seconds until one may."""
        self.tokens = min(float(RATE), self.tokens + (now - self.at) * RATE / 60.0)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) * 60.0 / RATE


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class PingHandler:
    def __init__(
        self,
        source: ApiSource,
        *,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.clock = clock or (lambda: datetime.now(UTC))
        self.monotonic = monotonic
        self._config: Config | None = None
        self._by_digest: dict[bytes, tuple[str, str]] = {}
        self._buckets: dict[str, _Bucket] = {}

    def _index(self) -> dict[bytes, tuple[str, str]]:
        """sha256(token) -> (token, check name) of the checks this process watches; rebuilt after a reload."""
        config = self.source.config
        if config is not self._config:
            location = self.source.options.location
            index: dict[bytes, tuple[str, str]] = {}
            for spec in config.checks:
                probe = passive(spec.probe, "ping")
                if probe is not None and location in spec.model.locations:
                    token = probe.inbound_token(spec.model)
                    index[_digest(token)] = (token, spec.name)
            self._by_digest, self._config = index, config
            watched = {name for _, name in index.values()}
            self._buckets = {name: bucket for name, bucket in self._buckets.items() if name in watched}
        return self._by_digest

    async def handle(self, request: web.Request) -> web.Response:
        presented = request.match_info["token"]
        action = ping_action(request.match_info.get("action", ""))
        found = self._index().get(_digest(presented))
        if action is None or found is None or not hmac.compare_digest(found[0].encode(), presented.encode()):
            return web.Response(status=404, text=_NOT_FOUND)
        check = found[1]
        now = self.monotonic()
        bucket = self._buckets.get(check)
        if bucket is None:
            bucket = self._buckets[check] = _Bucket(now)
        wait = bucket.take(now)
        if wait:
            return web.Response(
                status=429,
                text=f"too many pings: at most {RATE} a minute per check; retry in {wait:.0f}s",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        sink: Callable[[Ping], Awaitable[bool]] | None = getattr(self.source, "accept_ping", None)
        if sink is None:
            return web.Response(status=503, text="this process does not take pings", headers={"Retry-After": "5"})
        kind, code = action
        body = await _read_body(request)
        received = self.clock()
        extra: dict[str, Any] = {}
        forwarded = request.headers.get(FORWARD_HEADER)
        if forwarded is not None:
            peer = read_forward_header(forwarded, received)
            if peer is None:
                return web.Response(status=400, text=f"malformed {FORWARD_HEADER} header: expected '<id> <time>'")
            extra = {"id": peer[0], "forwarded": True}
            received = peer[1]
        ping = Ping(check=check, kind=kind, exit_code=code, received_at=received, body=body, **extra)
        try:
            await sink(ping)
        except StoreError as exc:  # the job's curl --retry tries again
            return web.Response(
                status=503, text=f"the ping cannot be stored right now ({exc})", headers={"Retry-After": "5"}
            )
        return web.Response(text="OK")


async def _read_body(request: web.Request) -> str:
    if not request.can_read_body:
        return ""
    data = await request.content.read(MAX_READ)
    return data.decode("utf-8", errors="replace")[:MAX_BODY]


def add_routes(app: web.Application, source: ApiSource, clock: Callable[[], datetime] | None = None) -> None:
    """`/ping/<token>` and `/ping/<token>/<action>`, GET and POST."""
    handler = PingHandler(source, clock=clock)
    for path in ("/ping/{token}", "/ping/{token}/{action}"):
        app.router.add_route("GET", path, handler.handle)
        app.router.add_route("POST", path, handler.handle)
