"""A huge playlist cannot hold the event loop: a 4 MB, 70k-segment playlist checked every 5 s beside three
http checks every 1 s, under the real scheduler, and the http checks miss no run.

The twin parses the same playlist on the event loop (what the probe did before): the loop stalls for the
length of the parse and the 1 s checks let runs go by, which shows the test can tell the difference.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from prober.config.loader import CheckSpec, load_config
from prober.probes.hls.fetch import PLAYLIST_LIMIT
from prober.probes.hls.playlist import parse_playlist
from prober.scheduling.runner import Runner
from prober.scheduling.scheduler import Scheduler

pytestmark = pytest.mark.slow

SEGMENTS = 70_000
"""4 MB within the 200,000 lines prober parses (`MAX_LINES`): long segment URIs, as real origins write them."""
SECONDS = 8.0


def huge_playlist() -> bytes:
    head = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n"
    body = (
        head + "".join(f"#EXTINF:2.000,\na?segment={n:012d}&rendition=1080p-main\n" for n in range(SEGMENTS))
    ).encode()
    assert 3_900_000 < len(body) <= PLAYLIST_LIMIT
    return body


@pytest.fixture
async def target() -> AsyncIterator[tuple[str, bytes]]:
    playlist = huge_playlist()

    async def serve_playlist(request: web.Request) -> web.Response:
        return web.Response(body=playlist, content_type="application/vnd.apple.mpegurl")

    async def serve_segment(request: web.Request) -> web.Response:
        return web.Response(body=b"\x47" * 1880, content_type="video/mp2t")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/huge.m3u8", serve_playlist)
    app.router.add_get("/a", serve_segment)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{int(runner.addresses[0][1])}", playlist
    finally:
        await runner.cleanup()


def specs(tmp_path: Path, base: str) -> list[CheckSpec]:
    checks: list[dict[str, Any]] = [
        # The default 10 s timeout: m3u8 parses 4 MB in about 3 s of CPU, more on a busy machine.
        {"name": "huge", "type": "hls", "url": f"{base}/huge.m3u8", "schedule": "every 5s"}
    ]
    checks += [
        {"name": f"api-{n}", "type": "http", "url": f"{base}/health", "schedule": "every 1s", "timeout": "900ms"}
        for n in range(3)
    ]
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "checks": checks}), encoding="utf-8")
    return list(load_config([path]).checks)


async def watch_loop(stop: asyncio.Event) -> float:
    """The longest the event loop went without running a 20 ms ticker."""
    worst, last = 0.0, time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.02)
        now = time.monotonic()
        worst, last = max(worst, now - last - 0.02), now
    return worst


async def schedule(
    checks: list[CheckSpec], run: Callable[[CheckSpec, datetime], Awaitable[None]]
) -> tuple[Scheduler, float]:
    scheduler = Scheduler(checks, run)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_loop(stop))
    await scheduler.start()
    await asyncio.sleep(SECONDS)
    await scheduler.stop(5.0)
    stop.set()
    return scheduler, await watcher


async def test_a_huge_playlist_does_not_make_1s_http_checks_miss_a_run(
    target: tuple[str, bytes], tmp_path: Path
) -> None:
    base, _ = target
    runner = Runner()
    results: dict[str, list[Any]] = {}

    async def run(spec: CheckSpec, scheduled: datetime) -> None:
        results.setdefault(spec.name, []).append(await runner.run(spec))

    scheduler, worst = await schedule(specs(tmp_path, base), run)
    assert results["huge"], "the hls check never ran"
    hls_result = results["huge"][0]
    assert hls_result.metrics.get("segment_count") == SEGMENTS, (hls_result.error, hls_result.duration_ms)
    for n in range(3):
        stats = scheduler.check_stats(f"api-{n}")
        assert stats is not None
        assert stats.missed == 0 and stats.skipped == 0, stats
        assert stats.completed >= SECONDS - 2
        assert all(result.status == "up" for result in results[f"api-{n}"]), [r.error for r in results[f"api-{n}"]]
    print(f"worst event-loop stall beside the huge playlist: {worst * 1000:.0f} ms")
    assert worst < 0.5, f"the event loop stalled for {worst:.2f}s"


async def test_the_twin_parsing_on_the_event_loop_stalls_it(target: tuple[str, bytes], tmp_path: Path) -> None:
    base, body = target
    runner = Runner()

    async def run(spec: CheckSpec, scheduled: datetime) -> None:
        if spec.type == "hls":
            parse_playlist(body)  # on the loop, as the probe used to
        else:
            await runner.run(spec)

    started = time.process_time()
    parse_playlist(body)
    cost = time.process_time() - started
    _, worst = await schedule(specs(tmp_path, base), run)
    print(f"parsing on the loop ({cost:.2f}s CPU) stalled it {worst:.2f}s")
    assert worst > min(0.5, 0.8 * cost), f"a {cost:.2f}s parse on the loop stalled it only {worst:.2f}s"
