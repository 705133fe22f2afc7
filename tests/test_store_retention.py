"""Retention: raw results go after retention.raw, rollups after retention.rollup, in small batches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from store_seed import open_incident, record_notification, resolve_incident

from prober.config.models import RetentionConfig
from prober.results import Result
from prober.store import Store

NOW = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "prober.db") as opened:
        yield opened


async def test_prune_deletes_raw_results_past_retention_and_keeps_their_rollups(
    make_result: Callable[..., Result], store: Store
) -> None:
    old, recent, fresh = make_result(at=NOW - 20 * DAY, status="down"), make_result(at=NOW - 10 * DAY), make_result()
    await store.write_many([old, recent, fresh])
    counts = await store.prune(RetentionConfig(raw=14 * 86400, rollup=400 * 86400), NOW)
    assert counts["results"] == 1
    assert {r.id for r in store.results("api")} == {recent.id, fresh.id}
    assert store.uptime("api", 30 * 86400, now=NOW) == pytest.approx(100 * 2 / 3)  # the rollup remembers
    assert [c["result_id"] for c in store.current()] == [fresh.id]


async def test_prune_deletes_rollups_past_rollup_retention(make_result: Callable[..., Result], store: Store) -> None:
    await store.write_many([make_result(at=NOW - 500 * DAY), make_result(at=NOW - 300 * DAY), make_result()])
    counts = await store.prune(RetentionConfig(raw=14 * 86400, rollup=400 * 86400), NOW)
    assert counts["rollups_hourly"] == 1
    assert [r["hour"].date() for r in store.rollups("api", NOW - 1000 * DAY)] == [
        (NOW - 300 * DAY).date(),
        NOW.date(),
    ]


async def test_prune_keeps_the_rollup_hour_that_straddles_the_cutoff(
    make_result: Callable[..., Result], store: Store
) -> None:
    await store.write(make_result(at=NOW - timedelta(days=400, minutes=10)))  # 08:20, 400 days ago
    counts = await store.prune(RetentionConfig(raw=86400, rollup=400 * 86400), NOW)  # cutoff 08:30 that day
    assert counts["rollups_hourly"] == 0
    counts = await store.prune(RetentionConfig(raw=86400, rollup=400 * 86400), NOW + timedelta(hours=1))
    assert counts["rollups_hourly"] == 1


async def test_prune_works_in_small_batches_while_writes_go_on(
    make_result: Callable[..., Result], store: Store
) -> None:
    old = [make_result(check=f"c{i % 10}", at=NOW - 30 * DAY + timedelta(seconds=i)) for i in range(2500)]
    await store.write_many(old)
    commits_before = store.stats.commits
    prune = asyncio.ensure_future(store.prune(RetentionConfig(), NOW, batch=1000))
    old_left_after_each_write = set()
    for i in range(30):
        assert await store.write(make_result(check="live", at=NOW + timedelta(seconds=i)))
        old_left_after_each_write.add(sum(len(store.results(f"c{n}", limit=5000)) for n in range(10)))
    counts = await prune
    assert counts["results"] == 2500
    assert old_left_after_each_write & {1500, 500}  # writes were committed between the prune's batches
    assert store.stats.commits - commits_before >= 3  # 1000 + 1000 + 500, never all at once
    assert len(store.results("live")) == 30
    assert sum(len(store.results(f"c{i}")) for i in range(10)) == 0


async def test_open_incidents_are_never_pruned_and_old_resolved_ones_are(store: Store) -> None:
    long_open = await open_incident(store, "api", ["default"], "down for ages", NOW - 500 * DAY)
    old = await open_incident(store, "web", ["default"], "down", NOW - 450 * DAY)
    await resolve_incident(store, old, NOW - 449 * DAY)
    recent = await open_incident(store, "web", ["default"], "down", NOW - 2 * DAY)
    await resolve_incident(store, recent, NOW - DAY)
    await record_notification(store, old, "web", "down", "json://hook", 1, "delivered", None, NOW - 450 * DAY)
    await record_notification(store, recent, "web", "down", "json://hook", 1, "delivered", None, NOW - 2 * DAY)
    counts = await store.prune(RetentionConfig(), NOW)
    assert (counts["incidents"], counts["notifications"]) == (1, 1)
    assert sorted(i["id"] for i in store.incidents()) == [long_open.id, recent.id]
    assert [n["incident_id"] for n in store.notifications()] == [recent.id]


async def test_current_state_of_a_check_silent_for_longer_than_raw_retention_is_pruned(
    make_result: Callable[..., Result], store: Store
) -> None:
    await store.write_many([make_result("gone", at=NOW - 20 * DAY), make_result("alive")])
    counts = await store.prune(RetentionConfig(raw=14 * 86400), NOW)
    assert counts["current_state"] == 1
    assert store.checks() == ["alive"]


async def test_probe_state_not_saved_for_longer_than_raw_retention_is_pruned(store: Store) -> None:
    await store.save("gone", "default", {"sequence": 1})
    assert (await store.prune(RetentionConfig(raw=14 * 86400), datetime.now(UTC) + 13 * DAY))["probe_state"] == 0
    assert (await store.prune(RetentionConfig(raw=14 * 86400), datetime.now(UTC) + 15 * DAY))["probe_state"] == 1
    assert await store.load("gone", "default") is None


async def test_a_batch_size_below_one_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        await store.prune(RetentionConfig(), NOW, batch=0)
