"""Reads for one check's page (`GET /api/v1/checks/NAME`): hourly latency and uptime, daily uptime, recent
raw points, recent failures, the newest screenshot. Every query is bounded by the check and a time range
on an index (rollups_hourly's primary key, rollups_daily_check, result_rows_check_started), so a page costs
a few milliseconds however many checks and how much history the database holds.

One convention for every read of the store: a method of the object the caller already holds. `CheckReader`
adds these page reads to `Reader` (prober.store.queries), and `ReadOnlyStore`/`Store` inherit both, so
`store.hourly_rows(...)` reads like `store.incidents(...)`. Why methods rather than free functions taking a
reader: a caller needs one import and one type (`ReadOnlyStore`, which has every read and no write), and the
reader's connection and lock stay private to the reader's classes instead of being reached into from outside.
They live in their own module only to keep queries.py a readable size.

Only reads, through the Reader's read-only connection (and its lock). Times come back as aware UTC
datetimes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from prober.store.codec import STATUS_NAMES, decode_duration, decode_id, decode_started, encode_started
from prober.store.queries import Reader, parse_timestamp
from prober.store.rollups import BUCKET_COLUMNS, hour_key
from prober.store.writer import utc

__all__ = ["CheckReader", "FailedResult", "HourRow", "RawPoint"]


@dataclass(frozen=True, slots=True)
class HourRow:
    """One UTC hour of one check, summed over its locations."""

    hour: str
    """The hour's start as stored: ISO 8601 UTC text with milliseconds and a Z."""
    count: int
    down: int
    degraded: int
    latency_min: float
    latency_max: float
    latency_sum: float
    buckets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RawPoint:
    started_at: str
    """As stored: ISO 8601 UTC text with milliseconds and a Z."""
    location: str
    status: str
    latency: float
    """The `latency` metric when numeric, else the run's duration (as the rollups count it)."""


@dataclass(frozen=True, slots=True)
class FailedResult:
    id: str
    started_at: datetime
    location: str
    duration_ms: float
    error: str | None


def _merged(found: list[tuple[Any, ...]]) -> list[HourRow]:
    merged: list[list[Any]] = []
    for row in found:
        last = merged[-1] if merged else None
        if last is None or last[0] != row[0]:
            merged.append(list(row))
            continue
        last[1] += row[1]
        last[2] += row[2]
        last[3] += row[3]
        last[4] = min(last[4], row[4])
        last[5] = max(last[5], row[5])
        last[6] += row[6]
        last[7:] = [a + b for a, b in zip(last[7:], row[7:], strict=True)]
    return [
        HourRow(
            hour=row[0],
            count=row[1],
            down=row[2],
            degraded=row[3],
            latency_min=row[4],
            latency_max=row[5],
            latency_sum=row[6],
            buckets=tuple(row[7:]),
        )
        for row in merged
    ]


