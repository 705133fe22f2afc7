"""What the `flv` and `rtmp` check types share: their keys, their default expectations, and turning one
live read into an Observation (the pace metrics of `live`, plus the picture and the sound when `content`
is on, decoded by `content` in a worker thread and compared across runs through the probe state).

Never fetches anything itself (each type reads its own transport) and never judges (conditions do).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from prober.config.models import CheckBase, Duration
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.media.content import (
    ContentOption,
    Decoded,
    UndecodableSegment,
    compare,
    decode_segment,
)
from prober.probes.media.content import default_expect as content_expect
from prober.probes.media.live import LiveRead, gops, summarize

__all__ = ["LiveStreamCheck", "live_default_expect", "observe"]

_STATE_VERSION = 1


class LiveStreamCheck(CheckBase):
    """Keys of a check that reads a live stream continuously for a while (HTTP-FLV, RTMP)."""

    duration: Duration = Field(5.0, description="how long to read the stream each run (at most the timeout)")
    max_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024, description="bytes read per run at most; the read stops there"
    )
    content: ContentOption = Field(
        None, description="true, false or a block of content thresholds (frozen, black, silent)"
    )
    max_stall: Duration = Field(2.0, description="down when no media frame arrived for longer at the end of the read")
    min_timestamp_rate: float = Field(
        0.9, ge=0, le=10, description="down when media timestamps advance slower than this per wall second"
    )

    @field_validator("duration")
    @classmethod
    def _positive_duration(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("duration must be greater than 0, e.g. 5s")
        return value

    def read_for(self) -> float:
        """The wall time of one read: `duration`, but never past the timeout (a second kept to judge)."""
        return max(0.5, min(self.duration, self.timeout - 1.0 if self.timeout > 2.0 else self.timeout / 2))


def live_default_expect(check: LiveStreamCheck) -> dict[str, Any]:
    expect: dict[str, Any] = {
        "first_keyframe": "!= null",
        "timestamp_rate": f">= {check.min_timestamp_rate:g}",
        "stalled_for": f"<= {check.max_stall:g}s",
        "ended": False,
    }
    if check.content is not None:
        expect.update(content_expect(check.content))
    return expect


def _decode_pair(head: bytes | None, tail: bytes | None, max_frames: int) -> tuple[Decoded | None, Decoded | None]:
    """Blocking: decode the head GOP and the tail (worker thread)."""
    first = decode_segment(head, max_frames=max_frames) if head is not None else None
    last = decode_segment(tail, max_frames=max_frames) if tail is not None else None
    return first, last


async def observe(read: LiveRead, check: LiveStreamCheck, ctx: ProbeContext) -> Observation:
    """The Observation of one read: pace metrics always; width/height from the first GOP; content on demand."""
    metrics, details = summarize(read)
    head, tail, between = gops(read)
    settings = check.content
    max_frames = settings.max_frames if settings is not None else 2
    if settings is None:
        tail = None
    try:
        first, last = await asyncio.to_thread(_decode_pair, head, tail, max_frames)
    except UndecodableSegment as exc:
        if settings is not None:
            raise ProbeError(f"the stream cannot be decoded: {exc}", metrics=metrics, details=details) from None
        first, last = None, None
        details.setdefault("notes", []).append(f"the first GOP cannot be decoded: {exc}")
    if first is not None:
        metrics.update(width=first.width, height=first.height)
    else:
        metrics.update(width=None, height=None)
    if settings is None:
        return Observation(metrics=metrics, details=details)
    if first is None:
        metrics.update(has_video=False)
        return Observation(metrics=metrics, details=details)
    saved = await ctx.state.load() or {}
    previous = saved.get("content") if saved.get("version") == _STATE_VERSION else None
    now = time.time()
    found = compare(
        first,
        previous if isinstance(previous, Mapping) else None,
        settings=settings,
        now=now - (last.duration or 0.0 if last is not None else 0.0),
        sequence=0,
        discontinuity=0,
        extinf=first.duration or 0.0,
        between=None,
        resolution=None,
    )
    if last is not None:
        found = compare(
            last,
            found.state,
            settings=settings,
            now=now,
            sequence=1,
            discontinuity=0,
            extinf=last.duration or 0.0,
            between=between,
            resolution=None,
        )
        found.metrics["has_video"] = first.has_video and last.has_video
        found.metrics["has_audio"] = first.has_audio or last.has_audio
    found.state["sequence"] = -1  # the next run's head is not a later segment of this run: no pts_gap across runs
    await ctx.state.save({"version": _STATE_VERSION, "content": found.state})
    for name in ("width", "height", "duration_mismatch"):
        found.metrics.pop(name, None)
    metrics.update(found.metrics)
    if found.notes:
        details.setdefault("notes", []).extend(found.notes)
    return Observation(metrics=metrics, details=details)
