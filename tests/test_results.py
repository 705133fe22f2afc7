"""Results (docs/api.md): ids, timestamps, and the JSON form that scripts, the store and agents rely on."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from prober.results import Assertion, Result, format_timestamp, new_result_id

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _result(**changes: object) -> Result:
    values: dict[str, object] = {
        "check": "api-health",
        "type": "http",
        "location": "eu-west",
        "started_at": datetime(2026, 11, 23, 8, 0, 0, 123456, tzinfo=UTC),
        "duration_ms": 41.7,
        "status": "down",
        "error": "status was 503, expected 2xx",
        "metrics": {"status": 503, "latency": 0.0417, "dns": 0.001, "ttfb": 0.03},
        "assertions": [Assertion("status", "2xx", 503, False, "expect")],
        "artifacts": ["artifacts/api-health.png"],
        "details": {"attempts": 2},
    }
    values.update(changes)
    return Result(**values)  # type: ignore[arg-type]


def test_result_ids_are_unique_uuid7() -> None:
    ids = [new_result_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_result_ids_carry_the_current_millisecond_and_sort_by_time() -> None:
    before = time.time_ns() // 1_000_000
    first = new_result_id()
    time.sleep(0.003)
    second = new_result_id()
    after = time.time_ns() // 1_000_000
    millis = uuid.UUID(first).int >> 80
    assert before <= millis <= after
    assert first < second


def test_every_result_gets_its_own_id() -> None:
    assert _result().id != _result().id


def test_started_at_is_utc_with_milliseconds_and_z() -> None:
    data = _result().to_json()
    assert data["started_at"] == "2026-11-23T08:00:00.123Z"
    assert TIMESTAMP.match(format_timestamp(datetime.now(UTC)))


def test_a_timestamp_in_another_zone_is_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_timestamp(datetime(2026, 11, 23, 9, 0, 0, 5000, tzinfo=paris)) == "2026-11-23T08:00:00.005Z"


def test_to_json_has_exactly_the_fields_of_the_contract() -> None:
    data = _result(details={}).to_json()
    assert list(data) == [
        "id",
        "check",
        "type",
        "location",
        "started_at",
        "duration_ms",
        "status",
        "error",
        "metrics",
        "assertions",
        "artifacts",
    ]
    assert data["assertions"] == [
        {"metric": "status", "condition": "2xx", "actual": 503, "ok": False, "level": "expect"}
    ]
    assert _result().to_json()["details"] == {"attempts": 2}


def test_to_json_and_from_json_round_trip_through_text() -> None:
    original = _result()
    text = json.dumps(original.to_json())
    restored = Result.from_json(json.loads(text))
    assert restored.to_json() == original.to_json()
    assert restored.id == original.id
    assert restored.started_at.tzinfo is not None
    assert restored.started_at.utcoffset() == timedelta(0)
    assert restored.assertions == original.assertions


def test_an_up_result_without_error_round_trips() -> None:
    original = _result(status="up", error=None, assertions=[], artifacts=[], details={})
    restored = Result.from_json(json.loads(json.dumps(original.to_json())))
    assert restored.to_json() == original.to_json()
    assert restored.error is None


def test_from_json_rejects_an_unknown_status() -> None:
    data = _result().to_json()
    data["status"] = "sideways"
    with pytest.raises(ValueError, match="status must be one of up, degraded, down, got 'sideways'"):
        Result.from_json(data)
