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
    the hub confirmed and how many it confirmed in all. It used to live in a sidecar file `<db>.outbox`; the
    store imports that file once (Store.import_push_sidecar)."""
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


MIGRATIONS: list[Callable[[Database], None]] = [_v1_initial, _v2_notification_outbox, _v3_push_cursor]
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
