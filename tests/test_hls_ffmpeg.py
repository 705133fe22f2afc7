"""hls against a REAL live stream: ffmpeg encoding a test pattern to HLS, served by aiohttp on 127.0.0.1.

While ffmpeg runs the check is `up` and `fresh` (through the Runner, and through `prober check --json`
as a subprocess); once ffmpeg is killed the playlist stops changing and the check turns `down` with
`fresh: false` within 2 x the target duration plus one run. Needs /usr/bin/ffmpeg: the test fails
(never skips) with a clear message when it is missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from hls_origin import load_hls_check

from prober.scheduling.runner import Runner

pytestmark = pytest.mark.slow

RUN_EVERY = 0.5


@dataclass
class LiveStream:
    url: str
    process: asyncio.subprocess.Process


def ffmpeg_path() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        pytest.fail("ffmpeg is not installed, and the live HLS test needs it: apt-get install ffmpeg")
    return found


async def wait_for_segments(playlist: Path, count: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if playlist.exists() and playlist.read_text(errors="replace").count("#EXTINF") >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"ffmpeg did not write {count} segments to {playlist} within {limit}s")


@pytest.fixture
async def live_stream(tmp_path: Path) -> AsyncIterator[LiveStream]:
    ffmpeg = ffmpeg_path()
    root = tmp_path / "hls"
    root.mkdir()
    app = web.Application()
    app.router.add_static("/", root)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    # A keyframe every 25 frames (1s at 25 fps) so every segment lasts exactly hls_time.
    process = await asyncio.create_subprocess_exec(
        *(ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-re"),
        *("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0"),
        *("-f", "hls", "-hls_time", "1", "-hls_list_size", "5"),
        *("-hls_flags", "delete_segments+program_date_time+temp_file"),
        str(root / "stream.m3u8"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_for_segments(root / "stream.m3u8", 3, limit=15.0)
        yield LiveStream(f"http://127.0.0.1:{port}/stream.m3u8", process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await runner.cleanup()


async def test_a_live_ffmpeg_stream_is_fresh_and_turns_down_soon_after_ffmpeg_dies(
    live_stream: LiveStream, tmp_path: Path
) -> None:
    spec = load_hls_check(
        tmp_path,
        {"url": live_stream.url, "timeout": "5s", "expect": {"pdt_drift": "< 5s", "realtime_ratio": "> 1"}},
    )
    runner = Runner()
    first = await runner.run(spec)
    assert first.status == "up", first.error
    assert first.metrics["fresh"] is True
    assert first.metrics["target_duration"] == 1
    assert any("looked at the playlist again" in note for note in first.details["notes"])
    for _ in range(4):
        await asyncio.sleep(RUN_EVERY)
        result = await runner.run(spec)
        assert result.status == "up", result.error
        assert result.metrics["fresh"] is True
        assert result.metrics["consistent"] is True
        assert result.metrics["segment_status"] == 200
        assert result.metrics["segment_bytes"] > 1000
    target = result.metrics["target_duration"]

    live_stream.process.kill()
    await live_stream.process.wait()
    killed = time.monotonic()
    while True:
        await asyncio.sleep(RUN_EVERY)
        result = await runner.run(spec)
        waited = time.monotonic() - killed
        if result.status == "down":
            break
        assert waited < 10, "the check never turned down after ffmpeg was killed"
    assert result.metrics["fresh"] is False
    assert result.error == "fresh was false, expected true"
    one_run = RUN_EVERY + result.duration_ms / 1000
    assert waited <= 2 * target + one_run, f"down only {waited:.2f}s after ffmpeg died"


async def test_prober_check_json_reports_a_running_ffmpeg_stream_up(live_stream: LiveStream, tmp_path: Path) -> None:
    path = tmp_path / "live.yaml"
    check = {"name": "live", "type": "hls", "url": live_stream.url, "timeout": "5s", "segments": 2}
    path.write_text(yaml.safe_dump({"version": 1, "checks": [check]}), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "prober", "check", "--json", str(path)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    (line,) = stdout.decode().splitlines()
    result = json.loads(line)
    assert result["status"] == "up", result["error"]
    assert result["metrics"]["fresh"] is True
    assert result["metrics"]["segment_fetch_p95"] > 0
    assert len(result["details"]["variants"][0]["segments"]) == 2
