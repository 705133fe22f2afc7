"""State kept for probes and alerts, incidents and notification attempts: round trips and restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from store_seed import open_incident, record_notification, resolve_incident

from prober.alerts import CheckAlertState, LocationState
from prober.probes.base import ProbeState, StateStore
from prober.store import Store

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "prober.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    async with Store(db_path) as opened:
        yield opened


async def test_probe_state_round_trips_per_check_and_location(store: Store) -> None:
    state_store: StateStore = store
    assert await state_store.load("live", "eu-west") is None
    variant = {"variants": {"720p": {"media_sequence": 1041, "uris": {"1041": "seg1041.ts"}, "pdt": None}}}
    await ProbeState(state_store, "live", "eu-west").save(variant)
    await state_store.save("live", "us-east", {"variants": {}})
    assert await ProbeState(state_store, "live", "eu-west").load() == variant
    assert await state_store.load("live", "us-east") == {"variants": {}}
    await state_store.save("live", "eu-west", {"variants": {"720p": {"media_sequence": 1042}}})
    assert await state_store.load("live", "eu-west") == {"variants": {"720p": {"media_sequence": 1042}}}


async def test_alert_states_survive_a_restart(db_path: Path) -> None:
    api = CheckAlertState("api", locations={"default": LocationState(downs=3, down=True)})
    async with Store(db_path) as store:
        await store.apply_transition("api", api.to_json(), [], [], T0)
        await store.apply_transition("web", CheckAlertState("web").to_json(), [], [], T0)
        await store.apply_transition("web", CheckAlertState("web", recent_opens=(T0,)).to_json(), [], [], T0)
    async with Store(db_path) as store:
        saved = store.load_alert_states()
    assert CheckAlertState.from_json(saved["api"]) == api
    assert CheckAlertState.from_json(saved["web"]).recent_opens == (T0,), "the newest state of a check wins"
    assert sorted(saved) == ["api", "web"]


async def test_incidents_open_resolve_and_list_newest_first(store: Store) -> None:
    first = await open_incident(store, "api", ["eu-west", "us-east"], "connection refused", T0)
    second = await open_incident(store, "web", ["default"], "HTTP status 503, expected 2xx", T0 + timedelta(hours=1))
    third = await open_incident(store, "api", ["eu-west"], "timed out after 10s", T0 + timedelta(hours=2))
    await resolve_incident(store, first, T0 + timedelta(minutes=7, seconds=30))
    await resolve_incident(store, first, T0 + timedelta(hours=5))  # already resolved: unchanged

    assert [i["id"] for i in store.incidents()] == [third.id, second.id, first.id]
    assert [i["id"] for i in store.incidents(open_only=True)] == [third.id, second.id]
    assert [i["id"] for i in store.incidents(check="api")] == [third.id, first.id]
    assert [i["id"] for i in store.incidents(limit=1)] == [third.id]
    resolved = store.incident(first.id)
    assert resolved == {
        "id": first.id,
        "check": "api",
        "locations": ["eu-west", "us-east"],
        "error": "connection refused",
        "started_at": T0,
        "resolved_at": T0 + timedelta(minutes=7, seconds=30),
        "downtime_seconds": 450.0,
    }
    assert store.incident(second.id) is not None and store.incident(second.id)["downtime_seconds"] is None  # type: ignore[index]
    assert store.incident(12345) is None


async def test_resolving_resolves_only_the_incident_of_that_key(store: Store) -> None:
    """A check's incidents are told apart by the engine's key, not by the check's name."""
    old = await open_incident(store, "api", ["default"], "connection refused", T0)
    new = await open_incident(store, "api", ["default"], "timed out after 10s", T0 + timedelta(hours=1))
    await resolve_incident(store, new, T0 + timedelta(hours=2))
    assert [i["id"] for i in store.incidents(open_only=True)] == [old.id]


async def test_an_incident_opened_twice_by_the_same_transition_is_one_row(store: Store) -> None:
    """A transition replayed after a crash (same key) does not open a second incident."""
    first = await open_incident(store, "api", ["default"], "connection refused", T0)
    again = await open_incident(store, "api", ["default"], "connection refused", T0)
    assert again.id == first.id and len(store.incidents()) == 1


async def test_open_incidents_are_still_open_after_a_restart(db_path: Path) -> None:
    async with Store(db_path) as store:
        incident = await open_incident(store, "api", ["default"], "connection refused", T0)
    async with Store(db_path) as store:
        assert [i["id"] for i in store.incidents(open_only=True)] == [incident.id]
        await resolve_incident(store, incident, T0 + timedelta(minutes=3))
        assert store.incidents(open_only=True) == []
        later = await open_incident(store, "api", ["default"], "again", T0 + timedelta(hours=1))
        assert later.id > incident.id


async def test_notification_attempts_are_recorded_newest_first(store: Store) -> None:
    incident = await open_incident(store, "api", ["default"], "connection refused", T0)
    url = "json://127.0.0.1:8099/hook"
    await record_notification(store, incident, "api", "down", url, 1, "retrying", "connection refused", T0)
    await record_notification(store, incident, "api", "down", url, 2, "delivered", None, T0 + timedelta(seconds=2))
    await record_notification(store, None, None, "test", "slack://****/****", 1, "delivered", None,
                              T0 + timedelta(seconds=9))  # fmt: skip
    attempts = store.notifications()
    assert [(n["kind"], n["attempt"], n["ok"]) for n in attempts] == [
        ("test", 1, True),
        ("down", 2, True),
        ("down", 1, False),
    ]
    assert attempts[2] == {
        "id": attempts[2]["id"],
        "incident_id": incident.id,
        "check": "api",
        "kind": "down",
        "url": url,
        "attempt": 1,
        "ok": False,
        "outcome": "retrying",
        "error": "connection refused",
        "at": T0,
    }
    assert attempts[0]["check"] is None and attempts[0]["incident_id"] is None
    assert [n["attempt"] for n in store.notifications(incident_id=incident.id)] == [2, 1]
    assert len(store.notifications(check="api")) == 2
    assert len(store.notifications(limit=1)) == 1
