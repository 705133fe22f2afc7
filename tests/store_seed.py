"""Seeding a test database with incidents and notification attempts the way the daemon writes them.

The store has one write path for alerting: `Store.apply_transition` (the check's alert state and its
incident rows, keyed by the alert engine's `<check>@<opened_at>`, in one transaction) and
`Store.record_delivery` (one notification attempt, tied to its incident by that key). These helpers go
through exactly those two calls, with an alert state the engine itself serialised, so a test never holds
rows in a shape production cannot write. They never write SQL; they read an incident's row id back on a
connection of their own (the API shows incidents by id).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from prober.alerts import CheckAlertState, Incident
from prober.results import format_timestamp
from prober.store import IncidentChange, Store


@dataclass(frozen=True, slots=True)
class SeededIncident:
    id: int
    """The incidents row id, as the API and `Store.incident(id)` name it."""
    key: str
    """The alert engine's incident key, `<check>@<opened_at>`."""
    check: str
    started_at: datetime


async def open_incident(
    store: Store,
    check: str,
    locations: Sequence[str],
    error: str | None,
    started_at: datetime,
    *,
    opened_at: datetime | None = None,
) -> SeededIncident:
    """Open an incident as the daemon does when a check goes down (opened at `started_at` unless told)."""
    opened = opened_at or started_at
    key = f"{check}@{format_timestamp(opened)}"
    engine = Incident(
        id=key,
        started_at=started_at,
        opened_at=opened,
        locations=tuple(sorted(locations)),
        error=error,
        last_notified_at=opened,
    )
    state = CheckAlertState(check=check, incident=engine).to_json()
    change = IncidentChange("opened", key, list(locations), error, started_at)
    await store.apply_transition(check, state, [change], [], opened)
    with sqlite3.connect(f"file:{store.path}?mode=ro", uri=True) as db:
        row = db.execute("SELECT id FROM incidents WHERE key = ?", (key,)).fetchone()
    assert row is not None, f"the incident {key} was not committed"
    return SeededIncident(int(row[0]), key, check, started_at)


async def resolve_incident(store: Store, incident: SeededIncident, resolved_at: datetime) -> None:
    """Resolve it as the daemon does when the check recovers: the alert state forgets the incident."""
    change = IncidentChange("resolved", incident.key, [], None, incident.started_at, resolved_at)
    state = CheckAlertState(check=incident.check).to_json()
    await store.apply_transition(incident.check, state, [change], [], resolved_at)


async def record_notification(
    store: Store,
    incident: SeededIncident | None,
    check: str | None,
    kind: str,
    url_redacted: str,
    attempt: int,
    outcome: str,
    error: str | None,
    at: datetime,
) -> None:
    """Record one delivery attempt as the daemon does (`ok` is `outcome == "delivered"`); `incident` None
    for a message about no incident (a test message, `check` None too)."""
    row = {
        "check": check,
        "kind": kind,
        "url": url_redacted,
        "attempt": attempt,
        "ok": int(outcome == "delivered"),
        "outcome": outcome,
        "error": error,
        "at": format_timestamp(at.astimezone(UTC)),
    }
    await store.record_delivery(None, incident.key if incident else None, row, finished=True)
