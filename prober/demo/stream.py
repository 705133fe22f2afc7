"""The demo's live video: one real-time encoder whose stream every HTTP-FLV viewer shares, and a live DASH MPD.

`LiveEncoder` runs in a worker thread: it draws a small test pattern with a moving bar (320 x 180, 12 fps) and
a quiet 441 Hz tone, encodes them with PyAV (libx264 `ultrafast`, one thread, a keyframe every 2 s; AAC
mono) into FLV in real time, and hands each muxed tag to the event loop. `FlvFanout` (on the loop) serves
that one stream to every client as an endless chunked response, the way SRS or nginx-flv do: a client
joining late gets the FLV header, the metadata and the sequence headers, then the cached GOP from its last
keyframe (so it can show a picture at once), then the live tags. One encoder whatever the number of
viewers; a client that cannot keep up is dropped rather than buffered without bound.

`dash_routes` adds a live DASH stream of the same clock: a `$Number$` SegmentTemplate whose segments appear
as time passes (generated on the fly, like the demo's HLS segments) and a UTCTiming clock.

Everything runs in-process on 127.0.0.1 (no ffmpeg binary, no subprocess). Never used outside the demo and
its tests; never judges anything (the demo's checks do).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from aiohttp import web

from prober.probes.media.flv import FlvReader

__all__ = ["DASH_SEGMENT_SECONDS", "FlvFanout", "LiveEncoder", "dash_routes"]

log = logging.getLogger("prober.demo")

WIDTH, HEIGHT, FPS = 320, 180, 12
GOP_FRAMES = 2 * FPS
AUDIO_RATE = 44100
AUDIO_FRAME = 1024
TONE_HZ = 441
TONE_LEVEL = 0.05
"""Amplitude of the tone (about -29 dBFS RMS): quiet, but far above the silence threshold."""
BAR_WIDTH = 24
BAR_SPEED = 96
"""Pixels per second the white bar moves, so every frame differs from the previous one."""
MAX_GOP_TAGS = 1000
MAX_BACKLOG = 300
"""Tag batches a client may fall behind before it is dropped."""
DASH_SEGMENT_SECONDS = 2.0
DASH_WINDOW = 5


def _bars() -> tuple[bytes, bytes, bytes, bytes]:
    """One row of each plane of the colour bars (Y, U, V at half width) and the white bar's luma."""
    colours = [(180, 128, 128), (168, 44, 136), (145, 147, 44), (133, 63, 52), (63, 193, 204), (51, 109, 212)]
    colours += [(28, 212, 120), (110, 128, 128)]
    step = WIDTH // len(colours)
    y = b"".join(bytes([c[0]]) * step for c in colours)
    u = b"".join(bytes([c[1]]) * (step // 2) for c in colours)
    v = b"".join(bytes([c[2]]) * (step // 2) for c in colours)
    return y, u, v, bytes([235]) * BAR_WIDTH


def _tone() -> bytes:
    """One second of the tone as 32-bit floats (a whole number of cycles, so it loops without a click)."""
    import math

    samples = array("f", (TONE_LEVEL * math.sin(2 * math.pi * TONE_HZ * n / AUDIO_RATE) for n in range(AUDIO_RATE)))
    return samples.tobytes()


@dataclass(slots=True)
class _Sink:
    """Where the FLV muxer writes (a non-seekable output, as a socket would be)."""

    data: bytearray = field(default_factory=bytearray)

    def write(self, chunk: bytes) -> int:
        self.data += chunk
        return len(chunk)

    def take(self) -> bytes:
        chunk = bytes(self.data)
        self.data.clear()
        return chunk


Tag = tuple[bytes, str, bool, bool]
"""(raw bytes of the tag and its previous-tag-size, kind, video keyframe, configuration: script data or a
sequence header)."""


class FlvFanout:
    """The event-loop side: the stream's header, configuration tags and last GOP, and every client's queue."""

    def __init__(self) -> None:
        self.header: bytes | None = None
        self._configs: dict[str, bytes] = {}
        self._gop: list[bytes] = []
        self._clients: set[asyncio.Queue[bytes | None]] = set()
        self.ready = asyncio.Event()
        self.closed = False

    @property
    def clients(self) -> int:
        return len(self._clients)

    def publish(self, header: bytes | None, tags: list[Tag]) -> None:
        """Called on the loop with the tags the encoder muxed since its last call."""
        if header is not None and self.header is None:
            self.header = header
        for raw, kind, keyframe, config in tags:
            if config:
                self._configs[kind] = raw
            elif kind == "video" and keyframe:
                self._gop = [raw]
            elif self._gop and len(self._gop) < MAX_GOP_TAGS:
                self._gop.append(raw)
        if self.header is not None and self._gop:
            self.ready.set()
        batch = b"".join(tag[0] for tag in tags)
        if not batch:
            return
        for queue in list(self._clients):
            if queue.qsize() >= MAX_BACKLOG:
                self._clients.discard(queue)  # too slow: end its response rather than buffer without bound
                queue.put_nowait(None)
            else:
                queue.put_nowait(batch)

    def close(self) -> None:
        """End every client's response (the demo is stopping)."""
        self.closed = True
        self.ready.set()  # a viewer waiting for the first keyframe gets its 503 now
        for queue in self._clients:
            queue.put_nowait(None)
        self._clients.clear()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """`GET /live/stream.flv`: the live stream, joined at the last keyframe."""
        if not self.ready.is_set():  # the demo just started: wait for the first keyframe
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ready.wait(), 5)
        if self.header is None or self.closed:
            return web.Response(status=503, text="the demo's live encoder has not started\n")
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        joined = b"".join((self.header, *self._configs.values(), *self._gop))  # same loop turn as the add
        self._clients.add(queue)
        response = web.StreamResponse(headers={"Content-Type": "video/x-flv", "Cache-Control": "no-cache"})
        try:
            await response.prepare(request)
            await response.write(joined)
            while (batch := await queue.get()) is not None:
                await response.write(batch)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the viewer went away (or the demo stops)
        finally:
            self._clients.discard(queue)
        return response


class LiveEncoder:
    """A real-time test-pattern encoder in a worker thread, publishing FLV tags to a `FlvFanout`."""

    def __init__(self, fanout: FlvFanout, loop: asyncio.AbstractEventLoop) -> None:
        self.fanout = fanout
        self._loop = loop
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames = 0
        self.error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prober-demo-encoder", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop encoding and end every viewer's stream."""
        self._stopping.set()
        self.fanout.close()
        thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join, 5)

    def _run(self) -> None:
        try:
            self._encode()
        except Exception as exc:  # the demo keeps running; its flv check shows the stream is gone
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("the demo's live encoder stopped")
            with contextlib.suppress(RuntimeError):  # viewers see the stream end, new ones a 503
                self._loop.call_soon_threadsafe(self.fanout.close)

    def _send(self, header: bytes | None, tags: list[Tag]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the demo has stopped
            self._loop.call_soon_threadsafe(self.fanout.publish, header, tags)

    def _encode(self) -> None:
        import av  # imported here: only a running demo pays for FFmpeg's libraries

        sink = _Sink()
        container: Any = av.open(
            sink, mode="w", format="flv", container_options={"flush_packets": "1", "flvflags": "no_duration_filesize"}
        )
        try:
            video: Any = container.add_stream(
                "libx264",
                rate=FPS,
                options={"preset": "ultrafast", "tune": "zerolatency", "x264-params": "scenecut=0"},
            )
            video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            video.codec_context.gop_size = GOP_FRAMES
            video.codec_context.bit_rate = 200_000
            video.codec_context.thread_count = 1
            audio: Any = container.add_stream("aac", rate=AUDIO_RATE)
            audio.codec_context.layout = "mono"
            audio.codec_context.bit_rate = 48_000
            self._loop_frames(av, container, video, audio, sink)
        finally:
            with contextlib.suppress(Exception):
                container.close()

    def _loop_frames(self, av: Any, container: Any, video: Any, audio: Any, sink: _Sink) -> None:
        y_row, u_row, v_row, bar = _bars()
        u_plane, v_plane = u_row * (HEIGHT // 2), v_row * (HEIGHT // 2)
        second = _tone()
        tone = second + second[: AUDIO_FRAME * 4]  # a frame starting near the end wraps without a copy per frame
        reader = FlvReader()
        pending = bytearray()
        header_sent = False
        base = 0  # the stream offset of pending[0]
        samples = 0
        frame_time = Fraction(1, FPS)
        sample_time = Fraction(1, AUDIO_RATE)
        anchor = time.monotonic()
        while not self._stopping.is_set():
            index = self.frames
            frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            x = int(index * BAR_SPEED / FPS) % (WIDTH - BAR_WIDTH)
            frame.planes[0].update((y_row[:x] + bar + y_row[x + BAR_WIDTH :]) * HEIGHT)
            frame.planes[1].update(u_plane)
            frame.planes[2].update(v_plane)
            frame.pts, frame.time_base = index, frame_time
            packets = list(video.encode(frame))
            while samples < (index + 1) * AUDIO_RATE // FPS:
                sound = av.AudioFrame(format="fltp", layout="mono", samples=AUDIO_FRAME)
                start = (samples % AUDIO_RATE) * 4
                sound.planes[0].update(tone[start : start + AUDIO_FRAME * 4])
                sound.pts, sound.sample_rate, sound.time_base = samples, AUDIO_RATE, sample_time
                packets.extend(audio.encode(sound))
                samples += AUDIO_FRAME
            container.mux(packets)
            self.frames += 1
            chunk = sink.take()
            pending += chunk
            tags = reader.feed(chunk, 0.0)
            header = reader.header if not header_sent else None
            out: list[Tag] = []
            for tag in tags:
                raw = bytes(pending[tag.offset - base : tag.offset - base + tag.size])
                out.append((raw, tag.kind, tag.keyframe, tag.config or tag.kind == "script"))
            del pending[: reader.position - base]
            base = reader.position
            header_sent = header_sent or header is not None
            if out or header is not None:
                self._send(header, out)
            due = anchor + (index + 1) / FPS
            wait = due - time.monotonic()
            if wait < -1.0:
                anchor += -wait  # far behind (a busy or suspended machine): keep the pace, drop the debt
            elif wait > 0:
                self._stopping.wait(wait)


def _stamp(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dash_routes(app: web.Application, started: float, now: Callable[[], float] = time.time) -> None:
    """A live DASH stream under `/dash/`: `live.mpd` (a `$Number$` template, one video and one audio
    Representation; availabilityStartTime a window of segments before `started`, so there is a live edge
    from the first look, and segment n available from availabilityStartTime + (n + 1) x 2 s), its
    segments (the last ten; newer ones 404 until due), and `/dash/time` (the UTCTiming clock)."""
    ast = float(int(started)) - DASH_SEGMENT_SECONDS * DASH_WINDOW  # a window of segments from the start
    seconds = DASH_SEGMENT_SECONDS

    def newest() -> int:
        return int((now() - ast) // seconds) - 1

    async def mpd(_: web.Request) -> web.Response:
        period = (
            '<Period id="live" start="PT0S">'
            '<AdaptationSet contentType="video" mimeType="video/mp4" segmentAlignment="true">'
            f'<SegmentTemplate timescale="1000" duration="{int(seconds * 1000)}" startNumber="0" '
            'initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number$.m4s"/>'
            '<Representation id="video" codecs="avc1.42c00d" bandwidth="200000" width="320" height="180"/>'
            "</AdaptationSet>"
            '<AdaptationSet contentType="audio" mimeType="audio/mp4" lang="en">'
            f'<SegmentTemplate timescale="1000" duration="{int(seconds * 1000)}" startNumber="0" '
            'initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number$.m4s"/>'
            '<Representation id="audio" codecs="mp4a.40.2" bandwidth="48000" audioSamplingRate="44100"/>'
            "</AdaptationSet></Period>"
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" '
            f'type="dynamic" availabilityStartTime="{_stamp(ast)}" publishTime="{_stamp(now())}" '
            f'minimumUpdatePeriod="PT{seconds:g}S" minBufferTime="PT{seconds:g}S" '
            f'timeShiftBufferDepth="PT{seconds * DASH_WINDOW:g}S" suggestedPresentationDelay="PT{seconds * 2:g}S">'
            f'{period}<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="time"/></MPD>\n'
        )
        return web.Response(text=body, content_type="application/dash+xml")

    async def init(request: web.Request) -> web.Response:
        kind = request.match_info["rep"]
        if kind not in ("video", "audio"):
            raise web.HTTPNotFound()
        return web.Response(body=b"\x00\x00\x00\x10ftypiso6" + kind.encode().ljust(4), content_type="video/mp4")

    async def segment(request: web.Request) -> web.Response:
        kind, number = request.match_info["rep"], int(request.match_info["number"])
        last = newest()
        if kind not in ("video", "audio") or number > last or number < last - DASH_WINDOW * 2:
            raise web.HTTPNotFound()
        size = 50_000 if kind == "video" else 12_000
        seed = hashlib.sha256(f"{kind}/{number}".encode()).digest()
        return web.Response(body=(seed * (size // len(seed) + 1))[:size], content_type="video/iso.segment")

    async def clock(_: web.Request) -> web.Response:
        return web.Response(text=_stamp(now()), content_type="text/plain")

    app.router.add_get("/dash/live.mpd", mpd)
    app.router.add_get("/dash/time", clock)
    app.router.add_get("/dash/{rep}/init.mp4", init)
    app.router.add_get(r"/dash/{rep}/{number:\d+}.m4s", segment)
