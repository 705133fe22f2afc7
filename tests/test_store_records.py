"""State kept for probes and alerts, incidents and notification attempts: round trips and restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

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


async def test_alert_states_survive_a_restart_and_can_be_forgotten(db_path: Path) -> None:
    async with Store(db_path) as store:
        await store.save_alert_state("api", {"locations": {"default": {"down": 3}}, "open": True})
        await store.save_alert_state("web", {"open": False})
        await store.save_alert_state("web", {"open": False, "changed": 1})
    async with Store(db_path) as store:
        assert store.load_alert_states() == {
            "api": {"locations": {"default": {"down": 3}}, "open": True},
            "web": {"open": False, "changed": 1},
        }
        assert await store.delete_alert_state("web") is True
        assert await store.delete_alert_state("web") is False
        assert list(store.load_alert_states()) == ["api"]


async def test_incidents_open_resolve_and_list_newest_first(store: Store) -> None:
    first = await store.open_incident("api", ["eu-west", "us-east"], "connection refused", T0)
    second = await store.open_incident("web", ["default"], "HTTP status 503, expected 2xx", T0 + timedelta(hours=1))
    third = await store.open_incident("api", ["eu-west"], "timed out after 10s", T0 + timedelta(hours=2))
    assert await store.resolve_incident(first, T0 + timedelta(minutes=7, seconds=30)) is True
    assert await store.resolve_incident(first, T0 + timedelta(hours=5)) is False  # already resolved: unchanged
    assert await store.resolve_incident(9999, T0) is False

    assert [i["id"] for i in store.incidents()] == [third, second, first]
    assert [i["id"] for i in store.incidents(open_only=True)] == [third, second]
    assert [i["id"] for i in store.incidents(check="api")] == [third, first]
    assert [i["id"] for i in store.incidents(limit=1)] == [third]
    resolved = store.incident(first)
    assert resolved == {
        "id": first,
        "check": "api",
        "locations": ["eu-west", "us-east"],
        "error": "connection refused",
        "started_at": T0,
        "resolved_at": T0 + timedelta(minutes=7, seconds=30),
        "downtime_seconds": 450.0,
    }
    assert store.incident(second) is not None and store.incident(second)["downtime_seconds"] is None  # type: ignore[index]
    assert store.incident(12345) is None


async def test_an_open_incident_can_gain_locations_and_a_new_error(store: Store) -> None:
    incident = await store.open_incident("api", ["eu-west"], "connection refused", T0)
    assert await store.update_incident(incident, locations=["eu-west", "us-east"]) is True
    assert await store.update_incident(incident, error="timed out after 10s") is True
    assert await store.update_incident(999, error="nothing") is False
    [stored] = store.incidents()
    assert (stored["locations"], stored["error"]) == (["eu-west", "us-east"], "timed out after 10s")


async def test_open_incidents_are_still_open_after_a_restart(db_path: Path) -> None:
    async with Store(db_path) as store:
        incident = await store.open_incident("api", ["default"], "connection refused", T0)
    async with Store(db_path) as store:
        assert [i["id"] for i in store.incidents(open_only=True)] == [incident]
        assert await store.resolve_incident(incident, T0 + timedelta(minutes=3))
        assert store.incidents(open_only=True) == []
        assert await store.open_incident("api", ["default"], "again", T0 + timedelta(hours=1)) > incident


async def test_notification_attempts_are_recorded_newest_first(store: Store) -> None:
    incident = await store.open_incident("api", ["default"], "connection refused", T0)
    url = "json://127.0.0.1:8099/hook"
    await store.record_notification(
        incident, "api", "down", url, 1, False, "connection refused", T0, outcome="retrying"
    )
    await store.record_notification(incident, "api", "down", url, 2, True, None, T0 + timedelta(seconds=2))
    await store.record_notification(None, None, "test", "slack://****/****", 1, True, None, T0 + timedelta(seconds=9))
    attempts = store.notifications()
    assert [(n["kind"], n["attempt"], n["ok"]) for n in attempts] == [
        ("test", 1, True),
        ("down", 2, True),
        ("down", 1, False),
    ]
    assert attempts[2] == {
        "id": attempts[2]["id"],
        "incident_id": incident,
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
    assert [n["attempt"] for n in store.notifications(incident_id=incident)] == [2, 1]
    assert len(store.notifications(check="api")) == 2
    assert len(store.notifications(limit=1)) == 1
