"""Current state per check and location: the latest result, runs in a row, when the status last changed."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from prober.results import Result
from prober.store import Store

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "prober.db") as opened:
        yield opened


async def test_current_state_follows_the_latest_result_and_counts_runs_in_a_row(
    make_result: Callable[..., Result], store: Store
) -> None:
    expected = [  # status, consecutive_down, consecutive_ok, minute of last change
        ("up", 0, 1, 0),
        ("up", 0, 2, 0),
        ("down", 1, 0, 2),
        ("down", 2, 0, 2),
        ("down", 3, 0, 2),
        ("degraded", 0, 1, 5),
        ("up", 0, 2, 6),
    ]
    for minute, (status, down, ok, changed) in enumerate(expected):
        result = make_result(status=status, at=START + timedelta(minutes=minute))
        await store.write(result)
        [current] = store.current()
        assert (current["status"], current["consecutive_down"], current["consecutive_ok"]) == (status, down, ok)
        assert current["last_change"] == START + timedelta(minutes=changed)
        assert current["started_at"] == result.started_at
        assert current["result_id"] == result.id
        assert current["error"] == result.error
        assert current["metrics"] == result.metrics


async def test_a_late_result_goes_to_history_but_does_not_replace_a_newer_current_state(
    make_result: Callable[..., Result], store: Store
) -> None:
    await store.write(make_result(status="up", at=START + timedelta(minutes=10)))
    late = make_result(status="down", at=START + timedelta(minutes=5))
    assert await store.write(late) is True
    [current] = store.current()
    assert (current["status"], current["consecutive_down"], current["consecutive_ok"]) == ("up", 0, 1)
    assert [r.started_at for r in store.results("api")] == [START + timedelta(minutes=10), late.started_at]
    [rollup] = store.rollups("api", START)
    assert (rollup["count"], rollup["down"]) == (2, 1)


async def test_results_in_one_batch_are_applied_in_the_order_they_started(
    make_result: Callable[..., Result], store: Store
) -> None:
    statuses = ["up", "up", "down", "down", "down", "down"]
    results = [make_result(status=status, at=START + timedelta(minutes=i)) for i, status in enumerate(statuses)]
    random.Random(5).shuffle(results)
    assert await store.write_many(results) == len(results)
    [current] = store.current()
    assert (current["status"], current["consecutive_down"], current["consecutive_ok"]) == ("down", 4, 0)
    assert current["last_change"] == START + timedelta(minutes=2)


async def test_each_check_and_location_has_its_own_current_state(
    make_result: Callable[..., Result], store: Store
) -> None:
    await store.write_many(
        [
            make_result("web", "up", location="eu-west"),
            make_result("web", "down", location="us-east"),
            make_result("api", "up"),
            make_result("api", "down", at=START + timedelta(minutes=1)),
        ]
    )
    states = {(c["check"], c["location"]): (c["status"], c["consecutive_down"]) for c in store.current()}
    assert states == {
        ("api", "default"): ("down", 1),
        ("web", "eu-west"): ("up", 0),
        ("web", "us-east"): ("down", 1),
    }
    assert [c["location"] for c in store.current("web")] == ["eu-west", "us-east"]
    assert store.current("nothing") == []
    assert store.checks() == ["api", "web"]
