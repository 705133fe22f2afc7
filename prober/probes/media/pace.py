"""The freshness and pace rules every segmented live stream (HLS, DASH) is judged by.

A live stream is fresh when a new segment appeared within 1.5 x its segment duration (RFC 8216 6.2.1
for HLS; DASH has no such rule of its own, and the same rule reads the same to a viewer), and a segment
downloads faster than real time when its media lasts longer than its download took. Pure.
"""

from __future__ import annotations

__all__ = ["FRESH_FACTOR", "is_fresh", "realtime_ratio"]

FRESH_FACTOR = 1.5
"""A live stream must gain a segment within 1.5 x its (target) segment duration."""


def is_fresh(stale_for: float | None, segment_duration: float) -> bool | None:
    """True when the newest segment appeared within 1.5 x `segment_duration`; None when unknown."""
    if stale_for is None:
        return None
    return stale_for <= FRESH_FACTOR * segment_duration


def realtime_ratio(media_seconds: float, download_seconds: float) -> float | None:
    """Media seconds per second of download (< 1: slower than real time, viewers will buffer)."""
    if media_seconds <= 0 or download_seconds <= 0:
        return None
    return media_seconds / download_seconds
