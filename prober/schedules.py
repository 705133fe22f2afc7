"""Schedules: `every <duration>` or a cron expression (croniter), and when each check next runs.

`every` schedules get a deterministic offset from the check name so 1,000 checks on `every 1m` spread
over the minute instead of firing together; cron `H` fields are hashed from the name the same way.
Next times are always computed from the schedule (never by adding sleeps), so runs do not drift.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter

from prober.durations import parse_duration

__all__ = ["Schedule", "parse_schedule"]

_EVERY = re.compile(r"^\s*every\s+(.+?)\s*$", re.I)


def _name_fraction(name: str) -> float:
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule. `interval` is set for `every`, `cron` for cron expressions."""

    text: str
    interval: float | None = None
    cron: str | None = None

    def next_after(self, moment: datetime, name: str) -> datetime:
        """The first run time of check `name` strictly after `moment` (UTC)."""
        moment = moment.astimezone(UTC)
        if self.interval is not None:
            offset = _name_fraction(name) * self.interval
            now = moment.timestamp()
            slots = math.floor((now - offset) / self.interval) + 1
            return datetime.fromtimestamp(offset + slots * self.interval, UTC)
        assert self.cron is not None
        itr = croniter(self.cron, moment, hash_id=name.encode())
        result: datetime = itr.get_next(datetime)
        return result.astimezone(UTC)

    def approximate_interval(self, name: str = "") -> float:
        """Seconds between two runs (for cron: the gap after now), used to size staleness windows."""
        if self.interval is not None:
            return self.interval
        now = datetime.now(UTC)
        first = self.next_after(now, name)
        return (self.next_after(first, name) - first).total_seconds()


def parse_schedule(text: object) -> Schedule:
    """Parse a schedule or raise ValueError saying what forms are accepted."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected 'every <duration>' or a cron expression like '*/5 * * * *', got {text!r}")
    every = _EVERY.match(text)
    if every:
        try:
            interval = parse_duration(every.group(1))
        except ValueError as exc:
            raise ValueError(f"bad interval in {text!r}: {exc}") from None
        if interval < 0.1:
            raise ValueError(f"an 'every' interval must be at least 100ms, got {text!r}")
        return Schedule(text=text.strip(), interval=interval)
    fields = text.split()
    if len(fields) not in (5, 6) or not croniter.is_valid(text, hash_id=b"validate"):
        raise ValueError(
            f"invalid cron expression {text!r}: expected 5 fields (minute hour day month weekday), "
            "or 6 with seconds last, or 'every <duration>'"
        )
    return Schedule(text=text.strip(), cron=text.strip())
