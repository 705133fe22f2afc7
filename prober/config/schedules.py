"""Schedules: `every <duration>` or a cron expression (croniter), and when each check next runs.

`every` schedules get a deterministic offset from the check name so 1,000 checks on `every 1m` spread
over the minute instead of firing together; cron `H` fields are hashed from the name the same way.
Next times are always computed from the schedule (never by adding sleeps), so runs do not drift.
Cron expressions are read in UTC. This module is pure arithmetic: it never sleeps, never reads the
clock except in `approximate_interval`, and never runs anything.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from prober.config.durations import parse_duration

if TYPE_CHECKING:
    from croniter import croniter

__all__ = ["Schedule", "parse_schedule"]


def _croniter() -> type[croniter]:
    """croniter, imported for the first cron schedule (its import costs more than validating 500 checks)."""
    from croniter import croniter

    return croniter  # type: ignore[no-any-return]


_EVERY = re.compile(r"^\s*every\s+(.+?)\s*$", re.I)
_COUNT_CRON_SLOTS = 100
"""When counting cron slots skipped over by a long stall, step this many exactly, then estimate the rest."""


@lru_cache(maxsize=65536)
def _name_fraction(name: str) -> float:
    """A number in [0, 1) fixed by the check name: the same name always gets the same offset."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule. `interval` is set for `every`, `cron` for cron expressions."""

    text: str
    interval: float | None = None
    cron: str | None = None

    def next_timestamp(self, after: float, name: str) -> float:
        """The first run time of check `name` strictly after `after` (Unix seconds)."""
        if self.interval is not None:
            interval = self.interval
            offset = _name_fraction(name) * interval
            slot = offset + (math.floor((after - offset) / interval) + 1) * interval
            # Float rounding can land on (or a hair before) `after`; the answer must be strictly later.
            while slot <= after:
                slot += interval
            return slot
        assert self.cron is not None
        result: float = _croniter()(self.cron, after, hash_id=name.encode()).get_next(float)
        return result

    def slots(self, after: float, name: str) -> Iterator[float]:
        """The run times of check `name` strictly after `after`, in order, without end.

        Cheaper than calling `next_timestamp` again and again for cron (the expression is parsed once),
        and exact for `every`: slot k is computed as offset + k × interval, never by adding up.
        """
        if self.interval is not None:
            interval = self.interval
            offset = _name_fraction(name) * interval
            index = math.floor((after - offset) / interval) + 1
            while offset + index * interval <= after:
                index += 1
            while True:
                yield offset + index * interval
                index += 1
        steps = _croniter()(self.cron, after, hash_id=name.encode())
        while True:
            yield steps.get_next(float)

    def next_after(self, moment: datetime, name: str) -> datetime:
        """The first run time of check `name` strictly after `moment` (UTC)."""
        return datetime.fromtimestamp(self.next_timestamp(moment.timestamp(), name), UTC)

    def skip_to(self, due: float, now: float, name: str) -> tuple[int, float]:
        """Slots from `due` up to and including `now`, and the first slot after `now`.

        Used after a stall: those slots are counted as missed rather than run in a burst. For
        `every` the count is exact; for cron the first hundred slots are stepped through and the
        rest (a suspend over many fine-grained cron slots) is estimated from the spacing seen.
        """
        if due > now:
            return 0, due
        if self.interval is not None:
            following = self.next_timestamp(now, name)
            return max(1, round((following - due) / self.interval)), following
        steps = _croniter()(self.cron, due, hash_id=name.encode())
        count, slot = 0, due
        while slot <= now and count < _COUNT_CRON_SLOTS:
            count += 1
            slot = steps.get_next(float)
        if slot <= now:
            average = (slot - due) / count
            count += int((now - slot) / average) + 1
            slot = self.next_timestamp(now, name)
        return count, slot

    def approximate_interval(self, name: str = "") -> float:
        """Seconds between two runs (for cron: the gap after now), used to size staleness windows."""
        if self.interval is not None:
            return self.interval
        first = self.next_timestamp(datetime.now(UTC).timestamp(), name)
        return self.next_timestamp(first, name) - first


MAX_INTERVAL = 365 * 86400.0
"""A check that runs less than once a year is not monitoring anything."""


def _shown(text: object) -> str:
    """The value as quoted in an error, cut short so a hostile 300-digit schedule stays a one-line message."""
    written = repr(text)
    return written if len(written) <= 60 else written[:50] + "…" + written[-1]


def parse_schedule(text: object) -> Schedule:
    """Parse a schedule or raise ValueError saying what forms are accepted."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected 'every <duration>' or a cron expression like '*/5 * * * *', got {_shown(text)}")
    every = _EVERY.match(text)
    if every:
        try:
            interval = parse_duration(every.group(1))
        except ValueError as exc:
            raise ValueError(f"bad interval in {_shown(text)}: {exc}") from None
        if interval < 0.1:
            raise ValueError(f"an 'every' interval must be at least 100ms, got {_shown(text)}")
        if interval > MAX_INTERVAL:
            raise ValueError(f"an 'every' interval must be at most 365d, got {_shown(text)}")
        return Schedule(text=text.strip(), interval=interval)
    fields = text.split()
    if len(fields) not in (5, 6) or not _croniter().is_valid(text, hash_id=b"validate"):
        raise ValueError(
            f"invalid cron expression {_shown(text)}: expected 5 fields (minute hour day month weekday), "
            "or 6 with seconds last, or 'every <duration>'"
        )
    schedule = Schedule(text=text.strip(), cron=" ".join(fields))
    try:
        schedule.next_timestamp(0.0, "validate")
    except ValueError:
        raise ValueError(f"cron expression {_shown(text)} never fires (no such date)") from None
    return schedule
