"""The database file: creation, migrations with PRAGMA user_version, re-opening, refusing what it cannot use."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlite_utils import Database
from test_store_migration import write_v2

from prober.results import Result
from prober.store import SCHEMA_VERSION, PushCursor, Store, StoreError
from prober.store import schema as schema_module

TABLES = {
    "result_rows",
    "result_names",
    "current_state",
    "probe_state",
    "alert_state",
    "incidents",
    "notifications",
    "rollups_hourly",
    "rollups_daily",
    "notification_failures",
}


def user_version(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])
    finally:
        connection.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "prober.db"


def test_a_new_file_gets_every_table_at_the_current_schema_version_in_wal_mode(db_path: Path) -> None:
    with Store(db_path):
        pass
    connection = sqlite3.connect(db_path)
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        views = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'view'")}
        journal = connection.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        connection.close()
    assert tables >= TABLES
    assert "results" in views, "the results of schema version 2 stay readable as a view"
    assert journal == "wal"
    assert user_version(db_path) == SCHEMA_VERSION >= 1


async def test_reopening_a_database_keeps_its_results_and_state(
    make_result: Callable[..., Result], db_path: Path
) -> None:
    async with Store(db_path) as store:
        await store.write(make_result())
        await store.apply_transition("api", {"open": True}, [], [], datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    async with Store(db_path) as store:
        assert [result.check for result in store.results("api")] == ["api"]
        assert store.load_alert_states() == {"api": {"open": True}}
        await store.write(make_result(at=datetime(2026, 11, 23, 8, 1, tzinfo=UTC)))
        assert len(store.results("api")) == 2
    assert user_version(db_path) == SCHEMA_VERSION


def test_a_database_from_a_newer_prober_is_refused_with_a_clear_message(db_path: Path) -> None:
    with Store(db_path):
        pass
    connection = sqlite3.connect(db_path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(StoreError, match="written by a newer prober") as raised:
        Store(db_path)
    assert str(db_path) in str(raised.value)


def test_a_missing_file_is_an_error_when_it_must_not_be_created(db_path: Path) -> None:
    with pytest.raises(StoreError, match="there is no database at"):
        Store(db_path, create=False)
    assert not db_path.exists()


def test_a_missing_directory_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nowhere" / "prober.db")


def test_a_file_that_is_not_sqlite_is_reported(db_path: Path) -> None:
    db_path.write_bytes(b"this is a text file, not a database\n" * 200)
    with pytest.raises(StoreError, match="cannot open the database"):
        Store(db_path)


def test_a_new_migration_is_applied_once_on_top_of_existing_data(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store(db_path):
        pass
    connection = sqlite3.connect(db_path)
    connection.execute(
        "INSERT INTO alert_state (\"check\", state, updated_at) VALUES ('api', '{}', '2026-01-01T00:00:00.000Z')"
    )
    connection.commit()
    connection.close()
    applied: list[int] = []

    def v_next(db: Database) -> None:
        applied.append(1)
        db.execute("ALTER TABLE alert_state ADD COLUMN note TEXT")

    monkeypatch.setattr(schema_module, "MIGRATIONS", [*schema_module.MIGRATIONS, v_next])
    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Store(db_path) as store:
        assert store.load_alert_states() == {"api": {}}
    with Store(db_path):
        pass
    assert applied == [1]
    assert user_version(db_path) == SCHEMA_VERSION + 1
    connection = sqlite3.connect(db_path)
    columns = [row[1] for row in connection.execute("PRAGMA table_info(alert_state)")]
    connection.close()
    assert "note" in columns


def test_a_failed_migration_leaves_the_database_at_the_previous_version(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store(db_path):
        pass

    def broken(db: Database) -> None:
        db.execute("CREATE TABLE half_done (x INTEGER)")
        db.execute("INSERT INTO no_such_table VALUES (1)")

    monkeypatch.setattr(schema_module, "MIGRATIONS", [*schema_module.MIGRATIONS, broken])
    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match=f"to schema version {SCHEMA_VERSION + 1} failed"):
        Store(db_path)
    assert user_version(db_path) == SCHEMA_VERSION
    connection = sqlite3.connect(db_path)
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    connection.close()
    assert "half_done" not in tables


async def test_a_database_from_before_the_push_cursor_gets_its_table_and_keeps_its_results(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, make_result: Callable[..., Result]
) -> None:
    """An agent's database written before the cursor moved into it (schema version 2)."""
    before = schema_module.MIGRATIONS.index(schema_module._v3_push_cursor)
    assert before == 2
    write_v2(db_path, [make_result(location="eu-west")])
    assert user_version(db_path) == before
    async with Store(db_path) as store:
        assert store.push_cursor("http://hub/api/v1/ingest", "eu-west") is None
        pending = store.result_ids_after(0, "eu-west", 10)
        assert len(pending.ids) == 1 and pending.end_rowid == store.last_result_rowid() == 1
        await store.save_push_cursor("http://hub/api/v1/ingest", "eu-west", PushCursor(1, pending.ids[0]), 1)
        assert store.push_cursor("http://hub/api/v1/ingest", "eu-west") == PushCursor(1, pending.ids[0], 1)
        assert store.count_results_after(0, "eu-west") == 1 and store.count_results_after(1, "eu-west") == 0
    assert user_version(db_path) == SCHEMA_VERSION
