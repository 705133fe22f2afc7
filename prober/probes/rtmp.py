"""The `rtmp` check type: play a live stream from an RTMP server the way a player or a restreamer does.

Publishers (OBS, encoders) push RTMP into a media server (nginx-rtmp, SRS); whether that ingest path is
alive is the first thing to know, before any viewer complains. A run opens `rtmp://` (or `rtmps://`) with
FFmpeg's own RTMP client through PyAV, in a worker thread bounded by the timeout, and remuxes what it
receives, packet by packet, into FLV in memory — the form RTMP carries anyway — noting when each packet
arrived. From there it is judged exactly like HTTP-FLV (`prober.probes.media.live_check`): first
keyframe, timestamp pace, stalls, gaps, codecs and, with `content`, frozen/black/silent.

Measures only. A server that refuses, a stream name nobody publishes (nothing arrives) and a timeout are
ProbeErrors with a sentence; the worker thread never outlives the run by more than FFmpeg's own I/O
timeout (it is interrupted through PyAV's `timeout`).
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from prober.config.conditions import MetricSpec
from prober.config.durations import format_duration
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.media.content_metrics import content_metric_specs
from prober.probes.media.flv import FlvError, FlvReader
from prober.probes.media.live import LiveRead, live_metric_specs
from prober.probes.media.live_check import LiveStreamCheck, live_default_expect, observe
from prober.probes.network import where
from prober.probes.registry import Export, SecretKind, register, standard_exports, url_target

__all__ = ["RtmpCheck", "RtmpProbe"]

_LABEL = "RTMP stream"


class RtmpCheck(LiveStreamCheck):
    type: Literal["rtmp"]
    url: str = Field(description="rtmp://host[:port]/app/stream (or rtmps://)")
    live: bool = Field(True, description="ask the server for a live stream (FFmpeg's rtmp_live=live)")

    @field_validator("url")
    @classmethod
    def _rtmp_url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("rtmp", "rtmps") or not parts.hostname:
            raise ValueError(
                f"expected an rtmp:// or rtmps:// URL like rtmp://media.example.com/live/stream, got {value!r}"
            )
        if len([part for part in parts.path.split("/") if part]) < 2:
            raise ValueError(f"an RTMP URL names an application and a stream: rtmp://host/app/stream, got {value!r}")
        return value


def _play(check: RtmpCheck, read: LiveRead, stop: threading.Event) -> None:
    """Blocking (worker thread): play the stream until `duration` is over, remuxing into FLV in `read`."""
    import av  # imported here: only rtmp checks pay for loading FFmpeg's libraries
    import av.logging

    av.logging.set_level(None)  # FFmpeg's own messages would go to stderr; what matters becomes the sentence

    budget = max(0.5, check.timeout - 0.5)
    # FFmpeg waits up to analyzeduration to find every track: a server that holds video back until the next
    # keyframe (nginx-rtmp) needs most of a GOP. Packets read while probing are returned by demux afterwards.
    # analyzeduration counts stream time: a stream running at half speed takes twice as long in wall time, so
    # it stays well inside the read (half of it, 1.5 s to 3 s: a GOP of the usual 1-2 s keyframe interval).
    analyze = int(min(max(read.duration / 2, 1.5), 3.0) * 1_000_000)
    options = {"rtmp_live": "live" if check.live else "any", "analyzeduration": str(analyze)}
    try:
        source: Any = av.open(check.url, mode="r", options=options, timeout=(budget, min(budget, check.max_stall + 3)))
    except av.FFmpegError as exc:
        raise ProbeError(_open_sentence(check, exc)) from None
    sink = io.BytesIO()
    reader = FlvReader()
    opened = time.perf_counter()
    # The read lasts `duration` from the moment the stream's tracks are known, within the run's timeout.
    wanted = read.duration
    stop_at = min(opened + wanted, read.started + max(0.5, check.timeout - 0.7))
    read.duration = stop_at - read.started
    try:
        if stop_at - opened < min(1.0, wanted):
            raise ProbeError(
                f"the {_LABEL} at {_shown(check)} took {opened - read.started:.1f}s before FFmpeg knew its tracks, "
                f"leaving no time to read it within the {format_duration(check.timeout)} timeout"
            )
        streams = [s for s in (*source.streams.video[:1], *source.streams.audio[:1])]
        if not streams:
            raise ProbeError(f"the {_LABEL} at {_shown(check)} has no audio or video track")
        output: Any = av.open(sink, mode="w", format="flv")
        mapping = {stream.index: output.add_stream_from_template(stream) for stream in streams}
        last_dts: dict[int, int] = {}
        for packet in source.demux(streams):
            now = time.perf_counter()
            if stop.is_set() or now >= stop_at:
                break
            if packet.dts is None or packet.size == 0:
                continue
            index = packet.stream.index
            if packet.dts <= last_dts.get(index, -(2**62)):
                continue  # a repeated or reordered timestamp (a server's GOP cache seam): FLV cannot carry it
            last_dts[index] = packet.dts
            if read.first_byte_at is None:
                read.first_byte_at = now
            packet.stream = mapping[index]
            output.mux(packet)
            _take(sink, read, reader, now, check.max_bytes)
            if read.truncated:
                break
        else:
            read.ended = True
        output.close()
        _take(sink, read, reader, time.perf_counter(), check.max_bytes)
    except av.FFmpegError as exc:
        if read.first_byte_at is None:
            raise ProbeError(_open_sentence(check, exc)) from None
        read.ended = True
        read.notes.append(f"FFmpeg stopped reading: {str(getattr(exc, 'strerror', None) or exc).rstrip('.')}")
    finally:
        read.ended_at = time.perf_counter()
        source.close()


def _take(sink: io.BytesIO, read: LiveRead, reader: FlvReader, now: float, limit: int) -> None:
    """Move what the muxer wrote since the last call into the read, tagged with its arrival time."""
    with sink.getbuffer() as written:  # a view, released at once: copies only the new bytes
        fresh = bytes(written[len(read.data) :])
    if not fresh:
        return
    room = limit - len(read.data)
    if len(fresh) >= room:
        fresh, read.truncated = fresh[:room], True
    read.data += fresh
    try:
        read.tags.extend(reader.feed(fresh, now))
    except FlvError as exc:  # our own muxer wrote it: a bug, but a sentence rather than a traceback
        raise ProbeError(f"the {_LABEL} could not be read as FLV: {exc}") from None
    read.header = reader.header


def _shown(check: RtmpCheck) -> str:
    parts = urlsplit(check.url)
    return where(parts.hostname or "", parts.port or (443 if parts.scheme == "rtmps" else 1935))


def _open_sentence(check: RtmpCheck, exc: BaseException) -> str:
    reason = str(getattr(exc, "strerror", None) or exc).rstrip(".")
    lowered = reason.lower()
    if "refused" in lowered:
        return f"connection refused by {_shown(check)}"
    if "timed out" in lowered or "immediate exit" in lowered or "interrupt" in lowered:
        return (
            f"the {_LABEL} sent no media within {format_duration(check.timeout)}: is the stream name right "
            "and is a publisher connected?"
        )
    if "not found" in lowered or "input/output" in lowered or "end of file" in lowered:
        return f"the RTMP server at {_shown(check)} did not play the stream: {reason} (is anyone publishing it?)"
    return f"cannot play the {_LABEL} from {_shown(check)}: {reason}"


@register("rtmp")
class RtmpProbe:
    """Play an RTMP stream for `duration`; report pace, keyframes, codecs and (optionally) content."""

    type_name: ClassVar[str]
    Config = RtmpCheck
    metrics: ClassVar[Mapping[str, MetricSpec]] = {**live_metric_specs(_LABEL), **content_metric_specs("the stream")}
    exports: ClassVar[Mapping[str, tuple[Export, ...]]] = standard_exports(
        "rtmp", metrics, text=("codec", "audio_codec")
    )
    headline: ClassVar[tuple[str, ...]] = ("first_keyframe", "timestamp_rate")
    secrets: ClassVar[Mapping[str, SecretKind]] = {"url": "url"}
    """Stream keys often sit in the URL's last path part or its query (`?token=`)."""
    target = url_target

    def default_expect(self, check: RtmpCheck) -> Mapping[str, Any]:
        return live_default_expect(check)

    async def run(self, check: RtmpCheck, ctx: ProbeContext) -> Observation:
        read = LiveRead(started=time.perf_counter(), duration=check.read_for())
        stop = threading.Event()
        worker = asyncio.ensure_future(asyncio.to_thread(_play, check, read, stop))
        try:
            await asyncio.wait_for(asyncio.shield(worker), timeout=max(0.1, ctx.remaining() - 0.2))
        except TimeoutError:
            stop.set()
            raise ProbeError(
                f"the {_LABEL} sent no media within {format_duration(check.timeout)}: is the stream name right "
                "and is a publisher connected?"
                if read.first_byte_at is None
                else f"the {_LABEL} stopped answering during the read"
            ) from None
        finally:
            stop.set()
        if read.first_byte_at is None or read.header is None:
            raise ProbeError(f"the {_LABEL} at {_shown(check)} sent no media frame within the read")
        return await observe(read, check, ctx)
