"""Results: what one run of one check found. Plain data, no I/O.

A Result is the unit that flows from the runner to the table, the store, the alerts and the API, and
its JSON form (`to_json`) is the contract of docs/api.md. Ids are UUIDv7 so they sort by time and a
result delivered twice (agents retrying a push) is stored once.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from prober.timeline import Timeline, TraceContext

__all__ = ["STATUSES", "Assertion", "Level", "Result", "Status", "format_timestamp", "new_result_id"]

Status = Literal["up", "degraded", "down"]
Level = Literal["expect", "warn"]
STATUSES: tuple[Status, ...] = ("up", "degraded", "down")


def new_result_id() -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then randomness."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    text = f"{value:032x}"  # uuid.UUID(int=value)'s str, without importing uuid (4 ms of every start)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a `Z`, as every result and API response prints times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(slots=True)
class Assertion:
    """One evaluated condition: which metric, the condition as written, the value seen, pass or fail."""

    metric: str
    condition: str
    actual: Any
    ok: bool
    level: Level

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "condition": self.condition,
            "actual": self.actual,
            "ok": self.ok,
            "level": self.level,
        }


@dataclass(slots=True)
class Result:
    """One run of one check at one location."""

    check: str
    type: str
    location: str
    started_at: datetime
    duration_ms: float
    status: Status
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    assertions: list[Assertion] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_result_id)
    trace: TraceContext | None = field(default=None, compare=False, repr=False)
    """The run's trace context when tracing is on; never stored or sent (not in `to_json`)."""
    timeline: Timeline | None = field(default=None, compare=False, repr=False)
    """The phases the probe timed, for the exported spans; never stored or sent."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "check": self.check,
            "type": self.type,
            "location": self.location,
            "started_at": format_timestamp(self.started_at),
            "duration_ms": round(self.duration_ms, 3),
            "status": self.status,
            "error": self.error,
            "metrics": self.metrics,
            "assertions": [assertion.to_json() for assertion in self.assertions],
            "artifacts": self.artifacts,
        }
        if self.details:
            data["details"] = self.details
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        """Inverse of `to_json`, for results read back from the store or pushed by an agent."""
        started = datetime.fromisoformat(str(data["started_at"]).replace("Z", "+00:00"))
        status = data["status"]
        if status not in STATUSES:
            raise ValueError(f"status must be one of up, degraded, down, got {status!r}")
        return cls(
            id=str(data["id"]),
            check=str(data["check"]),
            type=str(data["type"]),
            location=str(data["location"]),
            started_at=started.astimezone(UTC),
            duration_ms=float(data["duration_ms"]),
            status=status,
            error=data.get("error"),
            metrics=dict(data.get("metrics") or {}),
            assertions=[Assertion(**item) for item in data.get("assertions") or []],
            artifacts=list(data.get("artifacts") or []),
            details=dict(data.get("details") or {}),
        )
