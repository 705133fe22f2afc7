"""An HLS origin simulator for the hls tests: live playlists generated from a fake, controllable clock.

`hls_origin()` serves, on 127.0.0.1 only, a master playlist (`/master.m3u8`) listing every `LiveMedia`
added to it, each media playlist at `/<name>/index.m3u8` and its segments at `/<name>/<uri>`. A
`LiveMedia` publishes segment n when the clock passes the end of its media (plus an optional delay), and
has knobs for the faults ffmpeg cannot easily make: a frozen encoder, jitter, PDT offsets, sequence
jumps, discontinuities with a right or wrong discontinuity sequence, URI desync, long EXTINFs, GAPs,
ENDLIST, Age headers, and segment failures (status, delay, hang, empty). `Origin.static` serves fixed
bodies (malformed playlists), `Origin.redirects` answers with a redirect, and `Origin.requests` records
every path asked for.

`Replay` turns what ffmpeg wrote as a VOD playlist into a live one: entry n of the VOD playlist appears
when the clock passes the end of its media, inside a sliding window, keeping every tag ffmpeg wrote
(EXT-X-BYTERANGE, EXT-X-MAP, EXT-X-KEY), with knobs for a frozen encoder, spliced discontinuities and
an origin that ignores `Range:`. `encode()` runs ffmpeg to make such VOD material (short, small).

Test plumbing lives here too: `load_hls_check` writes a check to YAML and loads it the way users do. The
clock the origin reads is a `WallClock`: tests/fake_clock.py's `FakeClock`, or the real one in benchmarks.
This module never listens on anything but 127.0.0.1 and never sleeps on the fake clock (only hung segments
sleep, in real time, until the client gives up).
"""

from __future__ import annotations

import asyncio
import gzip
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from aiohttp import web
from fake_clock import EPOCH

from prober.config.loader import CheckSpec, load_config

HOST = "127.0.0.1"


def pdt_text(moment: float, *, naive: bool = False) -> str:
    stamp = datetime.fromtimestamp(moment, UTC)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}"
    return text if naive else text + "Z"


class WallClock(Protocol):
    """What the simulated origin reads: Unix seconds (FakeClock, or the real clock in benchmarks)."""

    def time(self) -> float: ...


