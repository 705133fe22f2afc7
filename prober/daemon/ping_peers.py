"""Passing heartbeat pings on to peer hubs, so a ping counts on every hub behind a load balancer.

A job's ping reaches one hub. That hub stores it, then sends a copy to every peer given with `--ping-peer`
(`POST <peer>/ping/<token>[/<action>]` with the body, and `X-Prober-Forwarded-Ping: <id> <received at>`). The
peer stores the copy under the same id and time and never passes a copy on (the header is the loop guard), so
listing every hub on every hub, itself included, is fine: a hub's copy to itself is a duplicate and changes
nothing. Each peer has its own queue and task: a dead peer delays no other. A copy a peer does not confirm
(2xx; a 404 means the peer does not watch that check and is not retried) is tried again with backoff for up
to `MAX_FORWARD_AGE`, then dropped with one log line (the peer also dropped the time it was received, so it
would count as a fresh ping: a late one never makes a job look on time). Copies wait in memory: a hub that
stops loses the copies not yet sent (the pings themselves are in its database).

It never stores, judges or schedules anything; it only sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from prober.pings import FORWARD_HEADER, MAX_FORWARD_AGE, Ping, forward_header
from prober.redact import redact_url

if TYPE_CHECKING:
    import aiohttp

__all__ = ["MAX_QUEUE", "PingForwarder", "peer_urls", "ping_path"]

log = logging.getLogger("prober.daemon")

MAX_QUEUE = 10_000
"""Copies waiting per peer at most; beyond, the oldest are dropped (a peer down for long under heavy pinging)."""
_TIMEOUT = 5.0
_MAX_DELAY = 10.0


def peer_urls(values: Sequence[str]) -> list[str]:
    """The peer hubs of every --ping-peer (each may list several, comma-separated), checked: http(s) URLs."""
    from prober.config.models import http_url

    urls: list[str] = []
    for value in values:
        for item in value.split(","):
            if item.strip():
                urls.append(http_url(item.strip()).rstrip("/"))
    return list(dict.fromkeys(urls))


def ping_path(token: str, ping: Ping) -> str:
    """`/ping/<token>` plus the action that gives the same kind and exit code."""
    if ping.exit_code is not None:
        return f"/ping/{token}/{ping.exit_code}"
    return f"/ping/{token}" + ("" if ping.kind == "success" else f"/{ping.kind}")


@dataclass(slots=True)
class _Copy:
    ping: Ping
    path: str


class _Peer:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.shown = redact_url(self.url)
        self.queue: asyncio.Queue[_Copy] = asyncio.Queue(MAX_QUEUE)
        self.task: asyncio.Task[None] | None = None
        self.sent = 0
        self.dropped = 0


class PingForwarder:
    """One sending task per peer URL; `send(ping, token)` queues a copy for each."""

    def __init__(self, peers: Sequence[str]) -> None:
        self.peers = [_Peer(url) for url in dict.fromkeys(peers)]
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_TIMEOUT))
        for peer in self.peers:
            peer.task = asyncio.create_task(self._run(peer), name=f"prober-ping-peer {peer.shown}")

    async def stop(self) -> None:
        for peer in self.peers:
            if peer.task is not None:
                peer.task.cancel()
        for peer in self.peers:
            if peer.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await peer.task
        if self._session is not None:
            await self._session.close()

    def send(self, ping: Ping, token: str) -> None:
        if ping.forwarded:
            return  # the loop guard: a copy is never copied again
        copy = _Copy(ping, ping_path(token, ping))
        for peer in self.peers:
            if peer.queue.full():
                peer.queue.get_nowait()
                peer.dropped += 1
            peer.queue.put_nowait(copy)

    async def _run(self, peer: _Peer) -> None:
        while True:
            copy = await peer.queue.get()
            delay = 0.5
            while True:
                outcome = await self._post(peer, copy)
                if outcome is None:
                    peer.sent += 1
                    break
                age = datetime.now(UTC) - copy.ping.received_at
                if outcome == "refused" or age + timedelta(seconds=delay) > MAX_FORWARD_AGE:
                    peer.dropped += 1
                    log.warning(
                        "a heartbeat ping was not passed on to a peer hub",
                        extra={"fields": {"peer": peer.shown, "check": copy.ping.check, "error": outcome}},
                    )
                    break
                await asyncio.sleep(delay)
                delay = min(_MAX_DELAY, delay * 2)

    async def _post(self, peer: _Peer, copy: _Copy) -> str | None:
        """None when the peer confirmed, "refused" when it never will (404), else the reason to retry."""
        import aiohttp

        assert self._session is not None
        headers = {FORWARD_HEADER: forward_header(copy.ping)}
        try:
            async with self._session.post(
                peer.url + copy.path, data=copy.ping.body.encode(), headers=headers
            ) as response:
                if 200 <= response.status < 300:
                    return None
                if response.status in (400, 404):
                    return "refused"
                return f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"
