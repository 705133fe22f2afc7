"""Judging a continuous live read (HTTP-FLV, RTMP) the way a viewer experiences it: the metrics and sentences.

A player that opens a live FLV stream waits for the first video keyframe before it can show a picture,
then needs media timestamps to advance at least as fast as the wall clock, or its buffer drains and it
stalls. `LiveRead` collects the tags of one read (with the wall time each arrived) and `summarize` turns
them into the metrics both stream types share:

* `first_byte`, `first_keyframe`: seconds from the request to the first byte and to the first keyframe;
* `timestamp_rate`: media seconds per wall second over the read after the start-up burst (media servers
  send a cached GOP at once when a player joins; that burst says nothing about the live pace);
* `stalled_for`: seconds since the last media tag arrived, at the end of the read;
* `timestamp_gaps`: jumps of a track's timestamps (forward > 1 s beyond the wall time, or backwards);
* `video_fps`, `bitrate`, `audio_present`, `codec`, `audio_codec`, and `ended` (the server closed the
  stream before the read was over).

`gops` cuts the head GOP and the tail (at least the last second) out of the bytes so that
`prober.probes.media.content` can decode them: a picture that moves and has sound.
`live_metric_specs(label)` gives each stream type the metric specifications with sentences that name
it ("HTTP-FLV stream sent no video keyframe within 5s"). Pure: no I/O, no clock, no judging.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from prober.config.conditions import MetricSpec
from prober.config.durations import format_duration
from prober.probes.media.flv import FlvTag, rebuild

__all__ = ["STEADY_AFTER", "LiveRead", "gops", "live_metric_specs", "summarize"]

STEADY_AFTER = 1.0 / 3.0
"""Share of the read (at least 1 s after the first byte) left out of `timestamp_rate`: the start-up burst."""
_GAP = 1.0
"""Seconds a track's timestamps may jump forward beyond the wall time before it counts as a gap."""
_TAIL_SECONDS = 1.0


@dataclass(slots=True)
class LiveRead:
    """What one read of a live stream received."""

    started: float
    """perf_counter when the request (or connection) began."""
    duration: float
    """The wall time the read was meant to last."""
    header: bytes | None = None
    data: bytearray = field(default_factory=bytearray)
    """Every byte received, from the start of the stream (bounded by the probe's max_bytes)."""
    tags: list[FlvTag] = field(default_factory=list)
    first_byte_at: float | None = None
    ended_at: float | None = None
    ended: bool = False
    """The server closed the stream before `duration` was over."""
    truncated: bool = False
    """The read stopped at max_bytes."""
    notes: list[str] = field(default_factory=list)


def _first_keyframe(read: LiveRead) -> float | None:
    for tag in read.tags:
        if tag.kind == "video" and tag.keyframe and not tag.config:
            return tag.arrived_at - read.started
    return None


def _media(read: LiveRead) -> list[FlvTag]:
    return [tag for tag in read.tags if tag.kind != "script" and not tag.config]


def _rate(read: LiveRead, media: list[FlvTag], end: float) -> tuple[float | None, float, float]:
    """(timestamp_rate, media seconds advanced, wall seconds) over the steady part of the read."""
    if read.first_byte_at is None or not media:
        return None, 0.0, 0.0
    span = end - read.first_byte_at
    split = read.first_byte_at + max(1.0, span * STEADY_AFTER)
    if end - split < 0.5:
        split = read.first_byte_at
    wall = end - split
    if wall <= 0:
        return None, 0.0, 0.0
    before = [tag.timestamp for tag in media if tag.arrived_at <= split]
    after = [tag.timestamp for tag in media if tag.arrived_at > split]
    if not after:
        return 0.0, 0.0, wall
    base = max(before) if before else min(after)
    advanced = max(0.0, max(after) - base)
    return round(advanced / wall, 3), advanced, wall


def _gaps(media: list[FlvTag]) -> int:
    gaps = 0
    last: dict[str, FlvTag] = {}
    for tag in media:
        previous = last.get(tag.kind)
        last[tag.kind] = tag
        if previous is None:
            continue
        jump = tag.timestamp - previous.timestamp
        waited = tag.arrived_at - previous.arrived_at
        if jump < -0.1 or jump > waited + _GAP:
            gaps += 1
    return gaps


def summarize(read: LiveRead) -> tuple[dict[str, Any], dict[str, Any]]:
    """The shared metrics of one live read, and details (the numbers behind the pace)."""
    end = read.ended_at if read.ended_at is not None else read.started + read.duration
    media = _media(read)
    video = [tag for tag in media if tag.kind == "video"]
    audio = [tag for tag in media if tag.kind == "audio"]
    rate, advanced, wall = _rate(read, media, end)
    fps: float | None = None
    if len(video) >= 2:
        span = video[-1].timestamp - video[0].timestamp
        fps = round((len(video) - 1) / span, 2) if span > 0 else None
    receiving = end - read.first_byte_at if read.first_byte_at is not None else 0.0
    metrics: dict[str, Any] = {
        "first_byte": None if read.first_byte_at is None else round(read.first_byte_at - read.started, 6),
        "first_keyframe": None if (first := _first_keyframe(read)) is None else round(first, 6),
        "video_fps": fps,
        "audio_present": bool(audio),
        "bitrate": round(len(read.data) * 8 / receiving) if receiving > 0 else None,
        "timestamp_rate": rate,
        "timestamp_gaps": _gaps(media),
        "stalled_for": round(max(0.0, end - (media[-1].arrived_at if media else read.started)), 3),
        "codec": next((tag.codec for tag in video if tag.codec), None),
        "audio_codec": next((tag.codec for tag in audio if tag.codec), None),
        "ended": read.ended,
        "media_bytes": len(read.data),
        "media_advanced": round(advanced, 3),
        "measured_over": round(wall, 3),
    }
    details: dict[str, Any] = {"read_for": round(end - read.started, 3), "tags": len(read.tags)}
    notes = list(read.notes)
    if read.truncated:
        notes.append(f"the read stopped at max_bytes ({len(read.data):,} bytes)")
    if notes:
        details["notes"] = notes
    return metrics, details


