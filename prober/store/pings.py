"""Heartbeat pings in the database: the write operation (insert once by id, keep the newest per check) and the
read of a check's recent pings.

`pings` holds the last KEEP pings of each check, newest found by the ("check", received_at) index; a ping whose
id is already stored (a peer's copy arriving twice) changes nothing. The writer runs `write_op` in its own
transaction like every other write; this module never sends, schedules or judges anything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlite_utils import Database

from prober.pings import Ping
from prober.results import format_timestamp

__all__ = ["KEEP", "ping_from_row", "write_op"]

KEEP = 100
"""Pings kept per check (older ones are deleted as new ones arrive): enough for durations and a job's log."""

_INSERT = 'INSERT OR IGNORE INTO pings (id, "check", kind, exit_code, received_at, body) VALUES (?, ?, ?, ?, ?, ?)'
_TRIM = (
    'DELETE FROM pings WHERE "check" = ?1 AND received_at < (SELECT received_at FROM pings WHERE "check" = ?1 '
    f"ORDER BY received_at DESC LIMIT 1 OFFSET {KEEP - 1})"
)


def write_op(ping: Ping) -> Callable[[Database], bool]:
    """The writer operation storing one ping; it returns False when a ping with that id is already stored."""
    row = (ping.id, ping.check, ping.kind, ping.exit_code, format_timestamp(ping.received_at), ping.body)

    def op(db: Database) -> bool:
        if db.execute(_INSERT, row).rowcount == 0:
            return False
        db.execute(_TRIM, (ping.check,))
        return True

    return op


def ping_from_row(row: dict[str, object]) -> Ping:
    return Ping(
        check=str(row["check"]),
        kind=row["kind"],  # type: ignore[arg-type]
        received_at=datetime.fromisoformat(str(row["received_at"]).replace("Z", "+00:00")),
        exit_code=None if row["exit_code"] is None else int(str(row["exit_code"])),
        body=str(row["body"] or ""),
        id=str(row["id"]),
    )
