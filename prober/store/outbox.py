"""The notification outbox: a transition and the messages it must send are committed together.

`transition_op` builds one writer operation that saves a check's alert state, opens or resolves its
incident rows and inserts one outbox row per (message, notifier URL), all in the same transaction. The
notifier is handed the row ids after COMMIT; a delivery (or giving up) deletes the row in the same
transaction that records the attempt (`delivery_op`). Whatever is still in the table after a crash is
delivered on the next start, oldest first per URL: at least once after a crash, exactly once otherwise.

Notifier URLs are secrets: a row holds the redacted URL for people and `url_key(url)`, a salted scrypt
digest, to find the configured URL again after a restart. The URL itself is never stored.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from prober.results import format_timestamp
from prober.store.writer import to_json, utc

__all__ = ["IncidentChange", "OutboxEntry", "OutboxRow", "delivery_op", "pending_op", "transition_op", "url_key"]


@functools.lru_cache(maxsize=4096)
def url_key(url: str) -> str:
    """A stable, deliberately slow digest of a notifier URL (a few ms once per URL and process)."""
    return hashlib.scrypt(url.encode(), salt=b"prober notification outbox", n=2**12, r=8, p=1, dklen=16).hex()


def _ts(moment: datetime) -> str:
    return format_timestamp(utc(moment))


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """What a transition does to the incidents table."""

    kind: str
    """opened | resolved (anything else changes no incident row)."""
    key: str
    """The alert engine's incident id, `<check>@<opened_at>`."""
    locations: Sequence[str]
    error: str | None
    started_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One message for one URL, before it is committed."""

    url: str
    """The real URL: used for the key only, never stored."""
    url_redacted: str
    kind: str
    check: str | None
    incident_key: str | None
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    url_key: str
    url: str
    kind: str
    check: str | None
    incident_key: str | None
    title: str
    body: str
    created_at: str
    attempts: int


_OPEN_SQL = 'INSERT INTO incidents ("check", locations, error, started_at, key) VALUES (?, ?, ?, ?, ?)'
_RESOLVE_SQL = "UPDATE incidents SET resolved_at = ? WHERE resolved_at IS NULL AND key = ?"
_UPSERT_STATE_SQL = (
    'INSERT INTO alert_state ("check", state, updated_at) VALUES (?, ?, ?) '
    'ON CONFLICT ("check") DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at'
)
_INSERT_OUTBOX_SQL = (
    'INSERT INTO notification_outbox (url_key, url, kind, "check", incident_key, title, body, created_at) '
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def transition_op(
    check: str,
    state: dict[str, Any] | None,
    changes: Sequence[IncidentChange],
    entries: Sequence[OutboxEntry],
    now: datetime,
) -> Callable[[Database], list[int]]:
    """The writer operation for one alert step; it returns the outbox row ids, in `entries` order."""
    stamp = _ts(now)
    state_row = None if state is None else (check, to_json(state), stamp)
    rows = [(url_key(e.url), e.url_redacted, e.kind, e.check, e.incident_key, e.title, e.body, stamp) for e in entries]

    def op(db: Database) -> list[int]:
        if state_row is not None:
            db.execute(_UPSERT_STATE_SQL, state_row)
        for change in changes:
            if change.kind == "opened":
                exists = db.execute("SELECT 1 FROM incidents WHERE key = ?", (change.key,)).fetchone()
                if exists is None:
                    db.execute(
                        _OPEN_SQL,
                        (check, to_json(list(change.locations)), change.error, _ts(change.started_at), change.key),
                    )
            elif change.kind == "resolved":
                db.execute(_RESOLVE_SQL, (_ts(change.ended_at or now), change.key))
        ids: list[int] = []
        for row in rows:
            cursor = db.execute(_INSERT_OUTBOX_SQL, row)
            ids.append(int(cursor.lastrowid or 0))
        return ids

    return op


def delivery_op(
    outbox_id: int | None,
    incident_key: str | None,
    row: dict[str, Any],
    *,
    finished: bool,
) -> Callable[[Database], None]:
    """Record one delivery attempt (`row`: the notifications columns but incident_id) and, when the message
    is finished (delivered or given up), delete its outbox row in the same transaction."""

    def op(db: Database) -> None:
        incident_id = None
        if incident_key:
            found = db.execute("SELECT id FROM incidents WHERE key = ?", (incident_key,)).fetchone()
            incident_id = None if found is None else int(found[0])
        db.table("notifications").insert({**row, "incident_id": incident_id})
        if outbox_id is None:
            return
        if finished:
            db.execute("DELETE FROM notification_outbox WHERE id = ?", (outbox_id,))
        else:
            db.execute(
                "UPDATE notification_outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                (row.get("error"), outbox_id),
            )

    return op


def pending_op(db: Database) -> list[OutboxRow]:
    """Every message not yet delivered nor given up, oldest first."""
    cursor = db.execute(
        'SELECT id, url_key, url, kind, "check", incident_key, title, body, created_at, attempts '
        "FROM notification_outbox ORDER BY id"
    )
    return [OutboxRow(*row) for row in cursor.fetchall()]


def forget_op(ids: Sequence[int]) -> Callable[[Database], int]:
    """Delete outbox rows (messages whose URL is no longer configured, recorded elsewhere)."""
    params = [(i,) for i in ids]

    def op(db: Database) -> int:
        return sum(db.execute("DELETE FROM notification_outbox WHERE id = ?", p).rowcount for p in params)

    return op