def _raw(read: LiveRead, tag: FlvTag) -> bytes:
    """A tag's bytes: `read.data` holds the stream from its first byte, so offsets index it directly."""
    return bytes(read.data[tag.offset : tag.offset + tag.size])


def gops(read: LiveRead) -> tuple[bytes | None, bytes | None, float]:
    """(head, tail, seconds between them) as decodable FLV bytes: the first GOP, and the last GOP that
    starts at least a second before the end. None when there is no keyframe to start from."""
    if read.header is None:
        return None, None, 0.0
    configs = [_raw(read, tag) for tag in read.tags if tag.config]
    media = _media(read)
    keys = [index for index, tag in enumerate(media) if tag.kind == "video" and tag.keyframe]
    if not keys:
        return None, None, 0.0
    last = media[-1].timestamp
    head_end = keys[1] if len(keys) > 1 else len(media)
    head_tags = media[keys[0] : head_end]
    stamps = [media[index].timestamp for index in keys]
    tail_at = max(0, bisect.bisect_right(stamps, last - _TAIL_SECONDS) - 1)
    tail_tags = media[keys[tail_at] :]
    head = rebuild(read.header, configs, [_raw(read, tag) for tag in head_tags])
    if keys[tail_at] == keys[0]:
        return head, None, 0.0
    tail = rebuild(read.header, configs, [_raw(read, tag) for tag in tail_tags])
    between = max(0.0, tail_tags[0].timestamp - head_tags[-1].timestamp)
    return head, tail, between


def _seconds(value: Any) -> str:
    return format_duration(float(value)) if isinstance(value, int | float) else str(value)


def live_metric_specs(label: str) -> dict[str, MetricSpec]:
    """The shared metric specs, with sentences naming the stream type (`HTTP-FLV stream`, `RTMP stream`)."""

    def no_keyframe(actual: Any, condition: str) -> str | None:
        if actual is None:
            return f"{label} sent no video keyframe within the read: viewers see no picture"
        return f"{label} sent its first video keyframe after {_seconds(actual)} (expected {condition})"

    def slow(actual: Any, condition: str, metrics: Mapping[str, Any]) -> str | None:
        if not isinstance(actual, int | float):
            return None
        advanced, over = metrics.get("media_advanced"), metrics.get("measured_over")
        if isinstance(advanced, int | float) and isinstance(over, int | float) and over > 0:
            return (
                f"{label} timestamps advanced {advanced:.1f} s in {over:.1f} s of wall time "
                f"(rate {actual:.2f}, expected {condition}): viewers are buffering"
            )
        return (
            f"{label} timestamps advanced {actual:.2f} s per second of wall time "
            f"(expected {condition}): viewers are buffering"
        )

    def stalled(actual: Any, condition: str) -> str | None:
        if isinstance(actual, int | float):
            return f"{label} has sent no media for {_seconds(actual)} (expected {condition}): the stream has stalled"
        return None

    def ended(actual: Any, condition: str) -> str | None:
        return f"{label} ended: the server closed it during the read" if actual is True else None

    describe: dict[str, Callable[[Any, str], str | None]] = {
        "first_keyframe": no_keyframe,
        "stalled_for": stalled,
        "ended": ended,
    }
    specs = (
        MetricSpec("first_byte", "time from the request to the first byte of the stream", unit="s"),
        MetricSpec("first_keyframe", "time from the request to the first video keyframe (a picture)", unit="s"),
        MetricSpec("video_fps", "video frames per second of media time"),
        MetricSpec("audio_present", "the stream carries audio frames"),
        MetricSpec("bitrate", "bits per second received over the read"),
        MetricSpec("timestamp_rate", "media seconds per wall second after the start-up burst (< 1: viewers buffer)"),
        MetricSpec("timestamp_gaps", "jumps of a track's timestamps: forward beyond the wall time, or back"),
        MetricSpec("stalled_for", "seconds without a media frame at the end of the read", unit="s"),
        MetricSpec("codec", "the video codec (h264, hevc, av1, ...)"),
        MetricSpec("audio_codec", "the audio codec (aac, mp3, ...)"),
        MetricSpec("ended", "the server closed the stream before the read was over"),
        MetricSpec("media_bytes", "bytes of stream read", unit="bytes"),
        MetricSpec("media_advanced", "media seconds gained over the steady part of the read", unit="s"),
        MetricSpec("measured_over", "wall seconds of the steady part of the read (timestamp_rate's span)", unit="s"),
    )
    explains: dict[str, tuple[str, ...]] = {
        "ended": ("stalled_for", "timestamp_rate", "first_keyframe", "has_video", "frozen_for"),
        "stalled_for": ("timestamp_rate",),
        "first_keyframe": ("has_video", "frozen_for", "black_ratio"),
    }
    return {
        spec.name: replace(
            spec,
            describe=describe.get(spec.name),
            describe_with=slow if spec.name == "timestamp_rate" else None,
            explains=explains.get(spec.name, ()),
        )
        for spec in specs
    }
