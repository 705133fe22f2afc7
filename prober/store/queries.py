"""Reads: current state, raw results, uptime and latency from rollups, incidents, notifications, saved state.

Reads use their own connection. In WAL mode it sees the last committed transaction and never blocks the
writer (nor waits for it). The connection is `query_only`: this module cannot write, by construction.
Every method is synchronous and quick (indexed lookups, bounded by `limit`); a lock makes them safe to call
from any thread, so an async caller with a heavy page to build can run them in `asyncio.to_thread`.

Times come back as timezone-aware UTC datetimes, JSON columns as Python values.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict

from sqlite_utils import Database

from prober.results import Assertion, Result, Status, format_timestamp
from prober.store.push import PendingIds, PushCursor
from prober.store.rollups import BUCKET_COLUMNS, estimate_percentiles, window_start_key
from prober.store.writer import utc

__all__ = ["CurrentState", "Incident", "Notification", "Reader", "Rollup", "parse_timestamp"]


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


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _optional_timestamp(text: str | None) -> datetime | None:
    return parse_timestamp(text) if text is not None else None


_RESULT_COLUMNS = (
    'id, "check", location, type, started_at, status, duration_ms, error, metrics, assertions, artifacts, details'
)
_HISTOGRAM_SUMS = ", ".join(f"sum({column}) AS {column}" for column in BUCKET_COLUMNS)


def _result(row: dict[str, Any]) -> Result:
    return Result(
        id=row["id"],
        check=row["check"],
        location=row["location"],
        type=row["type"],
        started_at=parse_timestamp(row["started_at"]),
        duration_ms=row["duration_ms"],
        status=row["status"],
        error=row["error"],
        metrics=json.loads(row["metrics"]),
        assertions=[Assertion(**item) for item in json.loads(row["assertions"])],
        artifacts=json.loads(row["artifacts"]) if row["artifacts"] else [],
        details=json.loads(row["details"]) if row["details"] else {},
    )


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
        return [
            CurrentState(
                check=row["check"],
                location=row["location"],
                type=row["type"],
                status=row["status"],
                started_at=parse_timestamp(row["started_at"]),
                duration_ms=row["duration_ms"],
                error=row["error"],
                metrics=json.loads(row["metrics"]),
                result_id=row["result_id"],
                consecutive_down=row["consecutive_down"],
                consecutive_ok=row["consecutive_ok"],
                last_change=parse_timestamp(row["last_change"]),
            )
            for row in rows
        ]

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
        clauses, params = ['"check" = ?'], [check]
        if since is not None:
            clauses.append("started_at >= ?")
            params.append(format_timestamp(utc(since)))
        if until is not None:
            clauses.append("started_at < ?")
            params.append(format_timestamp(utc(until)))
        if location is not None:
            clauses.append("location = ?")
            params.append(location)
        sql = (
            f"SELECT {_RESULT_COLUMNS} FROM results WHERE {' AND '.join(clauses)} "
            "ORDER BY started_at DESC, id DESC LIMIT ?"
        )
        return [_result(row) for row in self._rows(sql, [*params, max(0, limit)])]

    def result(self, result_id: str) -> Result | None:
        rows = self._rows(f"SELECT {_RESULT_COLUMNS} FROM results WHERE id = ?", [result_id])
        return _result(rows[0]) if rows else None

    # --- an agent's push (prober.store.push) -----------------------------------------------------------

    def result_ids_after(self, rowid: int, location: str, limit: int) -> PendingIds:
        """Up to `limit` ids of `location`'s results committed after `rowid`, oldest commit first, read in one
        snapshot. When they are all there is, the end passes the other locations' rows too."""
        with self._lock:
            db = self._db
            db.execute("BEGIN")  # one snapshot for the queries below
            try:
                top = db.execute("SELECT max(rowid) FROM results").fetchone()[0]
                if top is None or top <= rowid:
                    return PendingIds([], rowid, None)
                rows = db.execute(
                    "SELECT rowid, id FROM results WHERE rowid > ? AND rowid <= ? AND location = ? "
                    "ORDER BY rowid LIMIT ?",
                    (rowid, top, location, limit),
                ).fetchall()
                if len(rows) == limit:
                    return PendingIds([row[1] for row in rows], int(rows[-1][0]), rows[-1][1])
                end = db.execute("SELECT id FROM results WHERE rowid = ?", (top,)).fetchone()
                return PendingIds([row[1] for row in rows], int(top), end[0] if end else None)
            finally:
                db.execute("COMMIT")

    def result_rowid(self, result_id: str) -> int | None:
        """The rowid of a result (None if it is not stored): where a push cursor is after a VACUUM."""
        rows = self._rows("SELECT rowid FROM results WHERE id = ?", [result_id])
        return int(rows[0]["rowid"]) if rows else None

    def last_result_rowid(self) -> int:
        """The largest rowid of `results` (0 when empty)."""
        rows = self._rows("SELECT max(rowid) AS top FROM results")
        return int(rows[0]["top"] or 0)

    def count_results_after(self, rowid: int, location: str) -> int:
        """Results of `location` after `rowid` (counts rows: for log lines, not for every poll)."""
        rows = self._rows("SELECT count(*) AS n FROM results WHERE rowid > ? AND location = ?", [rowid, location])
        return int(rows[0]["n"])

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
