"""Run-to-run tracking of one DASH Representation: is its newest segment new, did its timeline go
backwards, did a segment number change meaning?

`track(previous, look, now)` compares what one look found (the newest segment that exists, where its end
sits on the wall clock, the newest segments' numbers and times, availabilityStartTime) with the state saved
by the previous look at the same Representation, and returns what changed with the state to save next.
The state is a JSON-able dict:

    {"period": "p0", "edge": 1700000004.0, "number": 57, "ast": 1699990000.0, "last_change": 1700000004.1,
     "seen_at": 1700000004.3, "segments": {"56": [5040000, "chunk-56.m4s"], "57": [5130000, "chunk-57.m4s"]}}

Pure: no I/O, no clock (`now` is passed in).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from prober.probes.dash.segments import Segment

__all__ = ["Look", "Tracking", "track", "usable_state"]

_EDGE_TOLERANCE = 0.001
_AST_TOLERANCE = 0.5


@dataclass(frozen=True, slots=True)
class Look:
    """One Representation as one look at the MPD saw it."""

    period: str
    newest: Segment
    edge: float
    """Where the newest segment ends: Unix seconds (live), or seconds of presentation (static)."""
    ast: float | None
    segments: Sequence[Segment] = ()


@dataclass(slots=True)
class Tracking:
    stale_for: float | None
    advanced: bool | None
    regressed: bool
    inconsistencies: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


def _path(url: str) -> str:
    """Segment URLs compared by path: CDN tokens in the query change every run."""
    return urlsplit(url).path


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def usable_state(previous: Any) -> bool:
    return (
        isinstance(previous, Mapping)
        and isinstance(previous.get("edge"), int | float)
        and isinstance(previous.get("last_change"), int | float)
        and isinstance(previous.get("segments"), Mapping)
    )


def _state(look: Look, now: float, last_change: float) -> dict[str, Any]:
    return {
        "period": look.period,
        "edge": look.edge,
        "number": look.newest.number,
        "ast": look.ast,
        "last_change": last_change,
        "seen_at": now,
        "segments": {str(seg.number): [seg.time, _path(seg.url)] for seg in look.segments},
    }


def track(previous: Mapping[str, Any] | None, look: Look, now: float, *, first_stale: float | None = None) -> Tracking:
    """Compare `look` (seen at `now`) with the previous state; a first look has `first_stale` as staleness."""
    if previous is None or not usable_state(previous):
        return Tracking(first_stale, None, False, [], _state(look, now, now - (first_stale or 0.0)))
    reasons: list[str] = []
    old_ast = previous.get("ast")
    moved = isinstance(old_ast, int | float) and look.ast is not None and abs(look.ast - old_ast) > _AST_TOLERANCE
    if moved:
        assert isinstance(old_ast, int | float) and look.ast is not None
        reasons.append(
            f"availabilityStartTime moved from {_when(old_ast)} to {_when(look.ast)}: every segment's time "
            "changed meaning (players following the old one ask for the wrong segments)"
        )
    old_edge = float(previous["edge"])
    advanced = look.edge > old_edge + _EDGE_TOLERANCE
    regressed = look.edge < old_edge - _EDGE_TOLERANCE
    if regressed:
        reasons.append(
            f"the timeline went backwards: its newest segment ({look.newest.number}) now ends "
            f"{old_edge - look.edge:.3f}s before the previous run's newest ({previous.get('number')})"
        )
    if previous.get("period") == look.period and not moved:
        known: Mapping[str, Any] = previous["segments"]
        for seg in look.segments:
            before = known.get(str(seg.number))
            if not isinstance(before, list | tuple) or len(before) != 2:
                continue
            old_time, old_path = before
            if old_time != seg.time:
                reasons.append(
                    f"segment {seg.number} moved from t={old_time} to t={seg.time}: segment numbers changed meaning"
                )
            elif old_path != _path(seg.url):
                reasons.append(f"segment {seg.number} changed URL from {old_path!r} to {_path(seg.url)!r}")
    last_change = now if (advanced or regressed) else float(previous["last_change"])
    return Tracking(max(0.0, now - last_change), advanced, regressed, reasons, _state(look, now, last_change))