def _latency(value: Any, duration_ms: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return max(0.0, duration_ms / 1000)


class CheckReader(Reader):
    """The reads of one check's page, on the reader's connection (see the module docstring)."""

    def _tuples(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Rows as plain tuples (cheaper than dicts for hundreds of rows)."""
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    def hourly_rows(
        self, check: str, since: datetime, *, buckets_for: Callable[[str, int, float], bool] | None = None
    ) -> list[HourRow]:
        """Every hour of the check with results, from the hour containing `since`, oldest first, summed over
        locations (in Python: cheaper than GROUP BY over 60 columns when most hours have one row).

        With `buckets_for(hour, count, latency_sum)`, the 37 histogram columns are read only for the hours it
        says need them (a caller that keeps past hours' percentiles wants the current hour's alone); the
        other rows come with empty `buckets`."""
        fixed = "hour, count, down, degraded, latency_min, latency_max, latency_sum"
        where = 'FROM rollups_hourly WHERE "check" = ? AND hour >= ? ORDER BY hour'
        start = hour_key(since)
        if buckets_for is None:
            return _merged(self._tuples(f"SELECT {fixed}, {', '.join(BUCKET_COLUMNS)} {where}", [check, start]))
        rows = _merged(self._tuples(f"SELECT {fixed} {where}", [check, start]))
        wanted = [row.hour for row in rows if buckets_for(row.hour, row.count, row.latency_sum)]
        if not wanted:
            return rows
        if len(wanted) > 50:
            sql, params = f"SELECT {fixed}, {', '.join(BUCKET_COLUMNS)} {where}", [check, start]
        else:
            marks = ", ".join("?" * len(wanted))
            sql = (
                f'SELECT {fixed}, {", ".join(BUCKET_COLUMNS)} FROM rollups_hourly WHERE "check" = ? AND hour IN '
                f"({marks}) ORDER BY hour"
            )
            params = [check, *wanted]
        full = {row.hour: row for row in _merged(self._tuples(sql, params))}
        # a row read twice may have moved on between the reads: the newer one, buckets and all, wins
        return [full.get(row.hour, row) for row in rows]

    def daily_uptime(self, check: str, first_day: date) -> dict[date, float]:
        """Percent of results not down per UTC day with results, from `first_day` on (the daily rollups)."""
        sql = 'SELECT day, sum(count), sum(down) FROM rollups_daily WHERE "check" = ? AND day >= ? GROUP BY day'
        rows = self._tuples(sql, [check, first_day.isoformat()])
        return {date.fromisoformat(day): 100.0 * (count - down) / count for day, count, down in rows if count}

    def location_uptime(self, check: str, since: datetime) -> dict[str, tuple[int, int]]:
        """(results, down results) per location over the whole hours from the one containing `since`."""
        sql = (
            'SELECT location, sum(count), sum(down) FROM rollups_hourly WHERE "check" = ? AND hour >= ? '
            "GROUP BY location"
        )
        return {location: (count, down) for location, count, down in self._tuples(sql, [check, hour_key(since)])}

    def raw_points(self, check: str, since: datetime, limit: int) -> list[RawPoint]:
        """The newest `limit` results of the check since `since` (as latency points), oldest first. The
        `latency` metric's place in the metrics array depends on the row's shape: the few shapes of the
        range are looked up first, so SQLite extracts the one value per row."""
        check_id = self.check_id(check)
        if check_id is None:
            return []
        start = encode_started(utc(since))
        shapes = self._tuples(
            "SELECT DISTINCT shape_id FROM result_rows WHERE check_id = ? AND started >= ?", [check_id, start]
        )
        cases = []
        for (shape_id,) in shapes:
            keys = self.shape_of(shape_id).keys
            if keys is not None and "latency" in keys:
                cases.append(f"WHEN {int(shape_id)} THEN json_extract(metrics, '$[{keys.index('latency')}]')")
        latency = f"CASE shape_id {' '.join(cases)} END" if cases else "NULL"
        sql = (
            "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', started / 1000.0, 'unixepoch'), location_id, status, duration, "
            f"{latency} FROM result_rows WHERE check_id = ? AND started >= ? ORDER BY started DESC LIMIT ?"
        )
        rows = self._tuples(sql, [check_id, start, max(0, limit)])
        locations: dict[int, str] = {}
        points: list[RawPoint] = []
        for started, location_id, status, duration, value in reversed(rows):
            location = locations.get(location_id)
            if location is None:
                location = locations[location_id] = self.name_of(location_id)
            points.append(RawPoint(started, location, STATUS_NAMES[status], _latency(value, decode_duration(duration))))
        return points

    def failed_results(self, check: str, since: datetime, limit: int) -> list[FailedResult]:
        """The newest `limit` down results since `since`, newest first. The hourly rollups say which hours had
        any, so only those hours of raw results are read, never a check's whole history."""
        check_id = self.check_id(check)
        if check_id is None:
            return []
        hours = self._tuples(
            'SELECT hour FROM rollups_hourly WHERE "check" = ? AND hour >= ? GROUP BY hour HAVING sum(down) > 0 '
            "ORDER BY hour DESC",
            [check, hour_key(since)],
        )
        found: list[FailedResult] = []
        sql = (
            "SELECT uid, started, location_id, duration, error FROM result_rows WHERE check_id = ? AND started >= ? "
            "AND started < ? AND status = 2 ORDER BY started DESC, uid DESC LIMIT ?"
        )
        for (hour_text,) in hours:
            start = encode_started(parse_timestamp(hour_text))
            rows = self._tuples(sql, [check_id, start, start + 3_600_000, limit - len(found)])
            found.extend(
                FailedResult(
                    decode_id(row[0]), decode_started(row[1]), self.name_of(row[2]), decode_duration(row[3]), row[4]
                )
                for row in rows
            )
            if len(found) >= limit:
                break
        return found

    def newest_artifacts(self, check: str, since: datetime) -> tuple[datetime, list[str]] | None:
        """The start time and artifact paths of the check's newest result with artifacts since `since`."""
        check_id = self.check_id(check)
        if check_id is None:
            return None
        rows = self._tuples(
            "SELECT started, artifacts FROM result_rows WHERE check_id = ? AND started >= ? AND artifacts IS NOT NULL "
            "ORDER BY started DESC LIMIT 1",
            [check_id, encode_started(utc(since))],
        )
        if not rows:
            return None
        paths = json.loads(rows[0][1])
        return decode_started(rows[0][0]), [str(path) for path in paths] if isinstance(paths, list) else []

    def artifact_listed(self, check: str, file: str, since: datetime) -> bool:
        """True when a result of the check since `since` lists an artifact whose file name is `file`."""
        check_id = self.check_id(check)
        if check_id is None:
            return False
        pattern = "%" + file.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + '"%'
        rows = self._tuples(
            "SELECT artifacts FROM result_rows WHERE check_id = ? AND started >= ? AND artifacts LIKE ? ESCAPE "
            "'\\' ORDER BY started DESC LIMIT 20",
            [check_id, encode_started(utc(since)), pattern],
        )
        for (text,) in rows:
            paths = json.loads(text)
            if isinstance(paths, list) and any(
                str(path).replace("\\", "/").rsplit("/", 1)[-1] == file for path in paths
            ):
                return True
        return False
