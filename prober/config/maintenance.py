"""Maintenance windows: is a check inside one at a given moment? Pure code.

A window starts at every firing of its `schedule` (cron, evaluated in UTC, `H` hashed from the window's
name; or `every <duration>`) and lasts `duration`; it covers the checks whose names match one of its
`checks` globs. The daemon asks `active_window` for each result and passes the answer to the alert
state machine, which then opens nothing and announces nothing.

It must never read the clock or do I/O: the moment is always passed in.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from datetime import datetime, timedelta

from prober.config.models import MaintenanceWindow

__all__ = ["active_window", "name_matches", "occurrence", "window_applies"]


def name_matches(check_name: str, patterns: Iterable[str]) -> bool:
    """True when one of the globs matches the check name (case-sensitive): the one rule for `checks:` lists
    of maintenance windows, announcements and `--name`."""
    return any(fnmatch.fnmatchcase(check_name, pattern) for pattern in patterns)


def window_applies(window: MaintenanceWindow, check_name: str) -> bool:
    """True when one of the window's `checks` globs matches the check name."""
    return name_matches(check_name, window.checks)


def occurrence(window: MaintenanceWindow, at: datetime) -> tuple[datetime, datetime] | None:
    """The (start, end) of the window's occurrence covering `at` (start <= at < end), or None.

    When occurrences overlap (a duration longer than the schedule's interval) the earliest one that
    still covers `at` is returned.
    """
    if window.duration <= 0:
        return None
    length = timedelta(seconds=window.duration)
    start = window.schedule.next_after(at - length, window.name)
    if start <= at:
        return start, start + length
    return None


def active_window(windows: Iterable[MaintenanceWindow], check_name: str, at: datetime) -> MaintenanceWindow | None:
    """The first window (in definition order) that covers `check_name` at `at` (an aware datetime)."""
    if at.tzinfo is None:
        raise ValueError(f"maintenance times must carry a timezone (UTC), got naive {at.isoformat()}")
    for window in windows:
        if window_applies(window, check_name) and occurrence(window, at) is not None:
            return window
    return None
