"""Real MPEG-DASH origins for the dash tests: ffmpeg's DASH muxer writing a live stream into a folder, served
by Debian's nginx (with a `/time` UTCTiming endpoint), or by an aiohttp app that serves the same folder
with faults ffmpeg cannot make: the MPD rewritten (availabilityStartTime moved), a segment answered 404.
Everything listens on 127.0.0.1 and is stopped by the context manager that started it; a missing tool
fails the test with the apt-get line, never skips it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from live_media import SOURCES, free_tcp_port, stop, tool

MODES: dict[str, tuple[str, ...]] = {
    "timeline": ("-use_timeline", "1", "-use_template", "1"),
    "number": ("-use_timeline", "0", "-use_template", "1"),
    "ldash": ("-use_timeline", "0", "-use_template", "1", "-streaming", "1", "-ldash", "1"),
}
"""ffmpeg -f dash template modes: SegmentTimeline with $Number$, $Number$ with @duration, low-latency."""


def encode_dash(source: str, out: Path, mode: str, *, utc: str | None = None, seg: float = 1.0) -> list[str]:
    """ffmpeg arguments: `source` in real time as a live DASH stream (1 s segments) into `out/live.mpd`."""
    args = [tool("ffmpeg", "ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-re", *SOURCES[source]]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-b:a", "64k"] if "-i" in SOURCES[source][4:] else ["-an"]
    args += ["-f", "dash", "-seg_duration", str(seg), *MODES[mode], "-window_size", "8", "-extra_window_size", "4"]
    args += ["-remove_at_exit", "0"]
    if utc is not None:
        args += ["-utc_timing_url", utc]
    return [*args, str(out / "live.mpd")]


def _streamed_for(mpd: Path, seconds: float) -> bool:
    """Whether the MPD at `mpd` exists and its availabilityStartTime is at least `seconds` ago."""
    try:
        found = re.search(r'availabilityStartTime="([^"]+)"', mpd.read_text())
    except OSError:
        return False
    if found is None:
        return False
    began = datetime.fromisoformat(found.group(1).replace("Z", "+00:00")).timestamp()
    return time.time() - began >= seconds


@contextlib.asynccontextmanager
async def dash_encoder(
    out: Path, source: str = "healthy", mode: str = "timeline", *, utc: str | None = None, warmup: float = 3.0
) -> AsyncIterator[asyncio.subprocess.Process]:
    """ffmpeg writing a live DASH stream into `out`; returns once its MPD's availabilityStartTime is `warmup`
    seconds in the past. Counted from the stream's own start, not from launching ffmpeg: on a loaded machine
    ffmpeg can take seconds to begin, and a `$Number$` stream announces nothing before its first segment."""
    out.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        *encode_dash(source, out, mode, utc=utc), stdin=asyncio.subprocess.DEVNULL
    )
    try:
        started = time.monotonic()
        while not _streamed_for(out / "live.mpd", warmup):
            assert process.returncode is None, f"ffmpeg stopped writing DASH ({mode}, {source})"
            assert time.monotonic() - started < warmup + 20, f"ffmpeg wrote no live MPD into {out}"
            await asyncio.sleep(0.1)
        yield process
    finally:
        await stop(process)


@contextlib.asynccontextmanager
async def nginx_static(root: Path, work: Path) -> AsyncIterator[str]:
    """Debian's nginx serving `root` on a loopback port, `/time` answering its clock as xs:dateTime."""
    nginx = tool("nginx", "nginx")
    (work / "logs").mkdir(parents=True, exist_ok=True)
    port = free_tcp_port()
    temp = "".join(
        f"{kind}_temp_path {work}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (work / "nginx.conf").write_text(
        f"user root;\ndaemon off;\npid {work}/nginx.pid;\nerror_log {work}/logs/error.log;\nworker_processes 1;\n"
        "events {}\n"
        f"http {{ access_log off; {temp}"
        "types { application/dash+xml mpd; video/mp4 m4s mp4; } default_type application/octet-stream;\n"
        f"server {{ listen 127.0.0.1:{port}; root {root};\n"
        "location = /time { default_type text/plain; return 200 $time_iso8601; }\n"
        "location / { add_header Cache-Control no-cache; } } }\n"
    )
    process = await asyncio.create_subprocess_exec(
        nginx, "-p", str(work), "-c", str(work / "nginx.conf"), stdin=asyncio.subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            assert process.returncode is None, (work / "logs" / "error.log").read_text()
            assert time.monotonic() < deadline, (work / "logs" / "error.log").read_text()
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        # SIGTERM, not SIGKILL: nginx's master stops its workers on the way out (a killed master orphans them).
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                await stop(process)


@dataclass
class Origin:
    """An aiohttp origin serving a folder; `rewrite` alters the MPD served, `missing` answers 404 for paths."""

    url: str
    rewrite: Callable[[str], str] = lambda text: text
    missing: Callable[[str], bool] = lambda path: False
    requests: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def aiohttp_origin(root: Path) -> AsyncIterator[Origin]:
    origin = Origin("")

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        origin.requests.append(name)
        path = (root / name).resolve()
        if origin.missing(name) or root.resolve() not in path.parents or not path.is_file():
            raise web.HTTPNotFound()
        if name.endswith(".mpd"):
            text = origin.rewrite(path.read_text(encoding="utf-8"))
            return web.Response(text=text, content_type="application/dash+xml")
        return web.Response(body=path.read_bytes(), content_type="video/mp4")

    app = web.Application()
    app.router.add_route("*", "/{name:.+}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_tcp_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    origin.url = f"http://127.0.0.1:{port}"
    try:
        yield origin
    finally:
        await runner.cleanup()


def shift_availability_start(text: str, seconds: float) -> str:
    """The MPD with availabilityStartTime moved by `seconds` (negative: earlier)."""

    def moved(match: re.Match[str]) -> str:
        stamp = datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
        shifted = datetime.fromtimestamp(stamp.timestamp() + seconds, UTC)
        return f'availabilityStartTime="{shifted.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]}Z"'

    return re.sub(r'availabilityStartTime="([^"]+)"', moved, text)