@dataclass
class LiveMedia:
    """One live media playlist whose segments appear as the clock advances."""

    clock: WallClock
    started: float = EPOCH - 60.0
    segment_duration: float = 2.0
    target_duration: int = 2
    window: int = 6
    uri_template: str = "seg{n}.ts"
    delays: dict[int, float] = field(default_factory=dict)
    """Extra seconds before segment n is published (jitter)."""
    frozen_at: float | None = None
    """No segment is published after this time (a dead encoder)."""
    pdt: Literal["utc", "naive", "none"] = "utc"
    pdt_offset: float = 0.0
    pdt_jumps: dict[int, float] = field(default_factory=dict)
    """Seconds added to the PDT of segment n only (negative: goes backwards)."""
    sequence_offset: int = 0
    discontinuities: set[int] = field(default_factory=set)
    disc_sequence_error: int = 0
    uri_override: dict[int, str] = field(default_factory=dict)
    extinf_override: dict[int, float] = field(default_factory=dict)
    gaps: set[int] = field(default_factory=set)
    endlist: bool = False
    target_override: int | None = None
    comment: str | None = None
    age: float | None = None
    status: int = 200
    segment_status: int = 200
    segment_delay: float = 0.0
    segment_hang: bool = False
    segment_size: int = 1880
    segment_status_for: dict[int, int] = field(default_factory=dict)
    parts_in_progress: int = 0
    """LL-HLS: parts of the next segment listed after the newest one (a segment with parts but no URI)."""

    def published(self, n: int) -> float:
        return self.started + (n + 1) * self.segment_duration + self.delays.get(n, 0.0)

    def newest(self) -> int:
        """Index of the newest published segment (segments publish in order), -1 if none yet."""
        now = self.clock.time()
        if self.frozen_at is not None:
            now = min(now, self.frozen_at)
        n = int((now - self.started) // self.segment_duration) - 1
        n = max(n, -1)
        while n >= 0 and any(self.published(k) > now for k in range(max(0, n - 20), n + 1)):
            n -= 1
        return n

    def render(self) -> str:
        newest = self.newest()
        first = max(0, newest - self.window + 1)
        numbers = range(first, newest + 1)
        disc_sequence = sum(1 for d in self.discontinuities if d < first) + self.disc_sequence_error
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:6",
            f"#EXT-X-TARGETDURATION:{self.target_override or self.target_duration}",
            f"#EXT-X-MEDIA-SEQUENCE:{first + self.sequence_offset}",
        ]
        if disc_sequence:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{disc_sequence}")
        if self.comment:
            lines.append(f"## {self.comment}")
        for n in numbers:
            if n in self.discontinuities:
                lines.append("#EXT-X-DISCONTINUITY")
            if self.pdt != "none":
                moment = self.started + n * self.segment_duration + self.pdt_offset + self.pdt_jumps.get(n, 0.0)
                lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{pdt_text(moment, naive=self.pdt == 'naive')}")
            if n in self.gaps:
                lines.append("#EXT-X-GAP")
            lines.append(f"#EXTINF:{self.extinf_override.get(n, self.segment_duration):.3f},")
            lines.append(self.uri_override.get(n, self.uri_template.format(n=n)))
        for part in range(self.parts_in_progress):
            lines.append(f'#EXT-X-PART:DURATION=0.500,URI="part{newest + 1}.{part}.ts"')
        if self.parts_in_progress:
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part{newest + 1}.{self.parts_in_progress}.ts"')
        if self.endlist:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"

    def segment_number(self, name: str) -> int | None:
        digits = "".join(ch for ch in name.rsplit("/", 1)[-1] if ch.isdigit())
        return int(digits) if digits else None


@dataclass
class Entry:
    """One segment of a VOD playlist ffmpeg wrote: its tag lines, URI and EXTINF."""

    tags: list[str]
    uri: str
    duration: float
    directory: Path


def read_vod(playlist: Path) -> tuple[list[str], list[Entry]]:
    """Header lines (VERSION, TARGETDURATION, MAP, KEY before the first segment) and the segments."""
    header: list[str] = []
    entries: list[Entry] = []
    tags: list[str] = []
    for raw in playlist.read_text().splitlines():
        line = raw.strip()
        if not line or line == "#EXTM3U" or line == "#EXT-X-ENDLIST":
            continue
        if line.startswith(("#EXT-X-MEDIA-SEQUENCE", "#EXT-X-PLAYLIST-TYPE")):
            continue
        if line.startswith("#"):
            if not entries and not tags and line.startswith(("#EXT-X-VERSION", "#EXT-X-TARGETDURATION")):
                header.append(line)
            else:
                tags.append(line)
            continue
        duration = next(float(t.split(":", 1)[1].split(",")[0]) for t in tags if t.startswith("#EXTINF"))
        entries.append(Entry(tags, line, duration, playlist.parent))
        tags = []
    return header, entries


