"""Per-check numbers that are too slow to compute for every response: uptime windows, latency
percentiles and daily uptime bars, kept in memory and recomputed only when they can have changed.

A check's numbers change when it gets a new result (its current-state marker, the result ids of its
locations, changes), when the UTC hour rolls over (every window is counted in whole hours) and, rarely,
when an agent delivers results late (older than the current state, so the marker does not change).
So a refresh recomputes every check whose marker changed, plus a bounded number (`budget`) of the
others whose numbers are from an earlier hour or older than `max_age` seconds, oldest first. The first
refresh computes everything. Each recomputation is a handful of indexed single-check queries on the
store (about 0.7 ms per check with 30 days of history), so a refresh costs milliseconds, not the
seconds a scan of every rollup of the last 90 days takes.

Uptime windows of 7 to 90 days are read from the daily rollups for their whole days and from the hourly
ones for their first and last day (the same numbers as summing hours, at a 24th of the rows).

Daily bars work the same way per UTC day: past days are computed once, today and yesterday again when
the check gets a new result; a refresh that starts from nothing (a restart) reads every check's 90 days
in one query of the daily rollups.

Not thread-safe on their own: the feed builder calls `refresh` from one thread at a time. Nothing here
writes to the store.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from prober.store import ReadOnlyStore
from prober.store.rollups import hour_floor

__all__ = [
    "LATENCY_WINDOW",
    "MAX_DAYS",
    "WINDOWS",
    "CheckSummary",
    "DailyHistory",
    "Marker",
    "SummaryCache",
    "day_uptime",
    "markers_of",
]

WINDOWS: dict[str, float] = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0, "90d": 90 * 86400.0}
"""The uptime windows of the feed, by the name it shows."""
LATENCY_WINDOW = 86400.0
MAX_DAYS = 90

Marker = tuple[tuple[str, str], ...]
"""(location, result id) of a check's current states: changes whenever the check gets a new result."""


@dataclass(frozen=True, slots=True)
class CheckSummary:
    uptime: dict[str, float | None]
    """Percent not down per window name (WINDOWS), None without results in the window."""
    latency_p50: float | None
    latency_p95: float | None
    marker: Marker
    hour: datetime
    computed_at: float
    """time.monotonic() of the computation."""


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


