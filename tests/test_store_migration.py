"""Migrating a schema-version-2 database (text ids, JSON metrics and assertions in every row) to the compact
encoding and the daily rollups: every row is kept under its rowid, every result reads back as it was
written, the `results` view shows the version-2 columns, and the API answers what the hourly rollups say."""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from api_helpers import NOW, FakeDaemon, serve, write_config

from prober.results import Assertion, Result, Status, new_result_id
from prober.store import SCHEMA_VERSION, Store
from prober.store.codec import decode_assertions, encode_values, to_json
from prober.store.rollups import UPSERT_ROLLUP_SQL, aggregate, latency_of
from prober.store.schema import MIGRATIONS, open_write_connection
from prober.store.writer import encode_result

CONFIG = """
version: 1
checks:
  - name: api
    type: http
    url: http://127.0.0.1:9/health
    locations: [eu, us]
  - name: page
    type: http
    url: http://127.0.0.1:9/
"""

V2_INSERT = (
    'INSERT INTO results (id, "check", location, type, started_at, status, duration_ms, error, metrics, '
    "assertions, artifacts, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def odd_results() -> list[Result]:
    """Results of every kind the encoding treats apart: JSON paths, contains, a metric missing, strings,
    nested values, artifacts, details, errors, a non-UUID id, float values that are not microseconds."""
    found: list[Result] = []
    statuses: tuple[Status, ...] = ("up", "up", "degraded", "down")
    for index in range(3 * 24 * 6):  # every 10 minutes for 3 days, two checks, two locations
        started = NOW - timedelta(days=3) + timedelta(minutes=10 * index)
        status = statuses[index % 4]
        for check, location in (("api", "eu"), ("api", "us"), ("page", "default")):
            latency = round(0.02 + (index % 17) / 1000, 6)
            metrics: dict[str, Any] = {"status": 503 if status == "down" else 200, "latency": latency}
            if index % 5 == 0:
                metrics["body_size"] = 1234.5678901234567
                metrics["nested"] = {"a": [1, True, None, "x"], "b": {"c": 0.1}}
            assertions = [Assertion("status", "2xx", metrics["status"], status != "down", "expect")]
            if check == "api":
                assertions.append(Assertion("json.ok", "== true", index % 3 != 0, index % 3 != 0, "expect"))
                assertions.append(Assertion("latency", "< 30ms", latency, latency < 0.03, "warn"))
            if index % 7 == 0:
                assertions.append(Assertion("body", "contains 'ok'", False, False, "expect"))
                assertions.append(Assertion("cert_days_remaining", "> 7", None, False, "warn"))
            found.append(
                Result(
                    check=check,
                    type="http",
                    location=location,
                    started_at=started,
                    duration_ms=latency * 1000 + 0.123,
                    status=status,
                    error=f"HTTP status 503 at {check}" if status == "down" else None,
                    metrics=metrics,
                    assertions=assertions,
                    artifacts=[f"/var/lib/prober/artifacts/{check}-{index}.png"] if index % 11 == 0 else [],
                    details={"final_url": "http://127.0.0.1:9/x"} if index % 13 == 0 else {},
                    id=f"agent-{index}-{location}" if index % 50 == 0 else new_result_id(),
                )
            )
    return found


def write_v2(path: Path, results: list[Result]) -> dict[tuple[str, str], Result]:
    """A database as prober wrote it at schema version 2 (its migrations, its row format)."""
    db = open_write_connection(path, synchronous="NORMAL")
    db.execute("BEGIN IMMEDIATE")
    MIGRATIONS[0](db)
    MIGRATIONS[1](db)
    db.execute("PRAGMA user_version = 2")
    for result in results:
        encoded = encode_result(result)
        db.execute(
            V2_INSERT,
            (
                result.id,
                result.check,
                result.location,
                result.type,
                encoded.started_at,
                result.status,
                result.duration_ms,
                result.error,
                to_json(result.metrics),
                json.dumps([item.to_json() for item in result.assertions], separators=(",", ":")),
                encoded.artifacts,
                encoded.details,
            ),
        )
    deltas = aggregate(
        (r.check, r.location, r.started_at, r.status, latency_of(r.metrics, r.duration_ms)) for r in results
    )
    for (check, location, hour), delta in deltas.items():
        db.execute(UPSERT_ROLLUP_SQL, delta.params(check, location, hour))
    newest: dict[tuple[str, str], Result] = {}
    for result in sorted(results, key=lambda item: item.started_at):
        newest[(result.check, result.location)] = result
    for result in newest.values():  # version 2 kept the metrics of a current state as a JSON object
        db.execute(
            'INSERT INTO current_state ("check", location, type, status, started_at, duration_ms, error, metrics, '
            "result_id, consecutive_down, consecutive_ok, last_change) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                result.check,
                result.location,
                result.type,
                result.status,
                encode_result(result).started_at,
                result.duration_ms,
                result.error,
                to_json(result.metrics),
                result.id,
                int(result.status == "down"),
                int(result.status != "down"),
                encode_result(result).started_at,
            ),
        )
    db.execute("COMMIT")
    db.close()
    return newest


