"""What the picture and the sound show: decoding the newest segment of a variant with PyAV.

A live stream can keep producing fresh segments of a frozen picture, a black screen or silence; every
freshness check misses it, every viewer sees it. `decode_segment(data)` (blocking: the probe runs it in a
worker thread) decodes one segment (with its EXT-X-MAP initialization section in front for fMP4) using
FFmpeg's own libraries through PyAV, no subprocess, and returns a `Decoded`: which streams it has, the
decoded duration, the picture size, and per decoded video frame a small luma thumbnail (64 x 36, 8-bit)
from which black frames and a frozen picture are judged, plus the audio level (RMS in dBFS).

CPU is bounded: one decoding thread, at most `max_frames` video frames (fewer above 1080p: a pixel
budget), `_AUDIO_SECONDS` of audio, every frame scaled down before anything looks at it.
`compare(decoded, previous, ...)` (pure) turns one decoded segment and the state saved by the previous
run into the content metrics (`frozen_for` counts across runs: the previous run's last frame is kept as
a thumbnail) and the state to save.

Never judges up or down: conditions do, with the defaults the probe adds when `content` is on.
"""

from __future__ import annotations

import base64
import io
import math
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from prober.config.models import Duration, StrictModel

__all__ = [
    "ContentOption",
    "ContentSettings",
    "Decoded",
    "UndecodableSegment",
    "compare",
    "decode_segment",
    "default_expect",
]

THUMB_WIDTH = 64
THUMB_HEIGHT = 36
_AUDIO_RATE = 8000
_AUDIO_SECONDS = 30.0
_SILENCE_FLOOR = -120.0
_PTS_WRAP = 2**33 / 90000
_PIXEL_BUDGET = 150 * 1920 * 1080
"""Decoded pixels per segment at most: 150 1080p frames, fewer frames for larger pictures (a 4K or a hostile
8K stream costs no more CPU than a 1080p one)."""
_PTS_TOLERANCE = 0.5
"""Seconds of timestamp jump between consecutive segments that is not yet a gap (EXTINF rounding)."""


class ContentSettings(StrictModel):
    """`content:` thresholds. The defaults are the default expectations when `content: true`."""

    frozen_for: Duration = Field(10.0, gt=0, description="down when the picture has not changed for longer")
    black_ratio: float = Field(0.98, gt=0, le=1, description="down when at least this share of frames is black")
    silence: float = Field(-60.0, le=0, description="audio RMS in dBFS below which a segment is silent")
    black_luma: int = Field(32, ge=0, le=255, description="8-bit luma at or below which a pixel is black")
    tolerance: int = Field(10, ge=0, le=255, description="luma difference a frozen picture may still show")
    max_frames: int = Field(150, ge=2, le=2000, description="video frames decoded per segment at most")


def _content_option(value: Any) -> Any:
    if value is True:
        return {}
    if value is False or value is None:
        return None
    if not isinstance(value, Mapping | ContentSettings):
        raise ValueError(f"expected true, false or a block of thresholds such as {{frozen_for: 20s}}, got {value!r}")
    return value


ContentOption = Annotated[ContentSettings | None, BeforeValidator(_content_option)]
"""The `content:` key of every stream type: `true` (the default thresholds), `false`, or a block of thresholds."""


def default_expect(settings: ContentSettings) -> dict[str, Any]:
    return {
        "has_video": True,
        "frozen_for": f"<= {settings.frozen_for:g}s",
        "black_ratio": f"< {settings.black_ratio:g}",
        "audio_silent": "!= true",
    }


class UndecodableSegment(Exception):
    """FFmpeg could not decode the segment; `str(self)` is FFmpeg's reason."""


@dataclass(slots=True)
class Decoded:
    """What decoding one segment found."""

    has_video: bool = False
    has_audio: bool = False
    width: int | None = None
    height: int | None = None
    first_pts: float | None = None
    """Seconds: the earliest timestamp of the segment (video, else audio)."""
    end_pts: float | None = None
    """Seconds: the end of the latest frame."""
    thumbs: list[bytes] = field(default_factory=list)
    """64 x 36 luma per decoded video frame, in presentation order."""
    audio_db: float | None = None
    """RMS level of the decoded audio in dBFS (floor -120); None without audio."""
    frames: int = 0

    @property
    def duration(self) -> float | None:
        if self.first_pts is None or self.end_pts is None:
            return None
        return max(0.0, self.end_pts - self.first_pts)


