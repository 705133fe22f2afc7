"""Durations as users write them (`250ms`, `10s`, `5m`, `2h`, `14d`, or a bare number of seconds).

Everything inside prober works in float seconds; this module is the one place that turns the
human spelling into seconds and back, so error messages and tables read the same everywhere.
"""

from __future__ import annotations

import re

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration(value: object) -> float:
    """Return seconds for a duration, or raise ValueError with a sentence saying what is accepted."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 250ms, 10s, 5m, 2h or 14d, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            number, unit = float(match.group(1)), match.group(2) or "s"
            # Divide for milliseconds: 9 * 0.001 is 0.009000000000000001, 9 / 1000 is 0.009.
            return number / 1000 if unit == "ms" else number * _UNITS[unit]
    raise ValueError(f"expected a duration like 250ms, 10s, 5m, 2h or 14d, got {value!r}")


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