@dataclass
class Replay:
    """A live media playlist replaying ffmpeg's segments as the clock advances."""

    clock: WallClock
    header: list[str]
    entries: list[Entry]
    started: float = EPOCH - 60.0
    window: int = 4
    frozen_at: float | None = None
    discontinuity_before: set[int] = field(default_factory=set)
    """Entry indexes preceded by an EXT-X-DISCONTINUITY tag (a splice announced as it must be)."""
    pdt: bool = False
    honour_range: bool = True
    corrupt: dict[str, bytes] = field(default_factory=dict)
    """Segment URIs served with these bytes instead (valid HTTP, not valid media)."""
    missing: set[str] = field(default_factory=set)
    """URIs answered with 404 (a key that is gone)."""
    ranges: list[str] = field(default_factory=list)
    """Every Range header received."""

    @classmethod
    def of(cls, clock: WallClock, playlist: Path, **knobs: Any) -> Replay:
        header, entries = read_vod(playlist)
        return cls(clock, header, entries, **knobs)

    def end(self, n: int) -> float:
        return self.started + sum(entry.duration for entry in self.entries[: n + 1])

    def newest(self) -> int:
        now = self.clock.time()
        if self.frozen_at is not None:
            now = min(now, self.frozen_at)
        n = -1
        while n + 1 < len(self.entries) and self.end(n + 1) <= now:
            n += 1
        return n

    def at(self, n: int) -> float:
        """The clock time at which entry n has just been published."""
        return self.end(n) + 0.01

    def render(self) -> str:
        newest = self.newest()
        first = max(0, newest - self.window + 1)
        lines = ["#EXTM3U", *self.header, f"#EXT-X-MEDIA-SEQUENCE:{first}"]
        disc = sum(1 for d in self.discontinuity_before if 0 < d <= first)  # tags that left the window
        if disc:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{disc}")
        carried: list[str] = []
        for n in range(0, newest + 1):
            entry = self.entries[n]
            keep = [t for t in entry.tags if t.startswith(("#EXT-X-MAP", "#EXT-X-KEY"))]
            if n < first:
                carried = [c for c in carried if not any(c.split(":")[0] == k.split(":")[0] for k in keep)] + keep
                continue
            if n == first:
                lines.extend(carried)
            if n in self.discontinuity_before and n > first:
                lines.append("#EXT-X-DISCONTINUITY")
            if self.pdt:
                lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{pdt_text(self.end(n) - entry.duration)}")
            lines.extend(entry.tags)
            lines.append(entry.uri)
        return "\n".join(lines) + "\n"

    def file(self, name: str) -> Path | None:
        for entry in self.entries:
            candidate = entry.directory / name
            if candidate.is_file():
                return candidate
        return None


