"""Ingest trusts nothing it is sent: every malformed or out-of-place result is a 400 naming it, never a 500,
and nothing of a refused batch is stored. Each hostile push has its healthy twin."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_helpers import NOW, fake_daemon, result, serve

from prober.api.ingest import REJECTED

CONFIG = """
version: 1
retention: {raw: 7d}
ingest:
  tokens: {eu-west: "eu-secret-token-1234"}
checks:
  - {name: api, type: http, url: "http://127.0.0.1:9/", locations: [default, eu-west]}
  - {name: hub-only, type: http, url: "http://127.0.0.1:9/", locations: [default]}
"""
EU = {"Authorization": "Bearer eu-secret-token-1234", "Content-Type": "application/json"}


def good(**changes: Any) -> dict[str, Any]:
    item = result("api", "up", location="eu-west", at=NOW - timedelta(seconds=30)).to_json()
    item.update(changes)
    return item


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


HOSTILE: list[tuple[str, Any, str, str]] = [
    ("future", good(started_at="2099-01-01T00:00:00Z"), "more than 5 minutes in the future", "time_range"),
    ("year 9999", good(started_at="9999-12-31T23:59:59Z"), "in the future", "time_range"),
    ("year 0001", good(started_at="0001-01-01T00:00:00Z"), "older than this hub keeps raw results", "time_range"),
    ("too old", good(started_at=(NOW - timedelta(days=8)).isoformat()), "older than this hub keeps", "time_range"),
    ("bad time", good(started_at="yesterday"), "started_at must be an ISO 8601 time", "malformed"),
    (
        "unknown check",
        good(check="nobody-defined-this"),
        "'nobody-defined-this' is not defined on this hub",
        "unknown_check",
    ),
    (
        "other location's check",
        good(check="hub-only"),
        "'hub-only' is not defined on this hub for location 'eu-west'",
        "unknown_check",
    ),
    ("wrong type", good(type="tls"), "is a http check on this hub, not tls", "unknown_check"),
    ("negative duration", good(duration_ms=-1), "duration_ms must be between", "malformed"),
    ("string duration", good(duration_ms="fast"), "duration_ms must be a finite number", "malformed"),
    ("bool duration", good(duration_ms=True), "duration_ms must be a finite number", "malformed"),
    ("bad status", good(status="sideways"), "status must be one of up, degraded, down", "malformed"),
    ("metrics a list", good(metrics=[1, 2]), "metrics and details must be objects", "malformed"),
    ("deep metrics", good(metrics=deep(40)), "nested deeper than 32 levels", "malformed"),
    ("huge error", good(status="down", error="x" * 100_000), "error is 100000 characters long", "malformed"),
    ("error not text", good(status="down", error={"a": 1}), "error must be a non-empty string", "malformed"),
    ("bad assertion", good(assertions=[{"metric": "status", "ok": "yes"}]), "assertions[0]", "malformed"),
    (
        "assertion junk key",
        good(assertions=[{"metric": "s", "condition": "c", "actual": 1, "ok": True, "level": "expect", "x": 1}]),
        "assertions[0]",
        "malformed",
    ),
    ("artifacts junk", good(artifacts=[{"a": 1}]), "artifacts must be a list of file names", "malformed"),
    ("id not text", good(id=12), "id must be a non-empty string", "malformed"),
    ("long id", good(id="x" * 500), "id is 500 characters long", "malformed"),
    ("not an object", [1, 2], "expected an object, got list", "malformed"),
]


@pytest.mark.parametrize(("label", "item", "message", "reason"), HOSTILE, ids=[case[0] for case in HOSTILE])
async def test_a_hostile_result_is_400_naming_it_and_nothing_of_the_batch_is_stored(
    tmp_path: Path, label: str, item: Any, message: str, reason: str
) -> None:
    healthy = good(id="0193aaaa-0000-7000-8000-000000000001")
    async with fake_daemon(tmp_path, CONFIG) as daemon:
        async with serve(daemon) as client:
            before = REJECTED[reason]
            answer = await client.post("/api/v1/ingest", json={"results": [healthy, item]}, headers=EU)
            text = (await answer.json())["error"]
            assert answer.status == 400, text
            assert "results[1]" in text and message in text, text
            assert "nothing of this batch was stored" in text
            assert REJECTED[reason] == before + 1
            metrics = await (await client.get("/metrics")).text()
        assert daemon.accepted == []
        assert daemon.store.result(healthy["id"]) is None
    assert f'prober_ingest_rejected_total{{reason="{reason}"}}' in metrics


async def test_the_healthy_twins_are_accepted(tmp_path: Path) -> None:
    twins = [
        good(id="0193aaaa-0000-7000-8000-000000000010"),
        good(id="0193aaaa-0000-7000-8000-000000000011", started_at=(NOW + timedelta(minutes=4)).isoformat()),
        good(id="0193aaaa-0000-7000-8000-000000000012", started_at=(NOW - timedelta(days=6)).isoformat()),
        good(id="0193aaaa-0000-7000-8000-000000000013", metrics={"json": deep(20)}, status="down", error="boom"),
        good(id="0193aaaa-0000-7000-8000-000000000014", started_at="2026-11-23T12:00:00"),  # naive = UTC
    ]
    async with fake_daemon(tmp_path, CONFIG) as daemon, serve(daemon) as client:
        answer = await client.post("/api/v1/ingest", json={"results": twins}, headers=EU)
        assert answer.status == 200, await answer.text()
        assert await answer.json() == {"accepted": 5, "duplicates": 0}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"results": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", "nested too deeply"),
        (b'{"results": [{"id": "a", "duration_ms": NaN}]}', "NaN is not a JSON number"),
        (b'{"results": [{"id": "a", "duration_ms": Infinity}]}', "Infinity is not a JSON number"),
        (b"\xff\xfe{}", "the body is not JSON"),
        (b'{"results": 5}', 'expected a JSON object {"results": [...]}'),
        (b"[]", 'expected a JSON object {"results": [...]}'),
    ],
)
async def test_a_body_that_is_not_acceptable_json_is_400_not_500(tmp_path: Path, raw: bytes, message: str) -> None:
    async with fake_daemon(tmp_path, CONFIG) as daemon:
        async with serve(daemon) as client:
            answer = await client.post("/api/v1/ingest", data=raw, headers=EU)
            assert answer.status == 400
            assert message in (await answer.json())["error"]
        assert daemon.accepted == []


async def test_a_result_stamped_in_2099_cannot_pin_the_feed_down(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG) as daemon:
        async with serve(daemon) as client:
            stamped = good(
                id="0193aaaa-0000-7000-8000-000000000099", status="down", error="x", started_at="2099-01-01T00:00:00Z"
            )
            answer = await client.post("/api/v1/ingest", data=json.dumps({"results": [stamped]}), headers=EU)
            assert answer.status == 400
            fresh = good(id="0193aaaa-0000-7000-8000-000000000098")
            assert (await client.post("/api/v1/ingest", json={"results": [fresh]}, headers=EU)).status == 200
        states = daemon.store.current("api")
        assert [(state["location"], state["status"]) for state in states] == [("eu-west", "up")]
