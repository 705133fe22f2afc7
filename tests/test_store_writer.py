"""The single writer: commit before returning, batching, duplicates, isolation of failures, flush on close."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from prober.results import Assertion, Result
from prober.store import IncidentChange, Store, StoreError

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def stored_ids(path: Path) -> set[str]:
    connection = sqlite3.connect(path)
    try:
        return {row[0] for row in connection.execute("SELECT id FROM results")}
    finally:
        connection.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "prober.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    async with Store(db_path) as opened:
        yield opened


async def test_write_returns_only_after_the_result_is_committed(
    make_result: Callable[..., Result], store: Store, db_path: Path
) -> None:
    for second in range(5):
        result = make_result(at=START + timedelta(seconds=second))
        await store.write(result)
        assert result.id in stored_ids(db_path)  # another connection sees it: it is committed


async def test_a_result_reads_back_as_it_was_written(make_result: Callable[..., Result], store: Store) -> None:
    result = make_result(
        status="down",
        error="HTTP status 503, expected 2xx",
        started_at=datetime(2026, 11, 23, 8, 0, 1, 123456, tzinfo=UTC),
        metrics={"status": 503, "latency": 0.2, "json": {"a": [1, 2]}, "ratio": float("inf")},
        assertions=[Assertion("status", "2xx", 503, False, "expect")],
        artifacts=["artifacts/api/shot.png"],
        details={"attempts": 2},
    )
    await store.write(result)
    [back] = store.results("api")
    assert store.result(result.id) == back
    assert back.started_at == datetime(2026, 11, 23, 8, 0, 1, 123000, tzinfo=UTC)  # stored to the millisecond
    back.started_at = result.started_at
    assert back == result


async def test_a_duplicate_id_is_stored_once_and_counted_once(make_result: Callable[..., Result], store: Store) -> None:
    first = make_result(at=START + timedelta(seconds=1))
    assert await store.write(first) is True
    assert await store.write(first) is False
    second = make_result(at=START + timedelta(seconds=2))
    assert await store.write_many([first, second, second, make_result(at=START + timedelta(seconds=3))]) == 2
    assert len(store.results("api")) == 3
    [rollup] = store.rollups("api", START)
    assert rollup["count"] == 3
    [current] = store.current()
    assert current["consecutive_ok"] == 3
    assert store.stats.duplicates == 3


async def test_concurrent_writes_are_committed_together_in_few_transactions(
    make_result: Callable[..., Result], store: Store, db_path: Path
) -> None:
    results = [make_result(f"c{i % 7}", at=START + timedelta(seconds=i)) for i in range(300)]
    commits_before = store.stats.commits
    await asyncio.gather(*(store.write(result) for result in results))
    commits = store.stats.commits - commits_before
    assert commits <= 5, f"300 concurrent writes took {commits} transactions"
    assert store.stats.largest_batch >= 60
    assert stored_ids(db_path) == {result.id for result in results}


async def test_close_commits_every_write_still_queued(make_result: Callable[..., Result], db_path: Path) -> None:
    store = Store(db_path)
    await store.start()
    results = [make_result(at=START + timedelta(seconds=i)) for i in range(50)]
    pending = [asyncio.ensure_future(store.write(result)) for result in results]
    await asyncio.sleep(0)  # the writes are queued, not yet committed
    await store.close()
    assert all(task.done() and task.result() is True for task in pending)
    assert stored_ids(db_path) == {result.id for result in results}


async def test_writing_before_start_or_after_close_is_a_clear_error(
    make_result: Callable[..., Result], db_path: Path
) -> None:
    store = Store(db_path)
    with pytest.raises(StoreError, match=r"call `await store\.start\(\)` first"):
        await store.write(make_result())
    await store.start()
    await store.close()
    with pytest.raises(StoreError, match="is closed"):
        await store.write(make_result())
    await store.close()  # closing twice is harmless


async def test_a_status_that_is_not_up_degraded_or_down_is_refused_before_the_database(
    make_result: Callable[..., Result], store: Store
) -> None:
    with pytest.raises(ValueError, match="must be up, degraded or down"):
        await store.write(make_result(status="unknown"))
    assert store.stats.ops == 0


async def test_values_json_cannot_express_are_kept_as_text_rather_than_losing_the_result(
    make_result: Callable[..., Result], store: Store
) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await store.write(make_result(metrics={"not_after": moment, "raw": b"\x00"}))
    [back] = store.results("api")
    assert back.metrics == {"not_after": str(moment), "raw": str(b"\x00")}


async def test_a_failing_operation_fails_only_its_own_caller(
    make_result: Callable[..., Result], store: Store, db_path: Path
) -> None:
    results = [make_result(at=START + timedelta(seconds=i)) for i in range(20)]
    opened = IncidentChange("opened", "nameless@1", ["default"], "boom", START)
    bad = store.apply_transition(None, None, [opened], [], START)  # type: ignore[arg-type]
    outcomes = await asyncio.gather(*(store.write(r) for r in results), bad, return_exceptions=True)
    assert outcomes[:20] == [True] * 20
    assert isinstance(outcomes[20], StoreError)
    assert "could not write to the database" in str(outcomes[20]) and str(db_path) in str(outcomes[20])
    assert stored_ids(db_path) == {result.id for result in results}
    assert store.stats.failed_ops == 1


async def test_a_cancelled_caller_does_not_stop_the_write(
    make_result: Callable[..., Result], store: Store, db_path: Path
) -> None:
    result = make_result()
    task = asyncio.ensure_future(store.write(result))
    await asyncio.sleep(0)
    task.cancel()
    await store.write(
        make_result(at=START + timedelta(seconds=1))
    )  # queued behind it: once this returns, both are committed
    assert result.id in stored_ids(db_path)
