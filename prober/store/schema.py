"""The database file: opening connections, the tables, and the migrations between schema versions.

The schema version lives in `PRAGMA user_version`. Each migration is a function appended to MIGRATIONS;
migration N (1-based) takes a database from version N-1 to N inside one transaction, so a crash in the
middle leaves the previous version intact. A migration, once released, is never edited: a change to the
schema is a new function at the end of the list. A database written by a newer prober (a higher
user_version than this code knows) is refused rather than guessed at.

This module never reads or writes rows; the writer and the queries do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from sqlite_utils import Database

from prober.store.rollups import BUCKET_COLUMNS

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "StoreError",
    "Synchronous",
    "migrate",
    "open_read_connection",
    "open_write_connection",
    "schema_version",
]

Synchronous = Literal["NORMAL", "FULL"]
"""`FULL` (default): a committed result survives a power cut. `NORMAL`: it survives a crash of the process
(kill -9) but the last commits may be lost if the machine loses power; commits are cheaper."""

BUSY_TIMEOUT_MS = 10_000
WAL_SIZE_LIMIT = 64 * 1024 * 1024


class StoreError(Exception):
    """The database could not be opened, migrated, read or written; the message says which file and why."""


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions; the writer opens its own with BEGIN.
    # check_same_thread=False: the write connection is used by the writer's one thread, the read
    # connection by whichever thread holds the reader's lock.
    connection = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return connection


def open_write_connection(path: Path, *, synchronous: Synchronous = "FULL", create: bool = True) -> Database:
    """Open (or create) the database file for writing: WAL, foreign keys off, the chosen durability."""
    if not create and not path.exists():
        raise StoreError(f"there is no database at {path}: start `prober run` first or pass the right --db")
    if path.parent and not path.parent.exists():
        raise StoreError(f"cannot create the database {path}: the directory {path.parent} does not exist")
    try:
        db = Database(_connect(path), execute_plugins=False)
        db.enable_wal()
        db.execute(f"PRAGMA synchronous = {synchronous}")
        # after a checkpoint, shrink a WAL that a burst (a big prune, an agent's backlog) made large
        db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        return db
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open the database {path}: {exc} (is it an SQLite file?)") from exc


def open_read_connection(path: Path) -> Database:
    """A second connection for reads only. In WAL mode it reads the last committed state without blocking
    the writer, and `query_only` makes any accidental write fail instead of taking the write lock."""
    try:
        db = Database(_connect(path), execute_plugins=False)
        db.execute("PRAGMA query_only = 1")
        return db
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open the database {path} for reading: {exc}") from exc


def schema_version(db: Database) -> int:
    row = db.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def _v1_initial(db: Database) -> None:
    """Results, current state, probe state, alert state, incidents, notifications, hourly rollups."""
    db.execute(
        """
        CREATE TABLE results (
            id TEXT PRIMARY KEY,
            "check" TEXT NOT NULL,
            location TEXT NOT NULL,
            type TEXT NOT NULL,
            started_at TEXT NOT NULL,
            status TEXT NOT NULL,
            duration_ms REAL NOT NULL,
            error TEXT,
            metrics TEXT NOT NULL,
            assertions TEXT NOT NULL,
            artifacts TEXT,
            details TEXT
        )
        """
    )
    db.execute('CREATE INDEX results_check_started ON results ("check", started_at)')
    db.execute("CREATE INDEX results_started ON results (started_at)")
    db.execute(
        """
        CREATE TABLE current_state (
            "check" TEXT NOT NULL,
            location TEXT NOT NULL,
            type TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            duration_ms REAL NOT NULL,
            error TEXT,
            metrics TEXT NOT NULL,
            result_id TEXT NOT NULL,
            consecutive_down INTEGER NOT NULL,
            consecutive_ok INTEGER NOT NULL,
            last_change TEXT NOT NULL,
            PRIMARY KEY ("check", location)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE probe_state (
            "check" TEXT NOT NULL,
            location TEXT NOT NULL,
            state TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY ("check", location)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE alert_state (
            "check" TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            "check" TEXT NOT NULL,
            locations TEXT NOT NULL,
            error TEXT,
            started_at TEXT NOT NULL,
            resolved_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX incidents_started ON incidents (started_at)")
    db.execute('CREATE INDEX incidents_check_started ON incidents ("check", started_at)')
    db.execute("CREATE INDEX incidents_open ON incidents (started_at) WHERE resolved_at IS NULL")
    db.execute(
        """
        CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            incident_id INTEGER,
            "check" TEXT,
            kind TEXT NOT NULL,
            url TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            ok INTEGER NOT NULL,
            outcome TEXT,
            error TEXT,
            at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX notifications_at ON notifications (at)")
    db.execute("CREATE INDEX notifications_incident ON notifications (incident_id)")
    buckets = ",\n".join(f"            {column} INTEGER NOT NULL DEFAULT 0" for column in BUCKET_COLUMNS)
    db.execute(
        f"""
        CREATE TABLE rollups_hourly (
            "check" TEXT NOT NULL,
            location TEXT NOT NULL,
            hour TEXT NOT NULL,
            count INTEGER NOT NULL,
            down INTEGER NOT NULL,
            degraded INTEGER NOT NULL,
            latency_min REAL NOT NULL,
            latency_max REAL NOT NULL,
            latency_sum REAL NOT NULL,
{buckets},
            PRIMARY KEY ("check", hour, location)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX rollups_hour ON rollups_hourly (hour)")


def _v2_notification_outbox(db: Database) -> None:
    """The notification outbox (messages committed with their transition, deleted once delivered or given
    up), and the alert engine's incident key on incidents, so a transition finds its row in the same
    transaction."""
    db.execute("ALTER TABLE incidents ADD COLUMN key TEXT")
    db.execute("CREATE INDEX incidents_key ON incidents (key)")
    db.execute(
        """
        CREATE TABLE notification_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            url_key TEXT NOT NULL,
            url TEXT NOT NULL,
            kind TEXT NOT NULL,
            "check" TEXT,
            incident_key TEXT,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT
        )
        """
    )
    db.execute("CREATE INDEX notification_outbox_url ON notification_outbox (url_key, id)")


def _v3_push_cursor(db: Database) -> None:
    """An agent's push cursor (prober.store.push): per hub and location, the rowid and id of the last result
    the hub confirmed and how many it confirmed in all."""
    db.execute(
        """
        CREATE TABLE push_cursor (
            hub TEXT NOT NULL,
            location TEXT NOT NULL,
            last_rowid INTEGER NOT NULL,
            last_id TEXT,
            confirmed INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (hub, location)
        )
        """
    )


_RESULT_ID_TEXT = (
    "CASE WHEN typeof(r.uid) = 'blob' THEN lower(substr(hex(r.uid), 1, 8) || '-' || substr(hex(r.uid), 9, 4) || '-' "
    "|| substr(hex(r.uid), 13, 4) || '-' || substr(hex(r.uid), 17, 4) || '-' || substr(hex(r.uid), 21)) ELSE r.uid END"
)
_RESULT_METRICS_JSON = (
    "CASE WHEN json_type(s.name, '$.m') = 'null' OR NOT json_valid(r.metrics) THEN r.metrics ELSE "
    "(SELECT json_group_object(k.value, r.metrics -> ('$[' || k.key || ']')) FROM json_each(s.name, '$.m') AS k) END"
)
_RESULT_ASSERTIONS_JSON = (
    "CASE WHEN json_type(s.name, '$.a') = 'null' THEN coalesce(r.extra, '[]') ELSE "
    "(SELECT json_group_array(json_object('metric', json_extract(a.value, '$[0]'), "
    "'condition', json_extract(a.value, '$[1]'), 'actual', CASE "
    "WHEN json_extract(a.value, '$[3]') >= 0 THEN r.metrics -> ('$[' || json_extract(a.value, '$[3]') || ']') "
    "WHEN json_extract(a.value, '$[3]') = -1 THEN json(CASE WHEN (r.failed >> a.key) & 1 THEN 'false' ELSE 'true' END) "
    "ELSE r.extra -> ('$[' || a.key || ']') END, "
    "'ok', json(CASE WHEN (r.failed >> a.key) & 1 THEN 'false' ELSE 'true' END), "
    "'level', json_extract(a.value, '$[2]'))) FROM json_each(s.name, '$.a') AS a) END"
)
RESULTS_VIEW_SQL = f"""
    CREATE VIEW results AS SELECT
        r.rowid AS rowid,
        {_RESULT_ID_TEXT} AS id,
        c.name AS "check",
        l.name AS location,
        t.name AS type,
        strftime('%Y-%m-%dT%H:%M:%fZ', r.started / 1000.0, 'unixepoch') AS started_at,
        CASE r.status WHEN 0 THEN 'up' WHEN 1 THEN 'degraded' ELSE 'down' END AS status,
        r.duration / 1000.0 AS duration_ms,
        r.error AS error,
        {_RESULT_METRICS_JSON} AS metrics,
        {_RESULT_ASSERTIONS_JSON} AS assertions,
        r.artifacts AS artifacts,
        r.details AS details
    FROM result_rows AS r
    JOIN result_names AS c ON c.id = r.check_id
    JOIN result_names AS l ON l.id = r.location_id
    JOIN result_names AS t ON t.id = r.type_id
    JOIN result_names AS s ON s.id = r.shape_id
"""
"""The results as schema version 2 stored them, columns and JSON alike, for people and scripts reading
the file with sqlite3 (read only: the store itself reads result_rows through prober.store.codec)."""


def _v4_compact_results(db: Database) -> None:
    """Raw results in the compact encoding of prober.store.codec (about 510 bytes a result down to about
    170): names and metric keys in a dictionary, times and durations as integers, ids as 16 bytes, no
    index on started_at alone (retention prunes check by check on (check_id, started)). Every row of
    version 2 is re-encoded, keeping its rowid (an agent's push cursor points at rowids); `results` stays
    as a view with the old columns."""
    from prober.store.codec import encode_row_values  # the codec imports nothing from this module

    db.execute(
        """
        CREATE TABLE result_names (
            id INTEGER PRIMARY KEY,
            kind INTEGER NOT NULL,
            name TEXT NOT NULL,
            UNIQUE (kind, name)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE result_rows (
            uid BLOB NOT NULL,
            check_id INTEGER NOT NULL,
            started INTEGER NOT NULL,
            location_id INTEGER NOT NULL,
            type_id INTEGER NOT NULL,
            status INTEGER NOT NULL,
            duration INTEGER NOT NULL,
            shape_id INTEGER NOT NULL,
            metrics TEXT NOT NULL,
            failed INTEGER NOT NULL,
            extra TEXT,
            error TEXT,
            artifacts TEXT,
            details TEXT
        )
        """
    )
    names = _MigrationNames(db)
    cursor = db.conn.execute(
        'SELECT rowid, id, "check", location, type, started_at, status, duration_ms, error, metrics, assertions, '
        "artifacts, details FROM results ORDER BY rowid"
    )
    insert = (
        "INSERT INTO result_rows (rowid, uid, check_id, started, location_id, type_id, status, duration, shape_id, "
        "metrics, failed, extra, error, artifacts, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    while True:
        rows = cursor.fetchmany(5000)
        if not rows:
            break
        db.conn.executemany(insert, [encode_row_values(row, names.resolve) for row in rows])
    db.execute("DROP TABLE results")
    db.execute("CREATE UNIQUE INDEX result_rows_uid ON result_rows (uid)")
    db.execute("CREATE INDEX result_rows_check_started ON result_rows (check_id, started)")
    db.execute(RESULTS_VIEW_SQL)


class _MigrationNames:
    """result_names ids while migrating (the whole migration is one transaction: nothing to roll back)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._ids: dict[tuple[int, str], int] = {}

    def resolve(self, kind: int, name: str) -> int:
        key = (kind, name)
        found = self._ids.get(key)
        if found is None:
            cursor = self._db.conn.execute("INSERT INTO result_names (kind, name) VALUES (?, ?)", key)
            found = self._ids[key] = int(cursor.lastrowid or 0)
        return found


ROLLUPS_DAILY_INSERT_TRIGGER = """
    CREATE TRIGGER rollups_daily_add AFTER INSERT ON rollups_hourly
    BEGIN
        INSERT INTO rollups_daily (day, "check", location, count, down, degraded)
        VALUES (substr(NEW.hour, 1, 10), NEW."check", NEW.location, NEW.count, NEW.down, NEW.degraded)
        ON CONFLICT (day, "check", location) DO UPDATE SET count = count + excluded.count,
            down = down + excluded.down, degraded = degraded + excluded.degraded;
    END
"""
ROLLUPS_DAILY_UPDATE_TRIGGER = """
    CREATE TRIGGER rollups_daily_change AFTER UPDATE OF count, down, degraded ON rollups_hourly
    BEGIN
        INSERT INTO rollups_daily (day, "check", location, count, down, degraded)
        VALUES (substr(NEW.hour, 1, 10), NEW."check", NEW.location, NEW.count - OLD.count, NEW.down - OLD.down,
                NEW.degraded - OLD.degraded)
        ON CONFLICT (day, "check", location) DO UPDATE SET count = count + excluded.count,
            down = down + excluded.down, degraded = degraded + excluded.degraded;
    END
"""
"""The daily rollups follow the hourly ones in the same statement, whoever writes them (the writer's upsert
of a batch, a migration): a day is always the sum of its hours, and deleting old hours (retention) leaves
the days alone."""


def _v5_daily_rollups_and_counters(db: Database) -> None:
    """Daily rollups (count, down, degraded per check, location and UTC day), so uptime over 7 to 90 days
    reads a row per day instead of 24: filled from the hourly rows, then kept by triggers on them. Current
    states keep their metrics as result_rows does (a values array and `shape_id`; NULL for a row written
    before: a JSON object). The failed-notification counters that /metrics exports, kept by a trigger on
    every insert into notifications, so a scrape reads one row per check and outcome instead of every
    notification ever recorded."""
    db.execute(
        """
        CREATE TABLE rollups_daily (
            day TEXT NOT NULL,
            "check" TEXT NOT NULL,
            location TEXT NOT NULL,
            count INTEGER NOT NULL,
            down INTEGER NOT NULL,
            degraded INTEGER NOT NULL,
            PRIMARY KEY (day, "check", location)
        ) WITHOUT ROWID
        """
    )
    db.execute('CREATE INDEX rollups_daily_check ON rollups_daily ("check", day)')
    db.execute(ROLLUPS_DAILY_INSERT_TRIGGER)
    db.execute(ROLLUPS_DAILY_UPDATE_TRIGGER)
    db.execute(
        'INSERT INTO rollups_daily (day, "check", location, count, down, degraded) '
        'SELECT substr(hour, 1, 10), "check", location, sum(count), sum(down), sum(degraded) FROM rollups_hourly '
        'GROUP BY substr(hour, 1, 10), "check", location'
    )
    db.execute("ALTER TABLE current_state ADD COLUMN shape_id INTEGER")
    db.execute(
        """
        CREATE TABLE notification_failures (
            "check" TEXT NOT NULL,
            outcome TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY ("check", outcome)
        ) WITHOUT ROWID
        """
    )
    outcomes = "('failed', 'abandoned', 'dropped')"
    db.execute(
        f'INSERT INTO notification_failures ("check", outcome, count) SELECT coalesce("check", \'\'), outcome, '
        f"count(*) FROM notifications WHERE outcome IN {outcomes} GROUP BY coalesce(\"check\", ''), outcome"
    )
    db.execute(
        f"""
        CREATE TRIGGER notification_failures_count AFTER INSERT ON notifications
        WHEN NEW.outcome IN {outcomes}
        BEGIN
            INSERT INTO notification_failures ("check", outcome, count)
            VALUES (coalesce(NEW."check", ''), NEW.outcome, 1)
            ON CONFLICT ("check", outcome) DO UPDATE SET count = count + 1;
        END
        """
    )


def _v6_heartbeat_pings(db: Database) -> None:
    """Pings of heartbeat checks (`/ping/<token>`), so a restart forgets no ping (prober.store.pings)."""
    db.execute(
        """
        CREATE TABLE pings (
            id TEXT PRIMARY KEY,
            "check" TEXT NOT NULL,
            kind TEXT NOT NULL,
            exit_code INTEGER,
            received_at TEXT NOT NULL,
            body TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute('CREATE INDEX pings_check_time ON pings ("check", received_at)')


MIGRATIONS: list[Callable[[Database], None]] = [
    _v1_initial,
    _v2_notification_outbox,
    _v3_push_cursor,
    _v4_compact_results,
    _v5_daily_rollups_and_counters,
    _v6_heartbeat_pings,
]
"""Append only. MIGRATIONS[i] takes the schema from version i to version i + 1."""

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: Database, path: Path) -> int:
    """Apply every pending migration, each in its own transaction; return the resulting version.

    `BEGIN IMMEDIATE` takes the write lock before reading the version, so two processes opening a fresh
    file at once do not both try to create the tables.
    """
    while True:
        version = 0
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot lock the database {path} to migrate it: {exc}") from exc
        try:
            version = schema_version(db)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the database {path} has schema version {version}, written by a newer prober; this prober "
                    f"knows versions up to {SCHEMA_VERSION}: upgrade prober or point --db at another file"
                )
            if version == SCHEMA_VERSION:
                db.execute("COMMIT")
                return version
            MIGRATIONS[version](db)
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except BaseException as exc:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(
                    f"migrating the database {path} to schema version {version + 1} failed: {exc}; "
                    "it was left at the previous version"
                ) from exc
            raise
