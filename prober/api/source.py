"""What the HTTP API needs from the process it serves: the `ApiSource` protocol and two small helpers.

The daemon (`prober.daemon.service.Daemon`) satisfies it; tests pass a small object holding a real Store and a
loaded Config. The API reads `store`, `config` and `options.location` afresh on every request (the daemon
replaces `config` on reload), reads the optional `scheduler` and `notifier` if they exist, and calls
`accept(result)` for ingested results and `accept_ping(ping)` for heartbeat pings, never anything else.
The store is typed as a `ReadOnlyStore`
(every query and the writer's counters, no write method), so the one way in for data is `accept`.

This module must never write, start or stop anything; it only describes and looks up.
"""

from __future__ import annotations

from typing import Any, Protocol

from prober.config.loader import Config
from prober.results import Result
from prober.scheduling.stats import SchedulerStats
from prober.store import ReadOnlyStore

__all__ = ["ApiSource", "HasLocation", "StatsSource", "StoreUnavailableError", "scheduler_stats", "store_of"]


class HasLocation(Protocol):
    @property
    def location(self) -> str: ...


class StatsSource(Protocol):
    """The scheduler, as far as /metrics and /healthz care."""

    def stats(self, *, checks: bool = True) -> SchedulerStats: ...


class ApiSource(Protocol):
    """The process the API serves. Attributes are read at request time, so a reload is seen at once.

    Optional attributes, looked up with getattr: `scheduler` (a StatsSource), `notifier`, and
    `accept_ping(ping) -> bool` (store a heartbeat ping and measure its check; False if already stored), the
    way in for `/ping/<token>` (prober.api.ping) as `accept` is for ingest; `accept_many(results) -> int` (commit
    an ingested batch in one transaction, then let the alerts see the new results; how many were new), which
    ingest prefers to `accept` per result.
    """

    @property
    def store(self) -> ReadOnlyStore | None: ...

    @property
    def config(self) -> Config: ...

    @property
    def options(self) -> HasLocation: ...

    async def accept(self, result: Result) -> bool:
        """Commit one result, then let the alerts see it (the same path as a local result); False if already stored."""
        ...


class StoreUnavailableError(RuntimeError):
    """The source has no store yet (the daemon is starting) or any more (stopping)."""


def store_of(source: ApiSource) -> ReadOnlyStore:
    store = source.store
    if store is None:
        raise StoreUnavailableError("the database is not open (prober is starting or stopping)")
    return store


def scheduler_stats(source: ApiSource, *, checks: bool) -> SchedulerStats | None:
    """The scheduler's stats, or None when the source has no scheduler (an API-only process, tests)."""
    scheduler: Any = getattr(source, "scheduler", None)
    stats = getattr(scheduler, "stats", None)
    if not callable(stats):
        return None
    value = stats(checks=checks)
    return value if isinstance(value, SchedulerStats) else None