def _timespan(decoded: Decoded, start: float | None, end: float | None) -> None:
    if start is not None:
        decoded.first_pts = start if decoded.first_pts is None else min(decoded.first_pts, start)
    if end is not None:
        decoded.end_pts = end if decoded.end_pts is None else max(decoded.end_pts, end)


def _luma(frame: Any) -> bytes:
    small = frame.reformat(width=THUMB_WIDTH, height=THUMB_HEIGHT, format="gray")
    plane = small.planes[0]
    raw = bytes(plane)
    stride = plane.line_size
    if stride == THUMB_WIDTH:
        return raw[: THUMB_WIDTH * THUMB_HEIGHT]
    return b"".join(raw[row * stride : row * stride + THUMB_WIDTH] for row in range(THUMB_HEIGHT))


def decode_segment(data: bytes, *, max_frames: int = 150) -> Decoded:
    """Decode one segment's bytes (blocking, CPU-bound: call it from a worker thread)."""
    import av  # imported here: only checks with `content` pay for loading FFmpeg's libraries

    decoded = Decoded()
    try:
        container: Any = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise UndecodableSegment(_ffmpeg_reason(exc)) from None
    try:
        video: Any = container.streams.video[0] if container.streams.video else None
        audio: Any = container.streams.audio[0] if container.streams.audio else None
        if video is None and audio is None:
            raise UndecodableSegment("it has no audio or video stream")
        streams = [s for s in (video, audio) if s is not None]
        for stream in streams:
            stream.thread_type = "SLICE"
            stream.codec_context.thread_count = 1
        resampler = av.AudioResampler(format="flt", layout="mono", rate=_AUDIO_RATE) if audio is not None else None
        squares = 0.0
        samples = 0
        pictures: list[tuple[float, bytes]] = []
        frame_limit = max_frames
        step = 1.0 / float(video.average_rate) if video is not None and video.average_rate else 0.0
        for packet in container.demux(streams):
            stream = packet.stream
            if stream is video and len(pictures) >= frame_limit:
                if packet.pts is not None and packet.duration is not None and stream.time_base is not None:
                    _timespan(decoded, None, float((packet.pts + packet.duration) * stream.time_base))
                continue
            if stream is audio and samples >= _AUDIO_SECONDS * _AUDIO_RATE:
                continue
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    when = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
                    decoded.has_video = True
                    decoded.width, decoded.height = frame.width, frame.height
                    area = max(1, frame.width * frame.height)
                    frame_limit = max(2, min(max_frames, _PIXEL_BUDGET // area))
                    pictures.append((when if when is not None else float(len(pictures)), _luma(frame)))
                    _timespan(decoded, when, None if when is None else when + step)
                elif isinstance(frame, av.AudioFrame) and resampler is not None:
                    when = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
                    decoded.has_audio = True
                    length = frame.samples / frame.sample_rate if frame.sample_rate else 0.0
                    _timespan(decoded, when, None if when is None else when + length)
                    for mono in resampler.resample(frame):
                        values = array("f")
                        values.frombytes(bytes(mono.planes[0])[: mono.samples * 4])
                        squares += math.fsum(value * value for value in values)
                        samples += len(values)
        if audio is not None and samples:
            rms = math.sqrt(squares / samples)
            decoded.audio_db = max(_SILENCE_FLOOR, 20 * math.log10(rms)) if rms > 0 else _SILENCE_FLOOR
        pictures.sort(key=lambda item: item[0])
        decoded.thumbs = [thumb for _, thumb in pictures]
        decoded.frames = len(pictures)
    except av.FFmpegError as exc:
        raise UndecodableSegment(_ffmpeg_reason(exc)) from None
    finally:
        container.close()
    if not decoded.has_video and not decoded.has_audio:
        raise UndecodableSegment("no frame could be decoded from it")
    return decoded


def _ffmpeg_reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).rstrip(".")


def _changed(a: bytes, b: bytes, tolerance: int) -> bool:
    """Two thumbnails differ: at least two pixels differ by more than `tolerance` luma levels."""
    if len(a) != len(b):
        return True
    count = 0
    for x, y in zip(a, b, strict=True):
        if abs(x - y) > tolerance:
            count += 1
            if count >= 2:
                return True
    return False


def _black(thumb: bytes, luma: int) -> bool:
    dark = sum(1 for value in thumb if value <= luma)
    return dark >= 0.98 * len(thumb)


@dataclass(slots=True)
class ContentFindings:
    metrics: dict[str, Any]
    state: dict[str, Any]
    notes: list[str]


def compare(
    decoded: Decoded,
    previous: Mapping[str, Any] | None,
    *,
    settings: ContentSettings,
    now: float,
    sequence: int,
    discontinuity: int,
    extinf: float,
    between: float | None,
    resolution: str | None,
) -> ContentFindings:
    """Content metrics for one decoded segment, against the state of the previous run (pure).

    `between` is the EXTINF total of the segments listed between the previous run's decoded segment and
    this one (None when the previous one left the window or sat across a discontinuity): the timestamps
    must have moved by that much, else `pts_gap` says by how much they jumped.
    """
    previous = previous if isinstance(previous, Mapping) else {}
    notes: list[str] = []
    thumbs = decoded.thumbs
    metrics: dict[str, Any] = {
        "has_video": decoded.has_video,
        "has_audio": decoded.has_audio,
        "decoded_duration": None if decoded.duration is None else round(decoded.duration, 3),
        "duration_mismatch": None if decoded.duration is None else round(abs(decoded.duration - extinf), 3),
        "width": decoded.width,
        "height": decoded.height,
        "audio_level": None if decoded.audio_db is None else round(decoded.audio_db, 1),
        "audio_silent": None if decoded.audio_db is None else decoded.audio_db < settings.silence,
    }
    if resolution and decoded.width is not None and decoded.height is not None:
        metrics["resolution_matches"] = resolution.lower() == f"{decoded.width}x{decoded.height}"
        if not metrics["resolution_matches"]:
            notes.append(f"the picture is {decoded.width}x{decoded.height}, the master says RESOLUTION={resolution}")
    old_thumb = _thumb(previous.get("last_thumb"))
    frozen_since: float | None = None
    if thumbs:
        frozen = not any(_changed(thumbs[i - 1], thumbs[i], settings.tolerance) for i in range(1, len(thumbs)))
        frozen = frozen and not _changed(thumbs[0], thumbs[-1], settings.tolerance)
        black = sum(1 for thumb in thumbs if _black(thumb, settings.black_luma))
        metrics["black_ratio"] = round(black / len(thumbs), 4)
        metrics["frozen"] = frozen
        if frozen:
            since = previous.get("frozen_since")
            same_as_before = old_thumb is not None and not _changed(old_thumb, thumbs[0], settings.tolerance)
            if same_as_before and isinstance(since, int | float):
                frozen_since = float(since)
            else:
                frozen_since = now - (decoded.duration or extinf)
            metrics["frozen_for"] = round(max(0.0, now - frozen_since), 3)
        else:
            metrics["frozen_for"] = 0.0
    else:
        metrics.update(black_ratio=None, frozen=None, frozen_for=None)
    metrics["pts_gap"] = _pts_gap(decoded, previous, sequence, discontinuity, between)
    state = {
        "sequence": sequence,
        "discontinuity": discontinuity,
        "end_pts": decoded.end_pts,
        "first_pts": decoded.first_pts,
        "frozen_since": frozen_since,
        "last_thumb": base64.b64encode(thumbs[-1]).decode() if thumbs else None,
    }
    return ContentFindings(metrics, state, notes)


def _thumb(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        return None


def _pts_gap(
    decoded: Decoded, previous: Mapping[str, Any], sequence: int, discontinuity: int, between: float | None
) -> float | None:
    """Seconds the timestamps jumped against the previous decoded segment, beyond what EXTINF explains."""
    old_sequence, old_end, old_start = previous.get("sequence"), previous.get("end_pts"), previous.get("first_pts")
    if decoded.first_pts is None or not isinstance(old_sequence, int) or not isinstance(old_end, int | float):
        return None
    if sequence < old_sequence:
        return None
    if previous.get("discontinuity") != discontinuity:
        return 0.0  # announced by EXT-X-DISCONTINUITY: players reset their timeline, nothing unexpected
    if sequence == old_sequence:
        if not isinstance(old_start, int | float):
            return None
        return round(abs(decoded.first_pts - old_start), 3) if abs(decoded.first_pts - old_start) > 0.001 else 0.0
    if between is None:
        return None  # the segments in between left the window, or one of them starts a discontinuity
    delta = decoded.first_pts - (old_end + between)
    if abs(delta) > _PTS_WRAP / 2:  # MPEG-TS timestamps wrap every 2^33 / 90 kHz (26.5 h): not a gap
        delta -= math.copysign(_PTS_WRAP, delta)
    jump = abs(delta)
    return round(jump, 3) if jump > _PTS_TOLERANCE else 0.0
