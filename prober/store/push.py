"""An agent's push cursor: which results of this database a hub has confirmed (table push_cursor).

Per hub and location, the rowid and id of the last result the hub confirmed and how many it confirmed in
all. Rowids of `results` grow in commit order (one writer, one transaction at a time) while `started_at`
does not, so "every result after the cursor's rowid" never skips a result that committed late. The id lets
the cursor find its place again if the rows were renumbered (VACUUM).

The cursor lives in the store's own database, written by the store's writer like everything else, so a
migration of `results` cannot silently break pushing (the agent keeps no SQL of its own). Older probers kept
it in a sidecar SQLite file `<db>.outbox`; `read_sidecar` reads that file once so an upgrade resends nothing.

This module builds writer operations and reads the old file; it never decides what to push (prober.agent).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlite_utils import Database

from prober.results import format_timestamp
from prober.store.schema import StoreError
from prober.store.writer import utc

__all__ = ["SIDECAR_SUFFIX", "PendingIds", "PushCursor", "read_sidecar", "save_cursor_op"]

SIDECAR_SUFFIX = ".outbox"
"""The old sidecar file beside the database, `<db>.outbox` (prober before schema version 3)."""


@dataclass(frozen=True, slots=True)
class PushCursor:
    """How far one hub has confirmed this database's results of one location."""

    rowid: int
    """The rowid of the last result the cursor passed (0: nothing yet)."""
    result_id: str | None
    """That result's id, to find its new rowid after a VACUUM."""
    confirmed: int = 0
    """Results the hub confirmed over the life of this cursor."""


@dataclass(frozen=True, slots=True)
class PendingIds:
    """Ids of one location's results after a rowid, oldest commit first, and where a cursor goes past them."""

    ids: list[str]
    end_rowid: int
    end_id: str | None


@dataclass(frozen=True, slots=True)
class SidecarRow:
    hub: str
    location: str
    cursor: PushCursor
    updated_at: str


def save_cursor_op(
    hub: str, location: str, cursor: PushCursor, confirmed: int, now: datetime
) -> Callable[[Database], None]:
    """Set the cursor of (hub, location) to `cursor` and add `confirmed` to its running count."""
    params = (hub, location, cursor.rowid, cursor.result_id, confirmed, format_timestamp(utc(now)))

    def op(db: Database) -> None:
        db.execute(
            "INSERT INTO push_cursor (hub, location, last_rowid, last_id, confirmed, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hub, location) DO UPDATE SET last_rowid = excluded.last_rowid, "
            "last_id = excluded.last_id, confirmed = push_cursor.confirmed + excluded.confirmed, "
            "updated_at = excluded.updated_at",
            params,
        )

    return op


def import_op(rows: Sequence[SidecarRow]) -> Callable[[Database], int]:
    """Copy the sidecar's cursors into push_cursor, keeping any cursor the database already holds."""

    def op(db: Database) -> int:
        count = 0
        for row in rows:
            count += db.execute(
                "INSERT INTO push_cursor (hub, location, last_rowid, last_id, confirmed, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hub, location) DO NOTHING",
                (row.hub, row.location, row.cursor.rowid, row.cursor.result_id, row.cursor.confirmed, row.updated_at),
            ).rowcount
        return count

    return op


def read_sidecar(path: Path) -> list[SidecarRow]:
    """Every cursor in an old `<db>.outbox` file (read-only). StoreError if it is not such a file."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the old push outbox {path}: {exc}") from exc
    try:
        rows = connection.execute(
            "SELECT hub, location, last_rowid, last_id, confirmed, updated_at FROM cursor"
        ).fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the old push outbox {path}: {exc} (delete it to push everything again)") from exc
    finally:
        connection.close()
    return [
        SidecarRow(str(hub), str(location), PushCursor(int(rowid), last_id, int(confirmed)), str(updated))
        for hub, location, rowid, last_id, confirmed, updated in rows
    ]