class SummaryCache:
    """Uptime over WINDOWS and latency p50/p95 over 24 h, per check."""

    def __init__(
        self, *, budget: int = 25, max_age: float = 600.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.budget = budget
        self.max_age = max_age
        self._monotonic = monotonic
        self._entries: OrderedDict[str, CheckSummary] = OrderedDict()
        self.recomputed = 0
        """Checks recomputed by the last refresh (for tests and the benchmark)."""

    def compute(self, store: ReadOnlyStore, check: str, marker: Marker, now: datetime) -> CheckSummary:
        uptime = {name: _round(value, 4) for name, value in store.uptime_windows(check, WINDOWS, now=now).items()}
        latency = store.latency_percentiles(check, LATENCY_WINDOW, (50, 95), now=now)
        return CheckSummary(
            uptime=uptime,
            latency_p50=_round(latency.get(50), 6),
            latency_p95=_round(latency.get(95), 6),
            marker=marker,
            hour=hour_floor(now),
            computed_at=self._monotonic(),
        )

    def refresh(self, store: ReadOnlyStore, markers: Mapping[str, Marker], now: datetime) -> Mapping[str, CheckSummary]:
        """Bring the summaries of the checks in `markers` up to date (see the module docstring); return them."""
        hour = hour_floor(now)
        entries = self._entries
        if entries.keys() != markers.keys():  # checks added or removed (a reload)
            for check in [check for check in entries if check not in markers]:
                del entries[check]
        recomputed = 0
        for check, marker in markers.items():
            entry = entries.get(check)
            if entry is None or entry.marker != marker:
                entries[check] = self.compute(store, check, marker, now)
                entries.move_to_end(check)
                recomputed += 1
        oldest_allowed = self._monotonic() - self.max_age
        for _ in range(self.budget if entries else 0):  # in the order computed: the stale ones come first
            check, entry = next(iter(entries.items()))
            if entry.hour == hour and entry.computed_at >= oldest_allowed:
                break
            entries[check] = self.compute(store, check, markers[check], now)
            entries.move_to_end(check)
            recomputed += 1
        self.recomputed = recomputed
        return entries


@dataclass(slots=True)
class _Days:
    today: date
    marker: Marker
    values: dict[date, float | None]
    row: list[float | None]
    """values of the MAX_DAYS days ending `today`, oldest first, rounded for the answer."""
    encoded: dict[int, bytes]
    """`member(check, days)` by `days` (filled as asked)."""

    def member(self, check: str, days: int) -> bytes:
        """`"check":[...]` with the last `days` values."""
        found = self.encoded.get(days)
        if found is None:
            name = json.dumps(check, ensure_ascii=False)
            values = json.dumps(self.row[-days:], separators=(",", ":"), allow_nan=False)
            found = self.encoded[days] = f"{name}:{values}".encode()
        return found


def day_uptime(store: ReadOnlyStore, check: str, day: date) -> float | None:
    """Percent of the check's results on that UTC day that were not down (None without results)."""
    return store.daily_uptimes(day, day, check).get(check, {}).get(day)


BULK = 50
"""More checks than this to compute from scratch: one query for all of them instead of one per check."""


class DailyHistory:
    """Daily uptime per check for the last MAX_DAYS UTC days (the status page's bars), from the daily
    rollups: a check's days are read again only when it got a result (today and yesterday then) or the
    day rolled over, and each check's JSON is kept, so an unchanged answer costs a join of bytes."""

    def __init__(self) -> None:
        self._entries: dict[str, _Days] = {}

    def refresh(
        self, store: ReadOnlyStore, markers: Mapping[str, Marker], now: datetime, days: int = MAX_DAYS
    ) -> tuple[list[date], dict[str, list[float | None]]]:
        """The last `days` days (oldest first, ending today) and each check's uptime per day."""
        days = max(1, min(days, MAX_DAYS))
        window, entries = self._update(store, markers, now)
        if days == MAX_DAYS:  # the kept lists themselves: callers only read them
            return window, {check: entry.row for check, entry in entries.items()}
        return window[-days:], {check: entry.row[-days:] for check, entry in entries.items()}

    def encoded(
        self, store: ReadOnlyStore, markers: Mapping[str, Marker], now: datetime, days: int
    ) -> tuple[list[date], bytes]:
        """Like `refresh`, with the checks as one JSON object (`{"name":[...],...}`) in `markers` order."""
        days = max(1, min(days, MAX_DAYS))
        window, entries = self._update(store, markers, now)
        return window[-days:], b"{" + b",".join(entry.member(check, days) for check, entry in entries.items()) + b"}"

    def _update(
        self, store: ReadOnlyStore, markers: Mapping[str, Marker], now: datetime
    ) -> tuple[list[date], dict[str, _Days]]:
        today = now.astimezone(UTC).date()
        window = [today - timedelta(days=offset) for offset in range(MAX_DAYS - 1, -1, -1)]
        entries: dict[str, _Days] = {}
        redo: dict[str, date] = {}
        """check -> the first day to read again (window[0] for a check read from scratch)."""
        for check, marker in markers.items():
            entry = self._entries.get(check)
            if entry is not None and entry.today == today and entry.marker == marker:
                entries[check] = entry
                continue
            first = window[0]
            if entry is not None:
                first = today
                if entry.today != today:  # new days, and the last one counted while it was still today
                    first = min(first, entry.today)
                if entry.marker != marker:
                    first = min(first, today - timedelta(days=1))
            redo[check] = max(first, window[0])
        fresh: dict[str, dict[date, float]] = {}
        whole = [check for check, first in redo.items() if first == window[0]]
        if len(whole) > BULK:
            fresh = store.daily_uptimes(window[0], today)
        for check, first in redo.items():
            if len(whole) > BULK and first == window[0]:
                found = fresh.get(check, {})
            else:
                found = store.daily_uptimes(first, today, check).get(check, {})
            entry = self._entries.get(check)
            old = entry.values if entry is not None else {}
            values: dict[date, float | None] = {day: found.get(day) if day >= first else old.get(day) for day in window}
            entries[check] = _Days(today, markers[check], values, [_round(values[day], 3) for day in window], {})
        self._entries = entries
        return window, entries


def markers_of(states: Sequence[tuple[str, str, str]]) -> dict[str, Marker]:
    """(check, location, result id) rows → each check's marker."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for check, location, result_id in states:
        grouped.setdefault(check, []).append((location, result_id))
    return {check: tuple(sorted(items)) for check, items in grouped.items()}
