"""LL-HLS stalls judged on the blocking reload, against an origin that follows RFC 8216bis 6.2.5.2 on the real clock.

The origin publishes a 0.333 s part every 0.333 s (six to a 2 s segment of ffmpeg-made MPEG-TS), advertises
CAN-BLOCK-RELOAD and holds `_HLS_msn=M&_HLS_part=P` until that part exists (503 after 3 x the target duration).
Once the stream is known, a run asks for the next part; no answer within 3 x PART-TARGET is the evidence of a
stall, judged in the same run. Runs come every 2 s, as a daemon's would: the stall must be down, with the parts
sentence (the cause, although `fresh` fails too by then), within 3 x PART-TARGET + 1.5 x TARGETDURATION + one
run of the last part. Its healthy twins: a running stream stays up with part-sized waits, and an origin that
ignores `_HLS_part` (it holds until the whole segment) is not taken for a stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from concurrent_cases import run_cases
from hls_origin import H264, VIDEO, encode, load_hls_check, pdt_text

from prober.results import Result
from prober.scheduling.runner import Runner

pytestmark = pytest.mark.slow

PART = 0.333
PARTS_PER_SEGMENT = 6
SEGMENT = 2.0
TARGET = 2
WINDOW = 5
INTERVAL = 2.0
"""Seconds between the starts of two runs, as `schedule: every 2s` gives."""
LIMIT = 3 * PART + 1.5 * TARGET + INTERVAL
STALLED = "no new LL-HLS part appeared within 3 x PART-TARGET: the low-latency stream has stalled"


@dataclass
class Stream:
    """A live LL-HLS stream on the real clock; `frozen_at` stops it (nothing published after that moment)."""

    started: float = field(default_factory=lambda: time.time() - 12.0)
    frozen_at: float | None = None
    honour_part: bool = True
    """False: the origin ignores `_HLS_part` and holds every blocking request until the next whole segment."""
    asked: list[str] = field(default_factory=list)
    """The query string of every blocking request."""

    def position(self, now: float | None = None) -> tuple[int, int]:
        """(complete segments, parts of the segment in progress)."""
        now = time.time() if now is None else now
        now = now if self.frozen_at is None else min(now, self.frozen_at)
        segments = int((now - self.started) // SEGMENT)
        parts = min(PARTS_PER_SEGMENT - 1, int(((now - self.started) - segments * SEGMENT) // PART))
        return segments, parts

    def last_published(self) -> float:
        """When the newest part (or segment) that will ever appear appeared: the stall starts there."""
        assert self.frozen_at is not None
        done, parts = self.position(self.frozen_at)
        return self.started + done * SEGMENT + parts * PART

    def ready(self, msn: int, part: int | None) -> bool:
        done, parts = self.position()
        if part is None or not self.honour_part:
            return done > msn
        return done > msn or (done == msn and parts > part)

    def render(self) -> str:
        done, in_progress = self.position()
        first = max(0, done - WINDOW)
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:9",
            f"#EXT-X-TARGETDURATION:{TARGET}",
            f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={3 * PART:.3f}",
            f"#EXT-X-PART-INF:PART-TARGET={PART}",
            f"#EXT-X-MEDIA-SEQUENCE:{first}",
            f"#EXT-X-PROGRAM-DATE-TIME:{pdt_text(self.started + first * SEGMENT)}",
        ]
        for n in range(first, done):
            if n >= done - 2:
                lines += [f'#EXT-X-PART:DURATION={PART},URI="part{n}.{p}.ts"' for p in range(PARTS_PER_SEGMENT)]
            lines += [f"#EXTINF:{SEGMENT:.3f},", f"seg{n}.ts"]
        lines += [f'#EXT-X-PART:DURATION={PART},URI="part{done}.{p}.ts"' for p in range(in_progress)]
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part{done}.{in_progress}.ts"')
        return "\n".join(lines) + "\n"


@dataclass
class Served:
    url: str
    stream: Stream


@pytest.fixture(scope="module")
def segment_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    playlist = encode(tmp_path_factory.mktemp("llstall"), *VIDEO, *H264, name="ll", seconds=2, segment=2)
    return (playlist.parent / "ll0.ts").read_bytes()


@contextlib.asynccontextmanager
async def serve(segment_bytes: bytes, stream: Stream) -> AsyncIterator[Served]:
    """An origin of its own for `stream` on a loopback port."""

    async def playlist(request: web.Request) -> web.Response:
        msn = request.query.get("_HLS_msn")
        if msn is not None:
            stream.asked.append(request.query_string)
            part = request.query.get("_HLS_part")
            deadline = time.monotonic() + 3 * TARGET  # RFC 8216bis 6.2.5.2: then 503
            while not stream.ready(int(msn), None if part is None else int(part)):
                if time.monotonic() > deadline:
                    return web.Response(status=503, text="not ready")
                await asyncio.sleep(0.01)
        return web.Response(text=stream.render(), content_type="application/vnd.apple.mpegurl")

    async def media(request: web.Request) -> web.Response:
        return web.Response(body=segment_bytes, content_type="video/mp2t")

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


@dataclass
class Run:
    started: float
    ended: float
    result: Result


async def every_interval(runner: Runner, spec: object, *, until: float, stop_when_down: bool = True) -> list[Run]:
    """Runs every INTERVAL seconds (the next at once when one overran), as the daemon's scheduler starts them."""
    runs: list[Run] = []
    slot = time.time()
    while time.time() < until:
        started = time.time()
        result = await runner.run(spec)  # type: ignore[arg-type]
        runs.append(Run(started, time.time(), result))
        if stop_when_down and result.status == "down":
            break
        slot += INTERVAL
        await asyncio.sleep(max(0.0, slot - time.time()))
        slot = max(slot, time.time())
    return runs


