"""Which checks a maintenance window covers right now, computed once per window rather than per check.

Pure: the moment is passed in; nothing here reads the clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prober.config.loader import Config
from prober.config.maintenance import occurrence, window_applies

__all__ = ["checks_in_maintenance"]


def checks_in_maintenance(config: Config, extra: Iterable[str], now: datetime) -> set[str]:
    """Names (configured checks and `extra`) covered by an active window at `now`."""
    active = [window for window in config.maintenance if occurrence(window, now) is not None]
    if not active:
        return set()
    names = {spec.name for spec in config.checks} | set(extra)
    return {name for name in names if any(window_applies(window, name) for window in active)}
