"""Hourly rollups, uptime and latency percentiles, checked against straightforward computations on raw results."""

from __future__ import annotations

import asyncio
import math
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from prober.results import Result
from prober.store import BUCKET_BOUNDS, Store
from prober.store.rollups import BUCKET_COLUMNS, estimate_percentiles, latency_of

NOW = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)


def make_result(
    check: str = "api", at: datetime = NOW, status: str = "up", latency: float | None = 0.05, **changes: Any
) -> Result:
    fields: dict[str, Any] = {
        "check": check,
        "type": "http",
        "location": "default",
        "started_at": at,
        "duration_ms": 1000.0,
        "status": status,
        "metrics": {"latency": latency} if latency is not None else {},
    }
    fields.update(changes)
    return Result(**fields)


def bucket_of(latency: float) -> int:
    """The obvious way: the first bucket whose upper bound is at least the latency."""
    return next(index for index, bound in enumerate(BUCKET_BOUNDS) if latency <= bound)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "prober.db") as opened:
        yield opened


async def test_rollups_match_a_straightforward_computation_from_raw_results(store: Store) -> None:
    rng = random.Random(42)
    results = []
    for _ in range(600):
        with_metric = rng.random() < 0.8
        results.append(
            make_result(
                check=rng.choice(["api", "web", "hls"]),
                location=rng.choice(["eu-west", "us-east"]),
                at=NOW - timedelta(seconds=rng.uniform(0, 5 * 3600)),
                status=rng.choices(["up", "degraded", "down"], weights=[8, 1, 1])[0],
                latency=rng.lognormvariate(-2.5, 1.2) if with_metric else None,
                duration_ms=rng.uniform(1, 12_000),
            )
        )
    # some as single concurrent writes, the rest as agent batches, with duplicates thrown in
    await asyncio.gather(*(store.write(result) for result in results[:200]))
    for start in range(200, 600, 100):
        await store.write_many(results[start : start + 100] + results[start - 50 : start])

    expected: dict[tuple[str, str, datetime], dict[str, Any]] = defaultdict(
        lambda: {"count": 0, "down": 0, "degraded": 0, "latencies": [], "histogram": [0] * len(BUCKET_BOUNDS)}
    )
    for result in results:
        hour = result.started_at.replace(minute=0, second=0, microsecond=0)
        row = expected[(result.check, result.location, hour)]
        latency = result.metrics["latency"] if "latency" in result.metrics else result.duration_ms / 1000
        row["count"] += 1
        row["down"] += result.status == "down"
        row["degraded"] += result.status == "degraded"
        row["latencies"].append(latency)
        row["histogram"][bucket_of(latency)] += 1

    actual = [rollup for check in ("api", "web", "hls") for rollup in store.rollups(check, NOW - timedelta(hours=6))]
    assert len(actual) == len(expected)
    for rollup in actual:
        row = expected[(rollup["check"], rollup["location"], rollup["hour"])]
        assert (rollup["count"], rollup["down"], rollup["degraded"]) == (row["count"], row["down"], row["degraded"])
        assert rollup["latency_min"] == pytest.approx(min(row["latencies"]))
        assert rollup["latency_max"] == pytest.approx(max(row["latencies"]))
        assert rollup["latency_avg"] == pytest.approx(sum(row["latencies"]) / len(row["latencies"]))
        assert rollup["histogram"] == row["histogram"]


async def test_uptime_is_the_share_of_results_not_down_in_the_whole_hours_of_the_window(store: Store) -> None:
    await store.write_many(
        [
            make_result(at=NOW - timedelta(hours=30), status="down"),  # outside a 24h window
            make_result(at=NOW - timedelta(hours=24, minutes=20), status="down"),  # 08:10 yesterday: same hour as
            make_result(at=NOW - timedelta(hours=3), status="up"),  # the window's start (08:30), so inside
            make_result(at=NOW - timedelta(hours=2), status="degraded"),  # degraded is not down
            make_result(at=NOW - timedelta(minutes=20), status="down"),
            make_result(at=NOW - timedelta(minutes=10), status="up"),
            make_result(check="web", at=NOW - timedelta(minutes=10), status="up"),
            make_result(location="eu-west", at=NOW - timedelta(minutes=5), status="up"),
        ]
    )
    assert store.uptime("api", 86400, now=NOW) == pytest.approx(100 * 4 / 6)
    assert store.uptime("api", 3600, now=NOW) == pytest.approx(100 * 2 / 3)
    assert store.uptime("api", 3600, "eu-west", now=NOW) == 100.0
    assert store.uptime("api", 3 * 86400, now=NOW) == pytest.approx(100 * 4 / 7)
    assert store.uptime("api", 86400, now=NOW + timedelta(days=10)) is None
    assert store.uptime("nothing", 86400, now=NOW) is None
    assert store.uptimes(86400, now=NOW) == {"api": pytest.approx(100 * 4 / 6), "web": 100.0}


