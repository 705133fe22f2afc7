"""What the hub accepts from an agent: every pushed result checked field by field before anything is stored.

An agent is trusted only with its own location, and even a well-meaning one can be broken (a clock in 2099,
a check file from another deployment). So a result is refused, naming it and saying why, when:

- it is not a well-formed result: a wrong type or missing field, a NaN/Infinity or negative duration,
  a status other than up/degraded/down, JSON nested deeper than MAX_JSON_DEPTH, text beyond its size;
- its check is not one this hub defines for that location (it would otherwise be stored and exported as a
  `probe_success 0` series nobody configured), or its type differs from the hub's definition;
- it started more than MAX_FUTURE in the future (it would stay "latest" for ever), or longer ago than the
  hub keeps raw results (it would be pruned at once, after having moved the current state backwards).

Pure functions: no I/O, no clock of its own (the caller passes `now`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from prober.results import STATUSES, Assertion, Result

__all__ = ["MAX_FUTURE", "MAX_JSON_DEPTH", "Rejected", "parse_result", "reject_constant"]

MAX_FUTURE = timedelta(minutes=5)
MAX_JSON_DEPTH = 32
MAX_TEXT = 64 * 1024
"""Characters of one text field (an error, a metric value); results are small, a huge field is an attack."""
MAX_DURATION_MS = 7 * 86400 * 1000.0
LEVELS = ("expect", "warn")


class Rejected(ValueError):
    """A result the hub refuses; `reason` is the label of `prober_ingest_rejected_total`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def reject_constant(name: str) -> float:
    """`json.loads(parse_constant=...)`: NaN, Infinity and -Infinity are not JSON and are refused."""
    raise ValueError(f"{name} is not a JSON number")


def _depth_ok(value: Any, limit: int) -> bool:
    """No object or array nested `limit` levels deep. Only containers are visited (a result is mostly scalars)."""
    if not isinstance(value, dict | list):
        return True
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth >= limit:
            return False
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return True


def _text(data: Mapping[str, Any], key: str, *, required: bool = True, limit: int = 200) -> str | None:
    if required and key not in data:
        raise Rejected("malformed", f"missing key {key!r}")
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise Rejected("malformed", f"{key} must be a non-empty string, got {_show(value)}")
    if len(value) > limit:
        raise Rejected("malformed", f"{key} is {len(value)} characters long; at most {limit} are accepted")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:50] + "…"


