"""Durations as users write them (`250ms`, `10s`, `5m`, `2h`, `14d`, or a bare number of seconds).

Everything inside prober works in float seconds; this module is the one place that turns the
human spelling into seconds and back, so error messages and tables read the same everywhere.
"""

from __future__ import annotations

import math
import re

__all__ = ["MAX_DURATION", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
MAX_DURATION = 100 * 365 * 86400.0
"""No setting of prober means anything beyond a century; larger values are typos or attacks on the scheduler."""
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration(value: object) -> float:
    """Return seconds for a duration, or raise ValueError with a sentence saying what is accepted."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 250ms, 10s, 5m, 2h or 14d, got {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
        if math.isnan(seconds):
            raise ValueError("expected a duration like 250ms, 10s, 5m, 2h or 14d, got .nan (not a number)")
        if seconds < 0:
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        return _bounded(seconds, value)
    if isinstance(value, str) and len(value) <= 64:
        match = _DURATION.match(value)
        if match:
            number, unit = float(match.group(1)), match.group(2) or "s"
            # Divide for milliseconds: 9 * 0.001 is 0.009000000000000001, 9 / 1000 is 0.009.
            return _bounded(number / 1000 if unit == "ms" else number * _UNITS[unit], value)
    if isinstance(value, str) and len(value) > 64:
        value = value[:40] + "…"
    raise ValueError(f"expected a duration like 250ms, 10s, 5m, 2h or 14d, got {value!r}")


def _bounded(seconds: float, written: object) -> float:
    if not seconds <= MAX_DURATION:  # also catches inf
        raise ValueError(f"a duration must be finite and at most 100 years, got {written!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """Short human form: 0.25 -> '250ms', 90 -> '1m30s', 86400 -> '1d'."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    parts = []
    remaining = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts[:2])