async def test_latency_percentiles_fall_in_the_same_bucket_as_the_true_percentiles(store: Store) -> None:
    rng = random.Random(7)
    latencies = [rng.lognormvariate(-2.0, 0.8) for _ in range(2000)]
    await store.write_many(
        [make_result(at=NOW - timedelta(seconds=i * 30), latency=value) for i, value in enumerate(latencies)]
    )
    estimates = store.latency_percentiles("api", 86400, (50, 95, 99), now=NOW)
    assert set(estimates) == {50, 95, 99}
    ordered = sorted(latencies)
    for percentile, estimate in estimates.items():
        true = ordered[math.ceil(percentile / 100 * len(ordered)) - 1]  # nearest rank
        index = bucket_of(true)
        lower = BUCKET_BOUNDS[index - 1] if index else 0.0
        assert estimate is not None
        assert lower <= estimate <= BUCKET_BOUNDS[index], (percentile, true, estimate)
        assert abs(estimate - true) / true < 0.25


async def test_percentiles_of_one_value_are_that_value_and_none_without_data(store: Store) -> None:
    assert store.latency_percentiles("api", 86400, now=NOW) == {50: None, 95: None}
    await store.write(make_result(latency=0.123))
    assert store.latency_percentiles("api", 86400, now=NOW) == {50: pytest.approx(0.123), 95: pytest.approx(0.123)}


def test_the_latency_of_a_result_is_its_latency_metric_else_its_whole_run() -> None:
    assert latency_of({"latency": 0.25}, 900.0) == 0.25
    assert latency_of({}, 900.0) == 0.9
    assert latency_of({"latency": None}, 900.0) == 0.9
    assert latency_of({"latency": True}, 900.0) == 0.9
    assert latency_of({"latency": float("nan")}, 900.0) == 0.9


def test_histogram_columns_are_named_by_their_upper_bounds() -> None:
    assert BUCKET_COLUMNS[0] == "le_1ms"
    assert "le_2_5ms" in BUCKET_COLUMNS and "le_1_25s" in BUCKET_COLUMNS
    assert BUCKET_COLUMNS[-1] == "le_inf"
    assert len(set(BUCKET_COLUMNS)) == len(BUCKET_BOUNDS)
    assert list(BUCKET_BOUNDS) == sorted(BUCKET_BOUNDS)


def test_estimates_interpolate_inside_a_bucket_and_stay_within_the_observed_range() -> None:
    buckets = [0] * len(BUCKET_BOUNDS)
    index = bucket_of(0.09)  # (0.08, 0.1]
    buckets[index] = 10
    estimates = estimate_percentiles(buckets, 0.08, 0.1, (0, 50, 100))
    assert estimates == {0: pytest.approx(0.08), 50: pytest.approx(0.09), 100: pytest.approx(0.1)}
    narrowed = estimate_percentiles(buckets, 0.085, 0.095, (0, 100))
    assert narrowed == {0: pytest.approx(0.085), 100: pytest.approx(0.095)}
    with pytest.raises(ValueError, match="between 0 and 100"):
        estimate_percentiles(buckets, 0.08, 0.1, (150,))


async def test_windows_from_daily_rollups_equal_the_hourly_sums(store: Store) -> None:
    """uptime_windows (daily rows for whole days, hourly ones for the edge days) gives exactly what summing
    the hourly rows gives, at several moments of the day (a window's first day partial, today partial, a
    late result in an old hour)."""
    windows = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0, "90d": 90 * 86400.0}
    rng = random.Random(7)
    results = []
    for index in range(95 * 24 * 2):
        at = NOW - timedelta(days=95) + timedelta(minutes=30 * index + rng.randrange(30))
        for check, location in (("api", "a"), ("api", "b"), ("web", "a")):
            if rng.random() < 0.9:
                status = "down" if rng.random() < 0.05 else "degraded" if rng.random() < 0.05 else "up"
                results.append(make_result(check, at, status, location=location, latency=rng.uniform(0.01, 0.5)))
    await store.write_many(results)
    await store.write(make_result("api", NOW - timedelta(days=40, hours=3), "down", location="a"))  # late
    for moment in (NOW, NOW.replace(hour=0, minute=5), NOW.replace(hour=23, minute=59), NOW + timedelta(days=2)):
        for check in ("api", "web", "none"):
            expected = {name: store.uptime(check, seconds, now=moment) for name, seconds in windows.items()}
            assert store.uptime_windows(check, windows, now=moment) == expected, (check, moment)
    assert any(value is not None for value in store.uptime_windows("api", windows, now=NOW).values())
