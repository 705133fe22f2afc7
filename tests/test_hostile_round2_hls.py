"""Heavy playlists cannot starve everything else (second hostile round, point 3).

Before: three hostile playlists at once (300,000 segments, 1,000,000 lines, a master of 10,000 variants,
each checked every 5 s) made every HLS run time out and cost 1 s http checks a third of their runs (gaps up
to 6 s): parsing in worker threads shares the interpreter lock with the event loop. Now a playlist of more
than `MAX_LINES` lines is refused before parsing, with a sentence, so one target costs at most about a
CPU-second per run. The three run together beside 1 s http checks, under the real scheduler and runner, with
their healthy twin (a 4 MB playlist just under the limit, parsed and up): no http run is missed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from prober.config.loader import CheckSpec, load_config
from prober.probes.hls.fetch import PLAYLIST_LIMIT
from prober.probes.hls.playlist import MAX_LINES, PlaylistError, parse_playlist
from prober.scheduling.runner import Runner
from prober.scheduling.scheduler import Scheduler

SECONDS = 12.0
HEAD = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n"
TWIN_SEGMENTS = 66_000


def playlists() -> dict[str, bytes]:
    variants = "".join(
        f'#EXT-X-STREAM-INF:BANDWIDTH={100_000 + n},RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"\n'
        f"small.m3u8?variant={n}\n"
        for n in range(10_000)
    )
    found = {
        "segments-300k": (HEAD + "#EXTINF:2,\na\n" * 300_000).encode(),
        "lines-1m": (HEAD + "#\n" * 1_000_000).encode(),
        "master-10k": ("#EXTM3U\n" + variants).encode(),
        "twin": (
            HEAD + "".join(f"#EXTINF:2.000,\na?segment={n:012d}&rendition=1080p-main\n" for n in range(TWIN_SEGMENTS))
        ).encode(),
        "small": (HEAD + "#EXTINF:2,\na\n" * 5).encode(),
    }
    assert all(len(body) <= PLAYLIST_LIMIT for body in found.values())
    assert found["twin"].count(b"\n") < MAX_LINES < found["segments-300k"].count(b"\n")
    return found


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    bodies = playlists()

    async def playlist(request: web.Request) -> web.Response:
        body = bodies[request.match_info["name"]]
        return web.Response(body=body, content_type="application/vnd.apple.mpegurl")

    async def segment(request: web.Request) -> web.Response:
        return web.Response(body=b"\x47" * 1880, content_type="video/mp2t")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{name}.m3u8", playlist)
    app.router.add_get("/a", segment)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{int(runner.addresses[0][1])}"
    finally:
        await runner.cleanup()


def test_a_playlist_over_the_line_limit_is_refused_before_parsing_with_a_sentence() -> None:
    bodies = playlists()
    for name in ("segments-300k", "lines-1m"):
        started = time.process_time()
        with pytest.raises(PlaylistError) as refused:
            parse_playlist(bodies[name])
        assert time.process_time() - started < 0.1
        lines = bodies[name].count(b"\n") + 1
        assert str(refused.value) == (
            f"it has {lines:,} lines, more than the 200,000 prober parses (a 24-hour window of 2 s segments "
            "is about 130,000); stopped before parsing it"
        )
    twin = parse_playlist(bodies["twin"])  # the healthy twin, just under the limit
    assert len(getattr(twin, "segments", [])) == TWIN_SEGMENTS


def _specs(tmp_path: Path, base: str) -> list[CheckSpec]:
    checks: list[dict[str, Any]] = [
        {"name": name, "type": "hls", "url": f"{base}/{name}.m3u8", "schedule": "every 5s", "live": False}
        for name in ("segments-300k", "lines-1m", "master-10k", "twin")
    ]
    checks += [
        {"name": f"api-{n}", "type": "http", "url": f"{base}/health", "schedule": "every 1s", "timeout": "900ms"}
        for n in range(3)
    ]
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "checks": checks}), encoding="utf-8")
    return list(load_config([path]).checks)


async def _watch(stop: asyncio.Event) -> float:
    worst, last = 0.0, time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.02)
        now = time.monotonic()
        worst, last = max(worst, now - last - 0.02), now
    return worst


@pytest.mark.slow
async def test_three_hostile_playlists_together_cost_the_1s_checks_no_run(origin: str, tmp_path: Path) -> None:
    runner = Runner()
    results: dict[str, list[Any]] = {}

    async def run(spec: CheckSpec, scheduled: datetime) -> None:
        results.setdefault(spec.name, []).append(await runner.run(spec))

    scheduler = Scheduler(_specs(tmp_path, origin), run)
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch(stop))
    cpu = time.process_time()
    await scheduler.start()
    await asyncio.sleep(SECONDS)
    await scheduler.stop(10.0)
    stop.set()
    worst = await watcher
    cpu = time.process_time() - cpu
    await runner.resources.aclose()

    for name in ("segments-300k", "lines-1m"):
        assert len(results.get(name, [])) >= 2, name
        for result in results[name]:
            assert result.status == "down"
            assert "lines, more than the 200,000 prober parses" in (result.error or ""), result.error
            assert result.duration_ms < 1000, (name, result.duration_ms)
    assert results["master-10k"], "the master check never ran"
    assert all("timed out" not in (result.error or "") for result in results["master-10k"]), results["master-10k"]
    assert [result.status for result in results["twin"]].count("up") == len(results["twin"]) >= 2, [
        result.error for result in results["twin"]
    ]
    for n in range(3):
        stats = scheduler.check_stats(f"api-{n}")
        assert stats is not None
        assert stats.missed == 0 and stats.skipped == 0, stats
        assert stats.completed >= SECONDS - 2, stats
        assert all(result.status == "up" for result in results[f"api-{n}"]), [r.error for r in results[f"api-{n}"]]
    verdicts = {name: [round(r.duration_ms) for r in results[name]] for name in results if "api" not in name}
    print(
        f"\nthree hostile playlists + twin beside 1 s checks for {SECONDS:g}s: worst loop stall {worst * 1000:.0f} ms,"
        f" CPU {cpu:.1f}s; http runs {[len(results[f'api-{n}']) for n in range(3)]};"
        f" verdicts (ms): {verdicts}"
        f"; master: {[r.status for r in results['master-10k']]}"
    )
    assert worst < 0.5, f"the event loop stalled for {worst:.2f}s"
