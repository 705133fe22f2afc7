"""Reads: current state, raw results, uptime and latency from rollups, incidents, notifications, saved state.

Reads use their own connection. In WAL mode it sees the last committed transaction and never blocks the
writer (nor waits for it). The connection is `query_only`: this module cannot write, by construction.
Every method is synchronous and quick (indexed lookups, bounded by `limit`); a lock makes them safe to call
from any thread, so an async caller with a heavy page to build can run them in `asyncio.to_thread`.

Times come back as timezone-aware UTC datetimes, JSON columns as Python values.

Every read is a method: of `Reader` here, or of its subclass `CheckReader` (check_queries.py, the check
page's reads), which the store inherits; a new query is a new method of one of them (why: check_queries.py).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypedDict

from sqlite_utils import Database

from prober.pings import Ping
from prober.results import Result, Status
from prober.store.codec import (
    CHECK,
    LOCATION,
    STATUS_NAMES,
    NameTable,
    Shape,
    decode_assertions,
    decode_duration,
    decode_id,
    decode_started,
    encode_id,
    encode_started,
)
from prober.store.pings import ping_from_row
from prober.store.push import PendingIds, PushCursor
from prober.store.rollups import BUCKET_COLUMNS, estimate_percentiles, window_start_key
from prober.store.writer import utc

__all__ = ["CurrentState", "Incident", "Notification", "Reader", "Rollup", "parse_timestamp", "result_rowid"]


class CurrentState(TypedDict):
    """The latest result of one check at one location, with run counters (table current_state)."""

    check: str
    location: str
    type: str
    status: Status
    started_at: datetime
    duration_ms: float
    error: str | None
    metrics: dict[str, Any]
    result_id: str
    consecutive_down: int
    """Down results in a row up to and including the latest (0 when the latest is not down)."""
    consecutive_ok: int
    """Up or degraded results in a row (0 when the latest is down)."""
    last_change: datetime
    """When the status (up, degraded, down) last became what it is now."""


class Incident(TypedDict):
    id: int
    check: str
    locations: list[str]
    error: str | None
    started_at: datetime
    resolved_at: datetime | None
    downtime_seconds: float | None
    """resolved_at - started_at; None while open."""


class Notification(TypedDict):
    id: int
    incident_id: int | None
    check: str | None
    """None for messages about no check (a `prober notify-test`)."""
    kind: str
    url: str
    """As recorded: redacted by the caller."""
    attempt: int
    ok: bool
    outcome: str | None
    error: str | None
    at: datetime


class Rollup(TypedDict):
    check: str
    location: str
    hour: datetime
    count: int
    down: int
    degraded: int
    latency_min: float
    latency_avg: float
    latency_max: float
    histogram: list[int]
    """Counts per bucket, in the order of rollups.BUCKET_BOUNDS (upper bounds in seconds)."""


def result_rowid(db: Database, result_id: str) -> int | None:
    """The rowid of a stored result by its id (an agent's push cursor follows rowids), or None."""
    row = db.execute("SELECT rowid FROM result_rows WHERE uid = ?", (encode_id(result_id),)).fetchone()
    return None if row is None else int(row[0])


def _state_metrics(shape: Shape | None, text: str) -> dict[str, Any]:
    """current_state.metrics: a JSON object (rows from before schema version 4), or the values of `shape`."""
    values = json.loads(text)
    if shape is None or shape.keys is None:
        return dict(values)
    return dict(zip(shape.keys, values, strict=True))


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _optional_timestamp(text: str | None) -> datetime | None:
    return parse_timestamp(text) if text is not None else None


_RESULT_COLUMNS = (
    "uid, check_id, started, location_id, type_id, status, duration, shape_id, metrics, failed, extra, error, "
    "artifacts, details"
)
_HISTOGRAM_SUMS = ", ".join(f"sum({column}) AS {column}" for column in BUCKET_COLUMNS)


def _incident(row: dict[str, Any]) -> Incident:
    started = parse_timestamp(row["started_at"])
    resolved = _optional_timestamp(row["resolved_at"])
    return Incident(
        id=row["id"],
        check=row["check"],
        locations=json.loads(row["locations"]),
        error=row["error"],
        started_at=started,
        resolved_at=resolved,
        downtime_seconds=(resolved - started).total_seconds() if resolved is not None else None,
    )


class Reader:
    """Read-only access to the store's file through its own connection."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._names = NameTable()

    def _close_reader(self) -> None:
        with self._lock:
            self._db.close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._db.query(sql, params))

    # --- current state and raw results -----------------------------------------------------------------

    def current(self, check: str | None = None) -> list[CurrentState]:
        where, params = ('WHERE "check" = ?', [check]) if check is not None else ("", [])
        rows = self._rows(f'SELECT * FROM current_state {where} ORDER BY "check", location', params)
        with self._lock:
            shapes = {
                shape_id: self._names.shape(self._db.conn, shape_id)
                for shape_id in {row["shape_id"] for row in rows}
                if shape_id is not None
            }
        return [
            CurrentState(
                check=row["check"],
                location=row["location"],
                type=row["type"],
                status=row["status"],
                started_at=parse_timestamp(row["started_at"]),
                duration_ms=row["duration_ms"],
                error=row["error"],
                metrics=_state_metrics(shapes.get(row["shape_id"]), row["metrics"]),
                result_id=row["result_id"],
                consecutive_down=row["consecutive_down"],
                consecutive_ok=row["consecutive_ok"],
                last_change=parse_timestamp(row["last_change"]),
            )
            for row in rows
        ]

    def current_markers(self) -> list[tuple[str, str, str]]:
        """(check, location, result id) of every current state, in `current()` order: what changed since a
        previous `current()` without decoding any metrics."""
        with self._lock:
            rows = self._db.conn.execute(
                'SELECT "check", location, result_id FROM current_state ORDER BY "check", location'
            )
            return [(str(check), str(location), str(result_id)) for check, location, result_id in rows]

    def checks(self) -> list[str]:
        return [row["check"] for row in self._rows('SELECT DISTINCT "check" FROM current_state ORDER BY "check"')]

    def results(
        self,
        check: str,
        since: datetime | None = None,
        limit: int = 1000,
        *,
        location: str | None = None,
        until: datetime | None = None,
    ) -> list[Result]:
        """Raw results of one check, newest first, started at or after `since` and before `until`."""
        with self._lock:
            connection = self._db.conn
            check_id = self._names.id_of(connection, CHECK, check)
            location_id = None if location is None else self._names.id_of(connection, LOCATION, location)
            if check_id is None or (location is not None and location_id is None):
                return []
            clauses, params = ["check_id = ?"], [check_id]
            if since is not None:
                clauses.append("started >= ?")
                params.append(encode_started(utc(since)))
            if until is not None:
                clauses.append("started < ?")
                params.append(encode_started(utc(until)))
            if location_id is not None:
                clauses.append("location_id = ?")
                params.append(location_id)
            sql = (
                f"SELECT {_RESULT_COLUMNS} FROM result_rows WHERE {' AND '.join(clauses)} "
                "ORDER BY started DESC, uid DESC LIMIT ?"
            )
            rows = connection.execute(sql, [*params, max(0, limit)]).fetchall()
            return [self._decode(connection, row) for row in rows]

    def result(self, result_id: str) -> Result | None:
        with self._lock:
            connection = self._db.conn
            row = connection.execute(
                f"SELECT {_RESULT_COLUMNS} FROM result_rows WHERE uid = ?", (encode_id(result_id),)
            ).fetchone()
            return self._decode(connection, row) if row is not None else None

    def _decode(self, connection: sqlite3.Connection, row: Sequence[Any]) -> Result:
        """A result_rows row (in _RESULT_COLUMNS order) as the Result that was stored (with the lock held)."""
        uid, check_id, started, location_id, type_id, status, duration, shape_id, metrics = row[:9]
        failed, extra, error, artifacts, details = row[9:]
        names = self._names
        shape = names.shape(connection, shape_id)
        values = json.loads(metrics)
        return Result(
            id=decode_id(uid),
            check=names.name(connection, check_id),
            location=names.name(connection, location_id),
            type=names.name(connection, type_id),
            started_at=decode_started(started),
            duration_ms=decode_duration(duration),
            status=STATUS_NAMES[status],
            error=error,
            metrics=dict(values) if shape.keys is None else dict(zip(shape.keys, values, strict=True)),
            assertions=decode_assertions(shape, values if shape.keys is not None else None, failed, extra),
            artifacts=json.loads(artifacts) if artifacts else [],
            details=json.loads(details) if details else {},
        )

    def check_id(self, check: str) -> int | None:
        """The result_rows id of a check's name, or None when no result of it was ever stored."""
        with self._lock:
            return self._names.id_of(self._db.conn, CHECK, check)

    def shape_of(self, shape_id: int) -> Shape:
        """The shape (metric names, assertion parts) of a result_names id of kind SHAPE."""
        with self._lock:
            return self._names.shape(self._db.conn, shape_id)

    def name_of(self, name_id: int) -> str:
        """The name (check, location, type) of a result_names id."""
        with self._lock:
            return self._names.name(self._db.conn, name_id)

    # --- an agent's push (prober.store.push) -----------------------------------------------------------

    def result_ids_after(self, rowid: int, location: str, limit: int) -> PendingIds:
        """Up to `limit` ids of `location`'s results committed after `rowid`, oldest commit first, read in one
        snapshot. When they are all there is, the end passes the other locations' rows too."""
        with self._lock:
            connection = self._db.conn
            connection.execute("BEGIN")  # one snapshot for the queries below
            try:
                top = connection.execute("SELECT max(rowid) FROM result_rows").fetchone()[0]
                if top is None or top <= rowid:
                    return PendingIds([], rowid, None)
                location_id = self._names.id_of(connection, LOCATION, location)
                rows = (
                    connection.execute(
                        "SELECT rowid, uid FROM result_rows WHERE rowid > ? AND rowid <= ? AND location_id = ? "
                        "ORDER BY rowid LIMIT ?",
                        (rowid, top, location_id, limit),
                    ).fetchall()
                    if location_id is not None
                    else []
                )
                if rows and len(rows) == limit:
                    return PendingIds([decode_id(row[1]) for row in rows], int(rows[-1][0]), decode_id(rows[-1][1]))
                end = connection.execute("SELECT uid FROM result_rows WHERE rowid = ?", (top,)).fetchone()
                return PendingIds([decode_id(row[1]) for row in rows], int(top), decode_id(end[0]) if end else None)
            finally:
                connection.execute("COMMIT")

    def result_rowid(self, result_id: str) -> int | None:
        """The rowid of a result (None if it is not stored): where a push cursor is after a VACUUM."""
        with self._lock:
            return result_rowid(self._db, result_id)

    def last_result_rowid(self) -> int:
        """The largest rowid of the raw results (0 when empty)."""
        with self._lock:
            return int(self._db.conn.execute("SELECT max(rowid) FROM result_rows").fetchone()[0] or 0)

    def count_results_after(self, rowid: int, location: str) -> int:
        """Results of `location` after `rowid` (counts rows: for log lines, not for every poll)."""
        with self._lock:
            connection = self._db.conn
            location_id = self._names.id_of(connection, LOCATION, location)
            if location_id is None:
                return 0
            sql = "SELECT count(*) FROM result_rows WHERE rowid > ? AND location_id = ?"
            return int(connection.execute(sql, (rowid, location_id)).fetchone()[0])

    def push_cursor(self, hub: str, location: str) -> PushCursor | None:
        rows = self._rows(
            "SELECT last_rowid, last_id, confirmed FROM push_cursor WHERE hub = ? AND location = ?", [hub, location]
        )
        if not rows:
            return None
        return PushCursor(int(rows[0]["last_rowid"]), rows[0]["last_id"], int(rows[0]["confirmed"]))

    # --- rollups ---------------------------------------------------------------------------------------

    def uptime(
        self, check: str, window_seconds: float, location: str | None = None, *, now: datetime | None = None
    ) -> float | None:
        """Percent of results that were not down over the window (whole hours), or None with no results."""
        clauses, params = self._window(window_seconds, now, check, location)
        rows = self._rows(f"SELECT sum(count) AS count, sum(down) AS down FROM rollups_hourly WHERE {clauses}", params)
        count, down = rows[0]["count"], rows[0]["down"]
        return 100.0 * (count - down) / count if count else None

    def uptimes(
        self, window_seconds: float, *, location: str | None = None, now: datetime | None = None
    ) -> dict[str, float]:
        """`uptime` of every check with results in the window, in one query (for the status feed)."""
        clauses, params = self._window(window_seconds, now, None, location)
        rows = self._rows(
            f'SELECT "check", sum(count) AS count, sum(down) AS down FROM rollups_hourly WHERE {clauses} '
            'GROUP BY "check"',
            params,
        )
        return {row["check"]: 100.0 * (row["count"] - row["down"]) / row["count"] for row in rows if row["count"]}

    def uptime_windows(
        self, check: str, windows: Mapping[str, float], *, now: datetime | None = None
    ) -> dict[str, float | None]:
        """`uptime(check, seconds)` for every named window at once, the same numbers read from the daily
        rollups for the whole days inside a window and the hourly ones only for its first and last day,
        so 90 days cost about 90 rows instead of 2,160."""
        end = utc(now) if now is not None else datetime.now(UTC)
        last_hour = window_start_key(end, 0)
        last_day = last_hour[:10]
        starts = {name: window_start_key(end, seconds) for name, seconds in windows.items()}
        if not starts:
            return {}
        edge_days = {start[:10] for start in starts.values()} | {last_day}
        first_day = min(edge_days)
        with self._lock:
            connection = self._db.conn
            days = dict(
                (day, (count, down))
                for day, count, down in connection.execute(
                    'SELECT day, sum(count), sum(down) FROM rollups_daily WHERE "check" = ? AND day > ? AND day < ? '
                    "GROUP BY day",
                    (check, first_day, last_day),
                )
            )
            params: list[str] = []
            for day in edge_days:
                params += [check, day, (date.fromisoformat(day) + timedelta(days=1)).isoformat(), last_hour]
            one_day = (
                'SELECT hour, sum(count), sum(down) FROM rollups_hourly WHERE "check" = ? AND hour >= ? AND hour < ? '
                "AND hour <= ? GROUP BY hour"
            )  # a range of the primary key per edge day, in one statement
            hours: dict[str, tuple[int, int]] = {
                hour: (count, down)
                for hour, count, down in connection.execute(
                    " UNION ALL ".join(f"SELECT * FROM ({one_day})" for _ in edge_days), params
                )
            }
        found: dict[str, float | None] = {}
        for name, start in starts.items():
            first = start[:10]
            count = down = 0
            for hour, (hour_count, hour_down) in hours.items():
                if hour >= start and (hour[:10] == first or hour[:10] == last_day):
                    count += hour_count
                    down += hour_down
            if first != last_day:
                for day, (day_count, day_down) in days.items():
                    if first < day:
                        count += day_count
                        down += day_down
            found[name] = 100.0 * (count - down) / count if count else None
        return found

    def daily_uptimes(self, first_day: date, last_day: date, check: str | None = None) -> dict[str, dict[date, float]]:
        """Percent of results not down per check and UTC day from `first_day` through `last_day` (days
        without results are absent), from the daily rollups: one query for every check."""
        clauses, params = ["day >= ?", "day <= ?"], [first_day.isoformat(), last_day.isoformat()]
        if check is not None:
            clauses.append('"check" = ?')
            params.append(check)
        sql = (
            f'SELECT "check", day, sum(count), sum(down) FROM rollups_daily WHERE {" AND ".join(clauses)} '
            'GROUP BY "check", day'
        )
        found: dict[str, dict[date, float]] = {}
        parse = date.fromisoformat
        with self._lock:
            for name, day, count, down in self._db.conn.execute(sql, params):
                if count:
                    found.setdefault(name, {})[parse(day)] = 100.0 * (count - down) / count
        return found

    def latency_percentiles(
        self,
        check: str,
        window_seconds: float,
        percentiles: Iterable[float] = (50, 95),
        location: str | None = None,
        *,
        now: datetime | None = None,
    ) -> dict[float, float | None]:
        """Latency percentiles in seconds over the window, estimated from the rollup histogram (each within
        the width of its bucket); None values when there are no results."""
        clauses, params = self._window(window_seconds, now, check, location)
        rows = self._rows(
            "SELECT min(latency_min) AS latency_min, max(latency_max) AS latency_max, "
            f"{_HISTOGRAM_SUMS} FROM rollups_hourly WHERE {clauses}",
            params,
        )
        row = rows[0]
        buckets = [int(row[column] or 0) for column in BUCKET_COLUMNS]
        return estimate_percentiles(buckets, row["latency_min"] or 0.0, row["latency_max"] or 0.0, percentiles)

    def rollups(self, check: str, since: datetime, location: str | None = None) -> list[Rollup]:
        """Hourly rows of one check from the hour containing `since`, oldest first (for uptime bars, charts)."""
        clauses, params = self._window(0, since, check, location)
        rows = self._rows(f"SELECT * FROM rollups_hourly WHERE {clauses} ORDER BY hour, location", params)
        return [
            Rollup(
                check=row["check"],
                location=row["location"],
                hour=parse_timestamp(row["hour"]),
                count=row["count"],
                down=row["down"],
                degraded=row["degraded"],
                latency_min=row["latency_min"],
                latency_avg=row["latency_sum"] / row["count"],
                latency_max=row["latency_max"],
                histogram=[row[column] for column in BUCKET_COLUMNS],
            )
            for row in rows
        ]

    @staticmethod
    def _window(
        window_seconds: float, now: datetime | None, check: str | None, location: str | None
    ) -> tuple[str, list[Any]]:
        end = utc(now) if now is not None else datetime.now(UTC)
        clauses, params = ["hour >= ?"], [window_start_key(end, window_seconds)]
        if window_seconds:  # a window ending now excludes nothing after now; `rollups` has no end
            clauses.append("hour <= ?")
            params.append(window_start_key(end, 0))
        if check is not None:
            clauses.append('"check" = ?')
            params.append(check)
        if location is not None:
            clauses.append("location = ?")
            params.append(location)
        return " AND ".join(clauses), params

    # --- state kept for probes and alerts --------------------------------------------------------------

    def load_probe_state(self, check: str, location: str) -> dict[str, Any] | None:
        rows = self._rows('SELECT state FROM probe_state WHERE "check" = ? AND location = ?', [check, location])
        return dict(json.loads(rows[0]["state"])) if rows else None

    def pings(self, check: str, limit: int = 50) -> list[Ping]:
        """A heartbeat check's most recent pings, newest first (prober.store.pings)."""
        rows = self._rows('SELECT * FROM pings WHERE "check" = ? ORDER BY received_at DESC LIMIT ?', [check, limit])
        return [ping_from_row(row) for row in rows]

    def load_alert_states(self) -> dict[str, dict[str, Any]]:
        return {row["check"]: json.loads(row["state"]) for row in self._rows('SELECT "check", state FROM alert_state')}

    # --- incidents and notifications -------------------------------------------------------------------

    def incidents(self, limit: int = 50, check: str | None = None, open_only: bool = False) -> list[Incident]:
        """Newest first."""
        clauses: list[str] = []
        params: list[Any] = []
        if check is not None:
            clauses.append('"check" = ?')
            params.append(check)
        if open_only:
            clauses.append("resolved_at IS NULL")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._rows(
            f"SELECT * FROM incidents {where} ORDER BY started_at DESC, id DESC LIMIT ?", [*params, limit]
        )
        return [_incident(row) for row in rows]

    def incident(self, incident_id: int) -> Incident | None:
        rows = self._rows("SELECT * FROM incidents WHERE id = ?", [incident_id])
        return _incident(rows[0]) if rows else None

    def failed_notification_counts(self) -> dict[tuple[str, str], int]:
        """(check, outcome) → notifications recorded as failed, abandoned or dropped since the database was
        made (counted by a trigger as they are inserted, so pruning old rows does not lower them; a message
        about no check counts under the check ""). Reads one row per check and outcome."""
        rows = self._rows('SELECT "check", outcome, count FROM notification_failures')
        return {(row["check"], row["outcome"]): int(row["count"]) for row in rows}

    def notifications(
        self, limit: int = 100, check: str | None = None, incident_id: int | None = None
    ) -> list[Notification]:
        """Newest first."""
        clauses: list[str] = []
        params: list[Any] = []
        if check is not None:
            clauses.append('"check" = ?')
            params.append(check)
        if incident_id is not None:
            clauses.append("incident_id = ?")
            params.append(incident_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._rows(f"SELECT * FROM notifications {where} ORDER BY at DESC, id DESC LIMIT ?", [*params, limit])
        return [
            Notification(
                id=row["id"],
                incident_id=row["incident_id"],
                check=row["check"],
                kind=row["kind"],
                url=row["url"],
                attempt=row["attempt"],
                ok=bool(row["ok"]),
                outcome=row["outcome"],
                error=row["error"],
                at=parse_timestamp(row["at"]),
            )
            for row in rows
        ]
