"""LL-HLS against an aiohttp origin on the real clock: 0.333 s parts, 2 s segments, PROGRAM-DATE-TIME on the
first segment only (the rest follow from EXTINF), CAN-BLOCK-RELOAD, and part tags dropped from older segments
as RFC 8216bis allows. Up and consistent while it runs (with or without the old part tags), `blocking_reload`
measured, and down with a sentence once the parts stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from concurrent_cases import run_cases
from hls_origin import H264, VIDEO, encode, load_hls_check, pdt_text

from prober.scheduling.runner import Runner

pytestmark = pytest.mark.slow

PART = 0.333
PARTS_PER_SEGMENT = 6
SEGMENT = 2.0
WINDOW = 5


@dataclass
class LowLatency:
    segment_bytes: bytes
    started: float = field(default_factory=lambda: time.time() - 12.0)
    keep_parts_for: int | None = 2
    """Part tags are listed for this many of the newest complete segments (None: for all of them)."""
    frozen_at: float | None = None
    blocked: list[float] = field(default_factory=list)
    rendered_at: float = 0.0
    """When the playlist was last rendered: freezing there stops the stream right after what a client saw."""

    def position(self, now: float | None = None) -> tuple[int, int]:
        """(complete segments, parts of the segment in progress) at this moment."""
        now = time.time() if now is None else now
        now = now if self.frozen_at is None else min(now, self.frozen_at)
        segments = int((now - self.started) // SEGMENT)
        parts = min(PARTS_PER_SEGMENT - 1, int(((now - self.started) - segments * SEGMENT) // PART))
        return segments, parts

    def render(self) -> str:
        self.rendered_at = time.time()
        done, in_progress = self.position(self.rendered_at)
        first = max(0, done - WINDOW)
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:9",
            "#EXT-X-TARGETDURATION:2",
            f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={3 * PART:.3f}",
            f"#EXT-X-PART-INF:PART-TARGET={PART}",
            f"#EXT-X-MEDIA-SEQUENCE:{first}",
            f"#EXT-X-PROGRAM-DATE-TIME:{pdt_text(self.started + first * SEGMENT)}",
        ]
        for n in range(first, done):
            if self.keep_parts_for is None or n >= done - self.keep_parts_for:
                lines += [f'#EXT-X-PART:DURATION={PART},URI="part{n}.{p}.ts"' for p in range(PARTS_PER_SEGMENT)]
            lines += [f"#EXTINF:{SEGMENT:.3f},", f"seg{n}.ts"]
        lines += [f'#EXT-X-PART:DURATION={PART},URI="part{done}.{p}.ts"' for p in range(in_progress)]
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part{done}.{in_progress}.ts"')
        return "\n".join(lines) + "\n"


@dataclass
class Served:
    url: str
    stream: LowLatency


@pytest.fixture(scope="module")
def segment_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    playlist = encode(tmp_path_factory.mktemp("ll"), *VIDEO, *H264, name="ll", seconds=2, segment=2)
    return (playlist.parent / "ll0.ts").read_bytes()


@contextlib.asynccontextmanager
async def serve_low_latency(segment_bytes: bytes) -> AsyncIterator[Served]:
    """A stream and its origin of their own on a loopback port."""
    stream = LowLatency(segment_bytes)

    async def playlist(request: web.Request) -> web.Response:
        msn = request.query.get("_HLS_msn")
        if msn is not None:
            started = time.monotonic()
            deadline = started + 3 * SEGMENT  # RFC 8216bis 6.2.5.2: then answer 503
            while stream.position()[0] <= int(msn):
                if time.monotonic() > deadline:
                    return web.Response(status=503, text="segment not ready")
                await asyncio.sleep(0.02)
            stream.blocked.append(time.monotonic() - started)
        return web.Response(text=stream.render(), content_type="application/vnd.apple.mpegurl")

    async def media(request: web.Request) -> web.Response:
        return web.Response(body=stream.segment_bytes, content_type="video/mp2t")

    app = web.Application()
    app.router.add_get("/ll/index.m3u8", playlist)
    app.router.add_get("/ll/{name}", media)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Served(f"http://127.0.0.1:{int(runner.addresses[0][1])}/ll/index.m3u8", stream)
    finally:
        await runner.cleanup()


@pytest.fixture
async def low_latency(segment_bytes: bytes) -> AsyncIterator[Served]:
    async with serve_low_latency(segment_bytes) as served:
        yield served


async def a_running_ll_hls_stream_is_up_and_consistent(
    keep_parts_for: int | None, low_latency: Served, tmp_path: Path
) -> None:
    low_latency.stream.keep_parts_for = keep_parts_for
    runner = Runner(persistent_state=True)
    spec = load_hls_check(tmp_path, {"url": low_latency.url, "timeout": "6s", "expect": {"pdt_drift": "< 3s"}})
    results = []
    for _ in range(3):
        results.append(await runner.run(spec))
        await asyncio.sleep(0.3)
    for result in results:
        assert result.status == "up", result.error
        assert result.metrics["consistent"] is True, result.details["inconsistencies"]
        assert result.metrics["part_target"] == pytest.approx(PART)
        assert 0 < result.metrics["blocking_reload"] <= SEGMENT + 0.5
    # Even the first run looks twice: the blocking reload answers once the next segment is there.
    assert all(result.metrics["part_fresh"] is True for result in results)
    assert all(result.metrics["part_stale_for"] == 0 for result in results)
    assert len(low_latency.stream.blocked) == 3
    for result in results:  # a segment's PDT follows from EXTINF: wall clock minus its end stays small
        assert -1 < result.metrics["pdt_drift"] < SEGMENT + 1


async def test_a_running_ll_hls_stream_is_up_and_consistent_with_old_part_tags_dropped_or_kept(
    segment_bytes: bytes, tmp_path: Path
) -> None:
    """Both playlists (old part tags dropped after 2 segments, or all kept), each its own stream and origin,
    run at once."""
    cases = {"old-part-tags-dropped": 2, "all-part-tags-kept": None}
    async with contextlib.AsyncExitStack() as stack:
        served = {name: await stack.enter_async_context(serve_low_latency(segment_bytes)) for name in cases}
        for name in cases:
            (tmp_path / name).mkdir()
        await run_cases(
            *(
                a_running_ll_hls_stream_is_up_and_consistent(keep, served[name], tmp_path / name)
                for name, keep in cases.items()
            )
        )


async def test_an_ll_hls_stream_whose_parts_stop_is_down_saying_so(low_latency: Served, tmp_path: Path) -> None:
    runner = Runner(persistent_state=True)
    spec = load_hls_check(tmp_path, {"url": low_latency.url, "timeout": "3s"})
    first = await runner.run(spec)
    assert first.status == "up", first.error
    low_latency.stream.frozen_at = low_latency.stream.rendered_at  # nothing new after the last look
    await asyncio.sleep(1.5)
    second = await runner.run(spec)
    assert second.status == "down"
    # The wait for the next part counts: `fresh` may fail too, but the error names the cause, the parts.
    assert second.metrics["blocking_reload"] > 3 * PART
    assert second.metrics["part_fresh"] is False and second.metrics["part_stale_for"] > 3 * PART
    assert second.error == "no new LL-HLS part appeared within 3 x PART-TARGET: the low-latency stream has stalled"
    assert math.isclose(second.metrics["part_target"], PART)


async def test_prober_check_on_ll_hls_needs_no_second_look_beyond_the_blocking_reload(
    low_latency: Served, tmp_path: Path
) -> None:
    spec = load_hls_check(tmp_path, {"url": low_latency.url, "timeout": "8s"})
    started = time.monotonic()
    result = await Runner().run(spec)  # `prober check`: no saved state
    took = time.monotonic() - started
    assert result.status == "up", result.error
    assert result.metrics["fresh"] is True and result.metrics["stale_for"] == 0
    notes = " ".join(result.details.get("notes", []))
    assert "the blocking reload saw a new segment appear" in notes
    assert "looked at the playlist again" not in notes
    assert took < SEGMENT + 1.5  # not the 1.6 x target duration of looking twice
