"""An agent's push cursor: which results of this database a hub has confirmed (table push_cursor).

Per hub and location, the rowid and id of the last result the hub confirmed and how many it confirmed in
all. Rowids of `results` grow in commit order (one writer, one transaction at a time) while `started_at`
does not, so "every result after the cursor's rowid" never skips a result that committed late. The id lets
the cursor find its place again if the rows were renumbered (VACUUM).

The cursor lives in the store's own database, written by the store's writer like everything else, so a
migration of `results` cannot silently break pushing (the agent keeps no SQL of its own).

This module builds the writer's operation; it never decides what to push (prober.agent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from prober.results import format_timestamp
from prober.store.writer import utc

__all__ = ["PendingIds", "PushCursor", "save_cursor_op"]


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
