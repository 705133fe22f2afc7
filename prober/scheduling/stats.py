"""The numbers the scheduler keeps about itself: run counters and start-lag summaries, per check and overall.

Plain data plus a fixed-size window of recent lags; no timing logic and no I/O. The API exports these
(`prober_schedule_lag_seconds`, `prober_scheduler_*`), so their JSON form is part of what users see.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["CheckStats", "LagSummary", "LagWindow", "SchedulerStats", "iso_or_none", "moment_or_none"]


@dataclass(frozen=True, slots=True)
class LagSummary:
    """Start lag in seconds: p50 and p99 over the most recent `samples` runs; `max`, `count` and `total` (the
    sum of every lag) over all runs, as a Prometheus summary reports them."""

    p50: float | None
    p99: float | None
    max: float | None
    samples: int
    count: int = 0
    total: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"p50": self.p50, "p99": self.p99, "max": self.max, "samples": self.samples}


@dataclass(frozen=True, slots=True)
class CheckStats:
    """One check as the scheduler sees it. Counters survive `replace()` while the name stays."""

    name: str
    type: str
    schedule: str
    runs: int
    """Runs started (`run` entered)."""
    completed: int
    errors: int
    """Runs in which `run` raised."""
    skipped: int
    """Slots not started because the previous run was still going."""
    missed: int
    """Slots that went by during a stall or suspend and were not replayed."""
    running: bool
    waiting: bool
    """Due, but waiting for a concurrency slot."""
    next_run: datetime | None
    last_scheduled: datetime | None
    last_lag: float | None
    lag: LagSummary

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "schedule": self.schedule,
            "runs": self.runs,
            "completed": self.completed,
            "errors": self.errors,
            "skipped": self.skipped,
            "missed": self.missed,
            "running": self.running,
            "waiting": self.waiting,
            "next_run": iso_or_none(self.next_run),
            "last_scheduled": iso_or_none(self.last_scheduled),
            "last_lag": self.last_lag,
            "lag": self.lag.to_json(),
        }


@dataclass(frozen=True, slots=True)
class SchedulerStats:
    """The whole scheduler. Totals count since start, including checks removed since."""

    checks: dict[str, CheckStats]
    runs: int
    completed: int
    errors: int
    skipped: int
    missed: int
    in_flight: int
    """Runs inside `run` right now."""
    waiting: int
    """Runs due and waiting for a concurrency slot."""
    lag: LagSummary

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "completed": self.completed,
            "errors": self.errors,
            "skipped": self.skipped,
            "missed": self.missed,
            "in_flight": self.in_flight,
            "waiting": self.waiting,
            "lag": self.lag.to_json(),
            "checks": {name: stats.to_json() for name, stats in self.checks.items()},
        }


def iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def moment_or_none(timestamp: float | None) -> datetime | None:
    return None if timestamp is None or math.isnan(timestamp) else datetime.fromtimestamp(timestamp, UTC)


class LagWindow:
    """The most recent lags in a fixed ring of doubles (8 bytes each), plus the all-time maximum."""

    __slots__ = ("_next", "_size", "_values", "count", "max", "total")

    def __init__(self, size: int) -> None:
        self._values = array("d")
        self._size = size
        self._next = 0
        self.max: float | None = None
        self.count = 0
        self.total = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if len(self._values) < self._size:
            self._values.append(value)
        else:
            self._values[self._next] = value
            self._next = (self._next + 1) % self._size
        if self.max is None or value > self.max:
            self.max = value

    def summary(self) -> LagSummary:
        ordered = sorted(self._values)
        count = len(ordered)

        def rank(q: float) -> float | None:
            return ordered[min(count - 1, math.ceil(q * count) - 1)] if count else None

        return LagSummary(
            p50=rank(0.50), p99=rank(0.99), max=self.max, samples=count, count=self.count, total=self.total
        )