def _plain(value: Any) -> bool:
    """True when `value` holds no non-finite float, over-long text or non-string key: the common case, checked
    without building a path per value (`_finite_numbers` then names the offending one)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    return False
                if isinstance(child, dict | list):
                    stack.append(child)
                elif isinstance(child, float):
                    if not math.isfinite(child):
                        return False
                elif isinstance(child, str) and len(child) > MAX_TEXT:
                    return False
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif isinstance(item, str) and len(item) > MAX_TEXT:
            return False
    return True


def _finite_numbers(value: Any, where: str) -> None:
    if _plain(value):
        return
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise Rejected("malformed", f"{path} is {item}, not a finite number")
        if isinstance(item, str) and len(item) > MAX_TEXT:
            raise Rejected("malformed", f"{path} is {len(item)} characters long; at most {MAX_TEXT} are accepted")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise Rejected("malformed", f"{path} has a key that is not a string")
                stack.append((child, f"{path}.{key}"))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{index}]") for index, child in enumerate(item))


def _started_at(data: Mapping[str, Any]) -> datetime:
    raw = data.get("started_at")
    if not isinstance(raw, str) or len(raw) > 40:
        raise Rejected("malformed", f"started_at must be an ISO 8601 time, got {_show(raw)}")
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise Rejected("malformed", f"started_at must be an ISO 8601 time, got {_show(raw)}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is a valid time whose UTC date is before year 1
        side = "before year 1" if moment.year == 1 else "after year 9999"
        raise Rejected("time_range", f"started_at {_show(raw)} is out of range: in UTC it falls {side}") from None


def _assertions(raw: Any) -> list[Assertion]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise Rejected("malformed", f"assertions must be a list, got {_show(raw)}")
    assertions = []
    for index, item in enumerate(raw):
        where = f"assertions[{index}]"
        if not isinstance(item, dict) or set(item) - {"metric", "condition", "actual", "ok", "level"}:
            raise Rejected("malformed", f"{where} must be an object with metric, condition, actual, ok, level")
        metric, condition = item.get("metric"), item.get("condition")
        if not isinstance(metric, str) or not isinstance(condition, str):
            raise Rejected("malformed", f"{where}: metric and condition must be strings")
        if not isinstance(item.get("ok"), bool) or item.get("level") not in LEVELS:
            raise Rejected("malformed", f"{where}: ok must be true or false and level expect or warn")
        assertions.append(Assertion(metric, condition, item.get("actual"), item["ok"], item["level"]))
    return assertions


def parse_result(
    data: Any,
    *,
    location: str,
    defined: Mapping[str, tuple[str, frozenset[str]]],
    now: datetime,
    keep_raw: timedelta,
) -> Result:
    """One pushed result, validated; raise Rejected with the reason and a sentence.

    defined   check name -> (type, locations) as the hub's configuration has them
    """
    if not isinstance(data, dict):
        raise Rejected("malformed", f"expected an object, got {type(data).__name__}")
    if not _depth_ok(data, MAX_JSON_DEPTH):
        raise Rejected("malformed", f"nested deeper than {MAX_JSON_DEPTH} levels")
    result_id = _text(data, "id", limit=64)
    check = _text(data, "check")
    check_type = _text(data, "type", limit=32)
    where = _text(data, "location")
    assert result_id is not None and check is not None and check_type is not None and where is not None
    if where != location:
        raise Rejected("wrong_location", f"it is for location {where!r}, but this token belongs to {location!r}")
    known = defined.get(check)
    if known is None or location not in known[1]:
        raise Rejected(
            "unknown_check",
            f"check {check!r} is not defined on this hub for location {location!r} "
            "(deploy the same check files to the hub and its agents)",
        )
    if check_type != known[0]:
        raise Rejected("unknown_check", f"check {check!r} is a {known[0]} check on this hub, not {check_type}")
    started = _started_at(data)
    if started > now + MAX_FUTURE:
        raise Rejected(
            "time_range",
            f"started_at {started:%Y-%m-%dT%H:%M:%SZ} is more than 5 minutes in the future "
            "(is the agent's clock right?)",
        )
    if started < now - keep_raw:
        raise Rejected(
            "time_range",
            f"started_at {started:%Y-%m-%dT%H:%M:%SZ} is older than this hub keeps raw results "
            f"({keep_raw.total_seconds() / 86400:g} days)",
        )
    duration = data.get("duration_ms")
    if isinstance(duration, bool) or not isinstance(duration, int | float) or not math.isfinite(duration):
        raise Rejected("malformed", f"duration_ms must be a finite number, got {_show(duration)}")
    if not 0 <= duration <= MAX_DURATION_MS:
        raise Rejected("malformed", f"duration_ms must be between 0 and {MAX_DURATION_MS:.0f}, got {duration}")
    status = data.get("status")
    if status not in STATUSES:
        raise Rejected("malformed", f"status must be one of up, degraded, down, got {_show(status)}")
    error = _text(data, "error", required=False, limit=MAX_TEXT)
    metrics, details = data.get("metrics") or {}, data.get("details") or {}
    if not isinstance(metrics, dict) or not isinstance(details, dict):
        raise Rejected("malformed", "metrics and details must be objects")
    artifacts = data.get("artifacts") or []
    if not isinstance(artifacts, list) or not all(isinstance(name, str) and len(name) < 256 for name in artifacts):
        raise Rejected("malformed", "artifacts must be a list of file names")
    _finite_numbers(metrics, "metrics")
    _finite_numbers(details, "details")
    assertions = _assertions(data.get("assertions"))
    return Result(
        id=result_id,
        check=check,
        type=check_type,
        location=where,
        started_at=started,
        duration_ms=float(duration),
        status=status,
        error=error,
        metrics=dict(metrics),
        assertions=assertions,
        artifacts=list(artifacts),
        details=dict(details),
    )
