"""A tiny response cache: each distinct request (path and query) is computed at most once per `ttl`.

Many status-page visitors, widgets and scrapers poll the same few URLs. The first request after an
entry expires computes it; requests arriving meanwhile wait for that same computation instead of
starting their own (single flight), so a burst costs one computation. Entries older than `ttl` are
never served. The cache holds at most `max_entries` keys and forgets the oldest first.

Ages are read from a `prober.clock.Clock` (the system clock unless one is given), so tests move time
instead of sleeping past the ttl. An entry that seems to come from the future (the wall clock was set
back) counts as expired: a step of the clock never makes an old answer live longer.

It never computes anything itself and never shares a computation across different keys.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prober.clock import Clock, SystemClock

__all__ = ["Cached", "ResponseCache", "age_of"]


@dataclass(frozen=True, slots=True)
class Cached:
    body: bytes
    content_type: str
    status: int = 200
    created: float = 0.0
    """When its reading began, Unix seconds by the cache's clock."""


def age_of(created: float, clock: Clock) -> float:
    """Seconds since `created` (Unix seconds) by `clock`; infinite when `created` is ahead of the clock (it
    was set back), so the entry counts as expired."""
    age = clock.now().timestamp() - created
    return age if age >= 0 else float("inf")


class ResponseCache:
    def __init__(self, ttl: float = 1.0, *, max_entries: int = 256, clock: Clock | None = None) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._entries: OrderedDict[str, Cached] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self.computed = 0
        """How many times a producer ran (for tests)."""

    def _fresh(self, key: str) -> Cached | None:
        entry = self._entries.get(key)
        if entry is not None and age_of(entry.created, self.clock) < self.ttl:
            return entry
        return None

    async def get(self, key: str, produce: Callable[[], Awaitable[Cached]]) -> Cached:
        """The cached response for `key` if fresh, else the result of `produce()` (run once for all waiters)."""
        if self.ttl <= 0:
            self.computed += 1
            return await produce()
        entry = self._fresh(key)
        if entry is not None:
            return entry
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._fresh(key)
            if entry is not None:
                return entry
            self.computed += 1
            started = self.clock.now().timestamp()  # the data is as old as the moment its reading began
            made = await produce()
            entry = Cached(made.body, made.content_type, made.status, started)
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                old, _ = self._entries.popitem(last=False)
                self._locks.pop(old, None)
            return entry
