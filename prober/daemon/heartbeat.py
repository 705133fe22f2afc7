"""The heartbeat out: while the daemon is healthy it pings a URL every `every` seconds (top-level
`heartbeat: {url, every}`), so a dead man's switch (healthchecks.io, Better Uptime, Cronitor, a webhook)
pages when prober dies, hangs or can no longer do its job. Not to be confused with the inbound `heartbeat`
check type, where other jobs ping prober.

Healthy means all of: the database takes writes (the writer reports no failure and the file is still
the database it opened, as /healthz says), the event loop is not stalled (this task's own wake-up came
on time), the scheduler is not stuck (runs waiting for a slot yet none started since the last beat), and
every notifier lane with messages queued still has a live worker. When any of it fails the beat is
withheld, and the reason logged once, until health returns.

A plain http(s) URL gets a GET; anything else is an Apprise URL (`json://`, `ntfy://`...) and gets a short
message. It never decides anything but whether to ping, never retries a ping in a burst (the next beat is
the retry), and never logs the URL unredacted (it is registered with the log filter: healthchecks.io
URLs are secrets).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from prober.daemon.health import database_problem
from prober.redact import LOG_SECRETS, redact_url

__all__ = ["Heartbeat", "health_problem"]

log = logging.getLogger("prober.heartbeat")

_PING_TIMEOUT = 10.0


def _dead_lanes(notifier: Any) -> int:
    lanes = getattr(notifier, "_lanes", {}) or {}
    dead = 0
    for lane in lanes.values():
        task = getattr(lane, "task", None)
        if getattr(lane, "queue", None) and (task is None or task.done()):
            dead += 1
    return dead


def health_problem(daemon: Any, *, runs_before: int | None) -> tuple[str | None, int | None]:
    """Why the daemon is not healthy now (None when it is), and the scheduler's run count to compare next time.
    Reads only; the database file check opens a read-only connection (call it in a worker thread)."""
    store = getattr(daemon, "store", None)
    if store is None:
        return "the database is not open", runs_before
    health = store.write_health
    if health.failing_since is not None:
        return f"writes to the database fail since {health.failing_since.isoformat(timespec='seconds')}", runs_before
    problem = database_problem(store.path, getattr(store, "file_identity", None))
    if problem is not None:
        return problem, runs_before
    runs = None
    scheduler = getattr(daemon, "scheduler", None)
    if scheduler is not None:
        stats = scheduler.stats(checks=False)
        runs = stats.runs
        if runs_before is not None and stats.waiting > 0 and runs == runs_before:
            return f"the scheduler is stuck: {stats.waiting} runs wait for a slot and none started", runs
    dead = _dead_lanes(getattr(daemon, "notifier", None))
    if dead:
        return f"{dead} notifier lane(s) have messages queued and no worker", runs
    return None, runs


@dataclass
class Heartbeat:
    """Pings `daemon.config.heartbeat.url` (read at every beat, so a reload applies) while healthy."""

    daemon: Any
    pings: int = 0
    withheld: int = 0
    _reason: str | None = field(default=None, repr=False)
    _runs: int | None = field(default=None, repr=False)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            settings = self.daemon.config.heartbeat
            every = settings.every if settings is not None else 5.0
            asked = loop.time()
            await asyncio.sleep(every)
            if settings is None or self.daemon.config.heartbeat is None:
                continue
            late = loop.time() - asked - every
            reason: str | None
            if late > max(1.0, every / 2):
                reason = f"the event loop was stalled ({late:.1f}s late)"
            else:
                reason, self._runs = await asyncio.to_thread(health_problem, self.daemon, runs_before=self._runs)
            if reason is not None:
                self.withheld += 1
                if reason != self._reason:
                    log.error(f"heartbeat withheld: {reason}", extra={"fields": {"url": redact_url(settings.url)}})
                self._reason = reason
                continue
            if self._reason is not None:
                log.info("healthy again; the heartbeat resumes", extra={"fields": {"url": redact_url(settings.url)}})
                self._reason = None
            await self.ping(settings.url)

    async def ping(self, url: str) -> bool:
        LOG_SECRETS.add(url)
        try:
            if url.startswith(("http://", "https://")):
                ok = await self._get(url)
            else:
                ok = await asyncio.to_thread(_apprise, url)
        except Exception as exc:
            log.warning(f"heartbeat ping failed: {type(exc).__name__}", extra={"fields": {"url": redact_url(url)}})
            return False
        if ok:
            self.pings += 1
        else:
            log.warning("heartbeat ping was refused", extra={"fields": {"url": redact_url(url)}})
        return ok

    async def _get(self, url: str) -> bool:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=_PING_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
            await response.read()
            return response.status < 400


def _apprise(url: str) -> bool:
    import apprise

    sender = apprise.Apprise()
    if not sender.add(url):
        return False
    return bool(sender.notify(title="prober heartbeat", body="prober is running and healthy"))