def rows_of(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as connection:
        return list(connection.execute(sql))


async def test_a_version_2_database_keeps_every_row_and_answers_the_same(tmp_path: Path) -> None:
    results = odd_results()
    path = tmp_path / "prober.db"
    newest = write_v2(path, results)
    columns = 'rowid, id, "check", location, type, started_at, status, duration_ms, error, metrics, assertions, ' + (
        "artifacts, details"
    )
    before = rows_of(path, f"SELECT {columns} FROM results ORDER BY rowid")
    hourly_before = rows_of(path, "SELECT * FROM rollups_hourly ORDER BY 1, 2, 3")
    assert len(before) == len(results)

    config = write_config(tmp_path, CONFIG)
    async with Store(path, synchronous="NORMAL") as store:
        # every result reads back exactly as written (the JSON form is the contract)
        for result in results:
            stored = store.result(result.id)
            assert stored is not None, result.id
            assert stored.to_json() == result.to_json()
        for check, location in (("api", "eu"), ("api", "us"), ("page", "default")):
            mine = sorted(
                (r for r in results if (r.check, r.location) == (check, location)),
                key=lambda r: r.started_at,
                reverse=True,
            )
            listed = store.results(check, location=location, limit=10_000)
            assert [r.to_json() for r in listed] == [r.to_json() for r in mine]
        # current states written by version 2 (metrics as an object) read as they were, and so do new ones
        for state in store.current():
            assert (state["check"], state["location"]) in newest
            assert state["metrics"] == newest[(state["check"], state["location"])].metrics
        later = Result(
            check="fresh", type="http", location="default", started_at=NOW, duration_ms=1.0, status="up",
            metrics={"status": 200, "latency": 0.001, "extra": [1, 2]},
        )  # fmt: skip
        await store.write(later)
        assert store.current("fresh")[0]["metrics"] == later.metrics
        # the feed's windows (daily rollups) agree with the hourly rollups; so do the daily bars
        async with serve(FakeDaemon(store, config), cache_ttl=0) as client:
            feed = await (await client.get("/api/v1/status")).json()
            history = await (await client.get("/api/v1/history?days=90")).json()
            page = await (await client.get("/api/v1/checks/api")).json()
            listed_json = await (await client.get("/api/v1/checks/page/results?limit=5")).json()
        windows = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400}
        for check in feed["checks"]:
            for name, seconds in windows.items():
                expected = store.uptime(check["name"], seconds, now=NOW)
                shown = check["uptime"][name]
                assert shown == (None if expected is None else round(expected, 4)), (check["name"], name)
        for name, values in history["checks"].items():
            for day_text, value in zip(history["days"], values, strict=True):
                end = datetime.combine(date.fromisoformat(day_text), datetime.min.time(), UTC) + timedelta(
                    seconds=86399
                )
                expected = store.uptime(name, 86399, now=end)
                assert value == (None if expected is None else round(expected, 3)), (name, day_text)
        assert any(value is not None for value in history["checks"]["api"])
        assert page["check"]["name"] == "api" and page["failures"], "the down results are listed with errors"
        newest_page = max((r for r in results if r.check == "page"), key=lambda r: r.started_at)
        assert listed_json["results"][0]["id"] == newest_page.id

    assert rows_of(path, "PRAGMA user_version")[0][0] == SCHEMA_VERSION
    after = rows_of(path, f"SELECT {columns} FROM results ORDER BY rowid")[:-1]  # the last: written after
    assert [row[0] for row in after] == [row[0] for row in before], "every row, under its rowid"
    for old, new in zip(before, after, strict=True):
        assert new[1:6] == old[1:6] and new[6] == old[6] and new[8] == old[8], old
        assert math.isclose(new[7], old[7], abs_tol=5e-4)
        assert json.loads(new[9]) == json.loads(old[9]), "the view shows the metrics as JSON"
        assert json.loads(new[10]) == json.loads(old[10]), "and the assertions"
        assert new[11:] == old[11:]
    assert rows_of(path, "SELECT * FROM rollups_hourly WHERE \"check\" != 'fresh' ORDER BY 1, 2, 3") == hourly_before
    daily = rows_of(
        path,
        'SELECT day, "check", location, count, down, degraded FROM rollups_daily WHERE "check" != \'fresh\' '
        "ORDER BY 1, 2, 3",
    )
    summed: dict[tuple[str, str, str], list[int]] = {}
    for check, location, hour, count, down, degraded, *_ in hourly_before:
        counts = summed.setdefault((hour[:10], check, location), [0, 0, 0])
        counts[0] += count
        counts[1] += down
        counts[2] += degraded
    assert daily == [(*key, *counts) for key, counts in sorted(summed.items())]


def test_assertions_are_stored_once_and_come_back_as_they_were() -> None:
    metrics = {"status": 200, "latency": 0.25, "flag": True, "nan": float("nan"), "zero": -0.0, "text": "a"}
    assertions = [
        Assertion("status", "2xx", 200, True, "expect"),  # the metric's value: not stored again
        Assertion("latency", "< 200ms", 0.25, False, "warn"),
        Assertion("body", "contains 'x'", True, True, "expect"),  # its own ok
        Assertion("json.a", "== 1", 1, True, "expect"),  # a value no metric holds
        Assertion("nan", "< 1", float("nan"), False, "warn"),  # NaN is not equal to itself: kept apart
        Assertion("zero", "== 0", 0.0, True, "expect"),  # 0.0 is not -0.0 in JSON
        Assertion("status", "== 200", 200.0, True, "expect"),  # a float is not the int metric
        Assertion("missing", "exists", None, False, "expect"),
    ]
    shape, values, failed, extra = encode_values(metrics, assertions)
    assert shape.assertions is not None
    assert [entry[3] for entry in shape.assertions][:3] == [0, 1, -1]
    decoded = decode_assertions(shape, json.loads(values), failed, extra)
    assert json.dumps([a.to_json() for a in decoded]) == json.dumps([a.to_json() for a in assertions])
    assert failed == 0b10010010
    assert extra is not None and json.loads(extra)[0] is None, "the status is not stored twice"