async def a_stall_is_down_with_the_parts_sentence_within_the_limit_of_the_last_part(
    origin: Served, tmp_path: Path
) -> None:
    spec = load_hls_check(tmp_path, {"url": origin.url, "timeout": "8s"})
    runner = Runner(persistent_state=True)
    began = time.time()
    origin.stream.frozen_at = began + 5.2  # mid-segment, between two runs' looks
    runs = await every_interval(runner, spec, until=began + 20)
    last_part = origin.stream.last_published()
    before = [run for run in runs if run.ended <= last_part]
    assert len(before) >= 2 and all(run.result.status == "up" for run in before), [r.result.error for r in before]
    down = runs[-1]
    assert down.result.status == "down", "the stall was never reported"
    detected = down.ended - last_part
    print(f"\nLL-HLS stall detected {detected:.2f}s after the last part (limit {LIMIT:.2f}s)")
    assert detected <= LIMIT
    assert down.result.error == STALLED  # the cause: `fresh` may have failed as well by then
    assert down.result.metrics["part_fresh"] is False
    assert down.result.metrics["part_stale_for"] > 3 * PART
    assert down.result.metrics["blocking_reload"] == pytest.approx(3 * PART + 0.1, abs=0.3)
    notes = " ".join(down.result.details.get("notes", []))
    assert "the blocking reload for the next part got no answer within" in notes
    assert any("_HLS_part=" in query for query in origin.stream.asked)


async def a_running_stream_stays_up_with_part_sized_blocking_waits(origin: Served, tmp_path: Path) -> None:
    spec = load_hls_check(tmp_path, {"url": origin.url, "timeout": "8s"})
    runs = await every_interval(Runner(persistent_state=True), spec, until=time.time() + 7, stop_when_down=False)
    assert len(runs) >= 3
    for run in runs:
        assert run.result.status == "up", run.result.error
        assert run.result.metrics["part_fresh"] in (True, None)
    later = runs[1:]  # the first run waits for a segment: its second look
    assert all(run.result.metrics["blocking_reload"] < 3 * PART for run in later)
    assert all(run.result.metrics["part_stale_for"] < 3 * PART for run in later)
    assert origin.stream.asked[0].count("_HLS_part") == 0
    assert all("_HLS_part=" in query for query in origin.stream.asked[1:])


async def an_origin_that_ignores_hls_part_is_not_taken_for_a_stall(origin: Served, tmp_path: Path) -> None:
    assert origin.stream.honour_part is False
    spec = load_hls_check(tmp_path, {"url": origin.url, "timeout": "8s"})
    runs = await every_interval(Runner(persistent_state=True), spec, until=time.time() + 7, stop_when_down=False)
    assert all(run.result.status == "up" for run in runs), [run.result.error for run in runs]
    late = [run for run in runs[1:] if run.result.metrics["blocking_reload"] > 3 * PART]
    assert late, "the origin answered every part request in time: the test did not exercise the late path"
    for run in late:
        notes = " ".join(run.result.details.get("notes", []))
        assert "holds _HLS_part requests too long" in notes


async def test_a_stall_is_down_in_time_and_its_twins_stay_up(segment_bytes: bytes, tmp_path: Path) -> None:
    """The stall and its two healthy twins, each with its own stream and origin, run at once (independent
    cases on the real clock; the first failing case is raised once all three have ended)."""
    for case in ("stall", "running", "whole"):
        (tmp_path / case).mkdir()
    async with (
        serve(segment_bytes, Stream()) as stalling,
        serve(segment_bytes, Stream()) as running,
        serve(segment_bytes, Stream(honour_part=False)) as whole_segments,
    ):
        await run_cases(
            a_stall_is_down_with_the_parts_sentence_within_the_limit_of_the_last_part(stalling, tmp_path / "stall"),
            a_running_stream_stays_up_with_part_sized_blocking_waits(running, tmp_path / "running"),
            an_origin_that_ignores_hls_part_is_not_taken_for_a_stall(whole_segments, tmp_path / "whole"),
        )
