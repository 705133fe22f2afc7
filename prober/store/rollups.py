"""Hourly rollups: per check, location and UTC hour, the count of results, how many were down or degraded,
latency min/sum/max and a fixed-bucket latency histogram. Uptime and latency percentiles over days or
months are computed from these rows, never from raw results, so the status feed stays cheap however much
history there is, and rollups outlive raw results (retention.rollup vs retention.raw).

The latency of a result is its `latency` metric when it has a numeric one, else its whole run
(`duration_ms` / 1000). Every result counts, down ones included: a timeout shows as a slow result.

The histogram bounds are part of the schema (one column per bucket, `le_<bound>`, Prometheus-style "less
than or equal"): changing BUCKET_BOUNDS needs a migration, never an edit in place.

This module holds pure functions and SQL text; it never opens a connection itself.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prober.results import format_timestamp

__all__ = [
    "BUCKET_BOUNDS",
    "BUCKET_COLUMNS",
    "UPSERT_ROLLUP_SQL",
    "HourlyDelta",
    "aggregate",
    "bucket_index",
    "estimate_percentiles",
    "hour_floor",
    "hour_key",
    "latency_of",
    "window_start_key",
]

BUCKET_BOUNDS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1,
    0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5,
    3.0, 4.0, 5.0, 6.5, 8.0, 10.0, 15.0, 20.0, 30.0, 60.0, math.inf,
)  # fmt: skip
"""Upper bounds in seconds (inclusive). About 1.25x apart between 10 ms and 10 s, where web latencies live."""


def _column_name(bound: float) -> str:
    if math.isinf(bound):
        return "le_inf"
    text = f"{bound * 1000:g}ms" if bound < 1 else f"{bound:g}s"
    return "le_" + text.replace(".", "_")


BUCKET_COLUMNS: tuple[str, ...] = tuple(_column_name(bound) for bound in BUCKET_BOUNDS)
"""Column names of the histogram in rollups_hourly: le_1ms, le_2_5ms, ..., le_60s, le_inf."""


def latency_of(metrics: Mapping[str, Any], duration_ms: float) -> float:
    """Seconds: the `latency` metric when the probe reports one, else the duration of the whole run."""
    value = metrics.get("latency")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return max(0.0, duration_ms / 1000)


def bucket_index(latency: float) -> int:
    """Index of the first bucket whose upper bound is >= latency."""
    return bisect_left(BUCKET_BOUNDS, latency)


def hour_floor(moment: datetime) -> datetime:
    """The start of the UTC hour containing `moment` (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_key(moment: datetime) -> str:
    """The `hour` column value for `moment`: its hour start as ISO 8601 UTC text, which sorts by time."""
    return format_timestamp(hour_floor(moment))


def window_start_key(now: datetime, window_seconds: float) -> str:
    """The first hour inside a window ending at `now`: the hour containing `now - window`, so a window is
    counted in whole hours (for 24h at 08:30, from 08:00 yesterday through the current partial hour)."""
    return hour_key(now - timedelta(seconds=window_seconds))


@dataclass(slots=True)
class HourlyDelta:
    """What a batch of results adds to one (check, location, hour) rollup row."""

    count: int = 0
    down: int = 0
    degraded: int = 0
    latency_min: float = math.inf
    latency_max: float = 0.0
    latency_sum: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKET_BOUNDS))

    def add(self, status: str, latency: float) -> None:
        self.count += 1
        if status == "down":
            self.down += 1
        elif status == "degraded":
            self.degraded += 1
        self.latency_min = min(self.latency_min, latency)
        self.latency_max = max(self.latency_max, latency)
        self.latency_sum += latency
        self.buckets[bucket_index(latency)] += 1

    def params(self, check: str, location: str, hour: str) -> tuple[Any, ...]:
        return (
            check,
            location,
            hour,
            self.count,
            self.down,
            self.degraded,
            self.latency_min,
            self.latency_max,
            self.latency_sum,
            *self.buckets,
        )


def aggregate(items: Iterable[tuple[str, str, datetime, str, float]]) -> dict[tuple[str, str, str], HourlyDelta]:
    """Group (check, location, started_at, status, latency) into per-hour deltas."""
    deltas: dict[tuple[str, str, str], HourlyDelta] = {}
    for check, location, started_at, status, latency in items:
        key = (check, location, hour_key(started_at))
        delta = deltas.get(key)
        if delta is None:
            delta = deltas[key] = HourlyDelta()
        delta.add(status, latency)
    return deltas


_FIXED = ("count", "down", "degraded", "latency_min", "latency_max", "latency_sum")
UPSERT_ROLLUP_SQL = (
    f'INSERT INTO rollups_hourly ("check", location, hour, {", ".join(_FIXED)}, {", ".join(BUCKET_COLUMNS)}) '
    f"VALUES ({', '.join('?' * (3 + len(_FIXED) + len(BUCKET_COLUMNS)))}) "
    'ON CONFLICT ("check", location, hour) DO UPDATE SET '
    "count = count + excluded.count, down = down + excluded.down, degraded = degraded + excluded.degraded, "
    "latency_min = min(latency_min, excluded.latency_min), latency_max = max(latency_max, excluded.latency_max), "
    "latency_sum = latency_sum + excluded.latency_sum, "
    + ", ".join(f"{column} = {column} + excluded.{column}" for column in BUCKET_COLUMNS)
)
"""Adds a HourlyDelta (HourlyDelta.params) to its row, creating the row on the first result of the hour."""


def estimate_percentiles(
    buckets: Sequence[int], latency_min: float, latency_max: float, percentiles: Iterable[float]
) -> dict[float, float | None]:
    """Percentiles (0-100) from histogram counts, interpolating linearly inside the bucket that holds the
    rank (as Prometheus' histogram_quantile does), with the bucket edges narrowed to the observed min and
    max. The error is at most the width of that bucket. None for every percentile when there is no data."""
    total = sum(buckets)
    estimates: dict[float, float | None] = {}
    for percentile in percentiles:
        if total == 0:
            estimates[percentile] = None
            continue
        if not 0 <= percentile <= 100:
            raise ValueError(f"a percentile must be between 0 and 100, got {percentile!r}")
        rank = percentile / 100 * total
        cumulative = 0
        for index, count in enumerate(buckets):
            if count and cumulative + count >= rank:
                lower = max(BUCKET_BOUNDS[index - 1] if index else 0.0, latency_min)
                upper = min(BUCKET_BOUNDS[index], latency_max)
                fraction = (rank - cumulative) / count
                estimates[percentile] = min(max(lower + (upper - lower) * fraction, latency_min), latency_max)
                break
            cumulative += count
        else:  # only reachable through float rounding of rank; the answer is the maximum
            estimates[percentile] = latency_max
    return estimates
