"""What a run measured, moment by moment, and the W3C trace context of the run: plain data, no I/O.

A probe that times its phases (an HTTP request's DNS, connect and TLS, each HLS playlist and segment
fetch, each browser step, each WebSocket connection) records them in `ctx.timeline` with the
`time.perf_counter()` moments it already takes. The runner hands the timeline and the run's
`TraceContext` on with the Result; `prober.telemetry` turns them into child spans of the run's span, with
wall-clock times (`Timeline.wall_ns`). Probes never import OpenTelemetry: a phase is a name, two moments and
a few attributes.

`TraceContext` is the run's trace id and span id, chosen before the probe starts, so the `traceparent`
header a probe sends (`headers()`) names the span that is exported after the run. A disabled timeline
(tracing off) records nothing and costs one attribute read per phase.

Nothing here may be stored, sent or logged by itself, and nothing here judges: timelines are never
written to the database (they are not part of `Result.to_json`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TRACESTATE", "Phase", "Timeline", "TraceContext"]

TRACESTATE = "prober=synthetic"
"""The `tracestate` entry sent with `traceparent`: it names prober as the vendor of the trace."""


@dataclass(frozen=True, slots=True)
class TraceContext:
    """The W3C trace context of one check run: 128-bit trace id, 64-bit span id of the run's span."""

    trace_id: int
    span_id: int

    @classmethod
    def new(cls) -> TraceContext:
        """Random ids (never zero, as W3C Trace Context requires)."""
        trace_id = int.from_bytes(os.urandom(16), "big") or 1
        span_id = int.from_bytes(os.urandom(8), "big") or 1
        return cls(trace_id, span_id)

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-01"

    def headers(self) -> dict[str, str]:
        """The headers a request of this run carries so the target's own traces join the run."""
        return {"traceparent": self.traceparent, "tracestate": TRACESTATE}


@dataclass(slots=True)
class Phase:
    """One timed piece of a run: `start`/`end` are `time.perf_counter()` seconds."""

    name: str
    start: float
    end: float
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(slots=True)
class Timeline:
    """The phases of one run, recorded by the probe (nothing when `enabled` is False)."""

    enabled: bool = False
    phases: list[Phase] = field(default_factory=list)
    origin_perf: float = field(default_factory=time.perf_counter)
    origin_ns: int = field(default_factory=time.time_ns)
    """The same moment read on both clocks, to turn perf_counter seconds into Unix nanoseconds."""

    def add(self, name: str, start: float, end: float, error: str | None = None, **attributes: Any) -> None:
        if self.enabled:
            self.phases.append(Phase(name, start, max(start, end), attributes, error))

    def wall_ns(self, moment: float) -> int:
        """A `perf_counter` moment as Unix nanoseconds."""
        return self.origin_ns + int((moment - self.origin_perf) * 1e9)