def encode(directory: Path, *args: str, name: str = "vod", seconds: float = 6, segment: float = 1.0) -> Path:
    """Run ffmpeg to write a VOD HLS playlist `name`.m3u8 (and its segments) in `directory`; return it."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AssertionError("ffmpeg is not installed, and the HLS media tests need it: apt-get install ffmpeg")
    directory.mkdir(parents=True, exist_ok=True)
    playlist = directory / f"{name}.m3u8"
    command = [
        ffmpeg,
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        *args,
        "-t",
        f"{seconds:g}",
        "-f",
        "hls",
        "-hls_time",
        f"{segment:g}",
        "-hls_playlist_type",
        "vod",
        str(playlist),
    ]
    subprocess.run(command, check=True, timeout=120, cwd=directory)
    return playlist


VIDEO = ("-f", "lavfi", "-i", "testsrc=size=160x90:rate=25")
TONE = ("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000")
H264 = ("-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0")
AAC = ("-c:a", "aac", "-b:a", "64k")


@dataclass
class Origin:
    base: str
    media: dict[str, LiveMedia] = field(default_factory=dict)
    bandwidths: dict[str, int] = field(default_factory=dict)
    master_extra: list[str] = field(default_factory=list)
    static: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    gzip_paths: set[str] = field(default_factory=set)
    cut_short: set[str] = field(default_factory=set)
    """Paths whose body stops early: Content-Length promises more than is sent, then the connection closes."""
    requests: list[str] = field(default_factory=list)
    replays: dict[str, Replay] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, name: str, media: LiveMedia, bandwidth: int = 1_000_000) -> LiveMedia:
        self.media[name] = media
        self.bandwidths[name] = bandwidth
        return media

    def master(self) -> str:
        lines = ["#EXTM3U", "#EXT-X-VERSION:6"]
        for name in self.media:
            lines.append(f"#EXT-X-STREAM-INF:BANDWIDTH={self.bandwidths[name]},RESOLUTION=640x360")
            lines.append(f"{name}/index.m3u8")
        lines.extend(self.master_extra)
        return "\n".join(lines) + "\n"

    def requested(self, predicate: Callable[[str], bool]) -> list[str]:
        return [path for path in self.requests if predicate(path)]


_STREAM_ABOVE = 1024 * 1024
_CHUNK = 64 * 1024


async def _respond(
    request: web.Request, origin: Origin, path: str, status: int, body: bytes, headers: Mapping[str, str]
) -> web.StreamResponse:
    headers = dict(headers)
    if path in origin.gzip_paths:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    if path in origin.cut_short:
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(body) + 100
        await response.prepare(request)
        await response.write(body)
        assert request.transport is not None
        request.transport.close()
        return response
    if len(body) <= _STREAM_ABOVE:
        return web.Response(status=status, body=body, headers=headers)
    # Large bodies go out in chunks, each waiting for the client, so the origin never buffers them whole.
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = len(body)
    await response.prepare(request)
    view = memoryview(body)
    try:
        for start in range(0, len(body), _CHUNK):
            await response.write(view[start : start + _CHUNK])
    except (ConnectionError, RuntimeError):
        pass  # the client stopped reading, as it should for a huge body
    return response


async def _replay(request: web.Request, replay: Replay, rest: str) -> web.StreamResponse:
    if rest == "index.m3u8":
        return web.Response(text=replay.render(), content_type="application/vnd.apple.mpegurl")
    if rest in replay.missing:
        return web.Response(status=404, text="gone")
    if rest in replay.corrupt:
        return web.Response(body=replay.corrupt[rest], content_type="video/mp2t")
    found = replay.file(rest)
    if found is None:
        return web.Response(status=404, text="no such file")
    if "Range" in request.headers:
        replay.ranges.append(request.headers["Range"])
    if replay.honour_range:
        return web.FileResponse(found)  # answers Range with 206 and exactly those bytes
    return web.Response(body=found.read_bytes(), content_type="application/octet-stream")


def make_app(origin: Origin) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        origin.requests.append(path)
        if path in origin.redirects:
            raise web.HTTPFound(origin.redirects[path])
        if path in origin.static:
            status, headers, body = origin.static[path]
            return await _respond(request, origin, path, status, body, headers)
        if path == "/master.m3u8":
            return await _respond(
                request, origin, path, 200, origin.master().encode(), {"Content-Type": "application/x-mpegURL"}
            )
        name, _, rest = path.lstrip("/").partition("/")
        replay = origin.replays.get(name)
        if replay is not None:
            return await _replay(request, replay, rest)
        media = origin.media.get(name)
        if media is None:
            return web.Response(status=404, text="no such stream")
        if rest == "index.m3u8" or rest.endswith(".m3u8"):
            headers = {"Content-Type": "application/vnd.apple.mpegurl"}
            if media.age is not None:
                headers["Age"] = f"{media.age:g}"
            body = media.render().encode() if media.status == 200 else b"error"
            return await _respond(request, origin, path, media.status, body, headers)
        number = media.segment_number(rest)
        if number is not None and number in media.gaps:
            return web.Response(status=404, text="gap")
        status = media.segment_status_for.get(number if number is not None else -1, media.segment_status)
        if media.segment_hang:
            await asyncio.sleep(3600)
        if media.segment_delay:
            await asyncio.sleep(media.segment_delay)
        if status != 200:
            return web.Response(status=status, text=f"segment error {status}")
        return web.Response(body=b"\x47" * media.segment_size, content_type="video/mp2t")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    return app


@asynccontextmanager
async def hls_origin() -> AsyncIterator[Origin]:
    """Serve an Origin on a free 127.0.0.1 port; hung handlers are cut off when it stops."""
    origin = Origin(base="")
    runner = web.AppRunner(make_app(origin), shutdown_timeout=0.2, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    origin.base = f"http://{HOST}:{int(runner.addresses[0][1])}"
    try:
        yield origin
    finally:
        await runner.cleanup()


def load_hls_check(tmp_path: Path, check: Mapping[str, Any], name: str = "stream") -> CheckSpec:
    """Write one hls check to a YAML file and load it as `prober` does."""
    path = tmp_path / f"{name}.yaml"
    document = {"version": 1, "checks": [{"name": name, "type": "hls", **check}]}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    (spec,) = load_config([path]).checks
    return spec
