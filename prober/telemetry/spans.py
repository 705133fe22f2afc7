"""One Result (with its trace context and timeline) -> the OpenTelemetry spans of that run.

The run's span carries the ids the probe already sent as `traceparent`, the check's identity
(`prober.check`, `prober.type`, `prober.location`, `prober.status`), the target, and a down result as
span status ERROR with `error.type`. Each phase the probe timed becomes a child span with its real start
and end; a phase with `http.request.method` is an HTTP client span (semantic conventions). Every string
passes the redaction wall (`prober.redact`): the runner already scrubbed the check's own secrets, and here
every secret the process knows (`LOG_SECRETS`) and every URL's credentials are masked once more.

It builds spans and nothing else: no queue, no network, no clock (times come with the Result).
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from prober.redact import LOG_SECRETS, redact_url
from prober.results import Result
from prober.timeline import Phase

__all__ = ["result_spans"]

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_URL_KEYS = frozenset({"url.full", "prober.target"})


def _clean(key: str, value: Any) -> Any:
    """An attribute value as OTel takes it (str, bool, int, float), scrubbed of secrets."""
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    if key in _URL_KEYS or "://" in text:
        text = redact_url(text)
    return LOG_SECRETS.text(text)


def _attributes(raw: dict[str, Any]) -> dict[str, Any]:
    return {key: _clean(key, value) for key, value in raw.items() if value is not None}


def _error_type(result: Result) -> str:
    """A low-cardinality name for why a run is down (`error.type`): what a child span says, else the kind."""
    for phase in result.timeline.phases if result.timeline else ():
        kind = phase.attributes.get("error.type")
        if kind:
            return str(kind)
    if result.error and result.error.startswith("timed out"):
        return "timeout"
    if any(not item.ok and item.level == "expect" for item in result.assertions):
        return "assertion"
    return "probe_error"


def _child(phase: Phase, result: Result, parent: SpanContext, bounds: tuple[int, int], **common: Any) -> ReadableSpan:
    assert result.timeline is not None
    low, high = bounds
    start = min(max(result.timeline.wall_ns(phase.start), low), high)
    end = min(max(result.timeline.wall_ns(phase.end), start), high)
    raw = dict(phase.attributes)
    client = "http.request.method" in raw
    if client:
        raw.setdefault("user_agent.synthetic.type", "test")
    status = Status(StatusCode.UNSET)
    if phase.error is not None:
        status = Status(StatusCode.ERROR, _clean("error", phase.error))
        raw.setdefault("error.type", "error")
    context = SpanContext(parent.trace_id, int.from_bytes(os.urandom(8), "big") or 1, False, _SAMPLED)
    return ReadableSpan(
        name=phase.name,
        context=context,
        parent=parent,
        attributes=_attributes(raw),
        kind=SpanKind.CLIENT if client else SpanKind.INTERNAL,
        status=status,
        start_time=start,
        end_time=end,
        **common,
    )


def result_spans(
    result: Result, target: str | None, resource: Resource, scope: InstrumentationScope
) -> list[ReadableSpan]:
    """The run's span first, then one child span per timed phase. Empty without a trace context."""
    trace = result.trace
    if trace is None:
        return []
    start = int(result.started_at.timestamp() * 1e9)
    end = start + int(result.duration_ms * 1e6)
    context = SpanContext(trace.trace_id, trace.span_id, False, _SAMPLED)
    raw: dict[str, Any] = {
        "prober.check": result.check,
        "prober.type": result.type,
        "prober.location": result.location,
        "prober.status": result.status,
        "prober.result_id": result.id,
        "user_agent.synthetic.type": "test",
    }
    if target:
        raw["prober.target"] = target
        if target.startswith(("http://", "https://", "ws://", "wss://")):
            raw["url.full"] = target
    status = Status(StatusCode.UNSET)
    if result.status == "down":
        raw["error.type"] = _error_type(result)
        status = Status(StatusCode.ERROR, _clean("error", result.error or "down"))
    common: dict[str, Any] = {"resource": resource, "instrumentation_scope": scope}
    spans = [
        ReadableSpan(
            name=f"{result.type} {result.check}",
            context=context,
            attributes=_attributes(raw),
            kind=SpanKind.INTERNAL,
            status=status,
            start_time=start,
            end_time=end,
            **common,
        )
    ]
    if result.timeline is not None:
        spans.extend(_child(phase, result, context, (start, end), **common) for phase in result.timeline.phases)
    return spans
