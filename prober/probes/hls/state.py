"""Run-to-run tracking of one HLS media playlist: freshness, sequence numbers, consistency.

`track(previous, playlist, now)` compares a freshly parsed playlist with the state saved after the
previous look at the same variant and returns what changed (a new segment appeared, a sequence went
backwards, a media sequence number changed URI, discontinuity number or PROGRAM-DATE-TIME, the target
duration changed) together with the state to save for next time. The state is a JSON-able dict, so any
StateStore can keep it:

    {"media_sequence": 120, "discontinuity_sequence": 3, "target_duration": 2, "end_sequence": 126,
     "last_change": 1700000000.0, "seen_at": 1700000004.0, "newest_pdt": 1699999998.0,
     "segments": {"124": ["seg124.ts", 3, 1699999996.0], "125": ["seg125.ts", 3, 1699999998.0]}}

Pure: it never does I/O and never reads a clock (`now` is passed in), so every rule is testable alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prober.probes.hls.playlist import MediaPlaylist, format_pdt

__all__ = ["Tracking", "pdt_staleness", "track", "usable_state"]

_KEEP_SEGMENTS = 40
_PDT_TOLERANCE = 0.5
_STATE_KEYS = ("media_sequence", "discontinuity_sequence", "target_duration", "end_sequence", "last_change")


@dataclass(slots=True)
class Tracking:
    """What one look at a variant found, compared with the previous look."""

    stale_for: float | None
    """Seconds since a new segment last appeared; None when nothing tells (a first look without PDT)."""
    advanced: bool | None
    """A new segment appeared since the previous look; None on a first look."""
    regressed: bool
    inconsistencies: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    part_stale_for: float | None = None
    """LL-HLS: seconds since a new part (or segment) last appeared; None on a first look or without parts."""


def pdt_staleness(playlist: MediaPlaylist, now: float) -> float | None:
    """Seconds since the newest segment ended by its PROGRAM-DATE-TIME (never negative); None without PDT."""
    newest = playlist.newest
    if newest is None or newest.pdt is None:
        return None
    return max(0.0, now - (newest.pdt + newest.duration))


def _strip_query(uri: str) -> str:
    """Segment URIs compared without query strings: CDN tokens change every run, the path does not."""
    return uri.split("?", 1)[0].split("#", 1)[0]


def usable_state(previous: Any) -> bool:
    """The saved state of a variant has everything `track` compares against."""
    return (
        isinstance(previous, Mapping)
        and all(isinstance(previous.get(key), int | float) for key in _STATE_KEYS)
        and isinstance(previous.get("segments"), Mapping)
    )


def _compare_segments(previous: Mapping[str, Any], playlist: MediaPlaylist) -> list[str]:
    reasons: list[str] = []
    known: Mapping[str, Any] = previous["segments"]
    numbers = [int(key) for key in known if key.isdigit()]
    if not numbers:
        return reasons
    # Only the sequence numbers the previous look kept can be compared: slice them out of a long playlist.
    start = max(0, min(numbers) - playlist.media_sequence)
    stop = max(0, max(numbers) - playlist.media_sequence + 1)
    for segment in playlist.segments[start:stop]:
        before = known.get(str(segment.sequence))
        if not isinstance(before, list | tuple) or len(before) != 3:
            continue
        old_uri, old_disc, old_pdt = before
        uri = _strip_query(segment.uri)
        if old_uri != uri:
            reasons.append(
                f"media sequence {segment.sequence} changed URI from {old_uri!r} to {uri!r} (origin out of sync)"
            )
        if old_disc != segment.discontinuity:
            why = (
                "the discontinuity sequence was incremented although no discontinuity left the playlist"
                if segment.discontinuity > old_disc
                else "the discontinuity sequence was not incremented when a discontinuity left the playlist"
            )
            reasons.append(
                f"media sequence {segment.sequence} moved from discontinuity {old_disc} to "
                f"{segment.discontinuity}: {why}"
            )
        if isinstance(old_pdt, int | float) and segment.pdt is not None and abs(segment.pdt - old_pdt) > _PDT_TOLERANCE:
            direction = "backwards" if segment.pdt < old_pdt else "forwards"
            reasons.append(
                f"media sequence {segment.sequence}'s PROGRAM-DATE-TIME moved {direction} from "
                f"{format_pdt(old_pdt)} to {format_pdt(segment.pdt)}"
            )
    return reasons


def _part_position(playlist: MediaPlaylist) -> list[int]:
    """Where the LL-HLS stream is: [segments so far, parts of the segment in progress]; grows with every part."""
    return [playlist.end_sequence, playlist.parts_in_progress]


def _new_state(
    playlist: MediaPlaylist,
    now: float,
    last_change: float,
    part_change: float | None = None,
    part_position: list[int] | None = None,
) -> dict[str, Any]:
    newest = playlist.newest
    extra: dict[str, Any] = {}
    if playlist.low_latency:
        extra = {
            "part_position": _part_position(playlist) if part_position is None else part_position,
            "part_change": now if part_change is None else part_change,
        }
    return extra | {
        "media_sequence": playlist.media_sequence,
        "discontinuity_sequence": playlist.discontinuity_sequence,
        "target_duration": playlist.target_duration,
        "end_sequence": playlist.end_sequence,
        "last_change": last_change,
        "seen_at": now,
        "newest_pdt": newest.pdt if newest is not None else None,
        "segments": {
            str(segment.sequence): [_strip_query(segment.uri), segment.discontinuity, segment.pdt]
            for segment in playlist.segments[-_KEEP_SEGMENTS:]
        },
    }


def track(
    previous: Mapping[str, Any] | None,
    playlist: MediaPlaylist,
    now: float,
    *,
    first_stale: float | None = None,
    parts: bool = True,
) -> Tracking:
    """Compare `playlist` (seen at `now`, Unix seconds) with the previous state of the same variant.

    Without a usable previous state this is a first look: `first_stale` (an estimate such as the age of
    the newest segment by PROGRAM-DATE-TIME) becomes `stale_for`, and the next look counts from it.

    `parts=False` when the look tells nothing about LL-HLS parts (a blocking request for the next segment
    that got no answer: it proves no segment appeared, while parts may have): the previous part position
    and time are kept, and `part_stale_for` is None.
    """
    if not usable_state(previous):
        stale = first_stale
        return Tracking(
            stale_for=stale,
            advanced=None,
            regressed=False,
            inconsistencies=list(playlist.problems),
            state=_new_state(playlist, now, now - (stale or 0.0)),
        )
    assert previous is not None
    reasons = list(playlist.problems)
    notes: list[str] = []
    regressed = False
    if playlist.media_sequence < previous["media_sequence"]:
        regressed = True
        reasons.append(f"media sequence went backwards from {previous['media_sequence']} to {playlist.media_sequence}")
    if playlist.discontinuity_sequence < previous["discontinuity_sequence"]:
        regressed = True
        reasons.append(
            f"discontinuity sequence went backwards from {previous['discontinuity_sequence']} to "
            f"{playlist.discontinuity_sequence}"
        )
    advanced = playlist.end_sequence > previous["end_sequence"]
    jump = playlist.media_sequence - previous["end_sequence"]
    if jump > 0:
        notes.append(f"media sequence jumped forward by {jump} segments past the previous window")
    if playlist.target_duration != previous["target_duration"]:
        reasons.append(f"target duration changed from {previous['target_duration']}s to {playlist.target_duration}s")
    if not regressed:
        reasons.extend(_compare_segments(previous, playlist))
        newest = playlist.newest
        old_newest = previous.get("newest_pdt")
        old_newest_gone = previous["end_sequence"] - 1 < playlist.media_sequence
        if (
            advanced
            and old_newest_gone
            and newest is not None
            and newest.pdt is not None
            and isinstance(old_newest, int | float)
            and newest.pdt < old_newest - _PDT_TOLERANCE
        ):
            reasons.append(
                f"PROGRAM-DATE-TIME went backwards: newest segment {newest.sequence} starts at "
                f"{format_pdt(newest.pdt)}, before the previous look's newest at {format_pdt(old_newest)}"
            )
    last_change = now if (advanced or regressed) else float(previous["last_change"])
    part_stale: float | None = None
    part_change: float | None = None
    kept_position: list[int] | None = None
    old_position, old_part_change = previous.get("part_position"), previous.get("part_change")
    if playlist.low_latency and isinstance(old_position, list) and isinstance(old_part_change, int | float):
        if parts:
            moved = _part_position(playlist) > old_position or regressed
            part_change = now if moved else float(old_part_change)
            part_stale = max(0.0, now - part_change)
        else:
            part_change, kept_position = float(old_part_change), old_position
    return Tracking(
        stale_for=max(0.0, now - last_change),
        advanced=advanced,
        regressed=regressed,
        inconsistencies=reasons,
        notes=notes,
        state=_new_state(playlist, now, last_change, part_change, kept_position),
        part_stale_for=part_stale,
    )
