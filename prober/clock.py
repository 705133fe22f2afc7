"""The one clock of the process: wall-clock time and waiting, for the scheduler and for probes.

Both read the wall clock (slots are wall-clock moments; an HLS PROGRAM-DATE-TIME is compared with it) and
both wait for a moment, so there is one protocol and one real implementation. Tests pass a fake one to
the Scheduler and, through the Runner, to every probe run (`ProbeContext.clock`), so time is exact and a
test sleeps in microseconds. Imports nothing from prober, so anything may import it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "SystemClock", "sleep_until"]

_EARLY = 1e-3
"""Seconds short of a moment that count as having reached it (datetimes carry microseconds)."""


class Clock(Protocol):
    """Where time comes from. Tests pass a fake one."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep_until(self, moment: datetime) -> None:
        """Return at `moment` or earlier; callers re-read `now()` after every wake-up."""
        ...


class SystemClock:
    """The wall clock. Sleeps at most `step` seconds at a time so that a suspend (the monotonic
    clock asyncio sleeps on stands still meanwhile) or a clock step is noticed within a step."""

    def __init__(self, step: float = 1.0) -> None:
        self.step = step

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, moment: datetime) -> None:
        remaining = moment.timestamp() - time.time()
        if remaining > 0:
            await asyncio.sleep(min(remaining, self.step))


async def sleep_until(clock: Clock, moment: float) -> None:
    """Wait until `moment` (Unix seconds) by `clock`, however early its sleeps return."""
    target = datetime.fromtimestamp(moment, UTC)
    while clock.now().timestamp() < moment - _EARLY:
        await clock.sleep_until(target)
