"""dash against REAL live MPEG-DASH: ffmpeg's DASH muxer in its three template modes (SegmentTimeline,
$Number$ with @duration, low-latency `-streaming 1 -ldash 1`) served by Debian's nginx (UTCTiming from
nginx's clock), and by an aiohttp origin for the faults ffmpeg cannot make: healthy, encoder killed
(stale), frozen, black, silent, a segment that answers 404, availabilityStartTime 60 s off. Every failure
has its healthy twin (the healthy run of the same mode)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from dash_origin import aiohttp_origin, dash_encoder, nginx_static, shift_availability_start
from live_media import load_check

from prober.results import Result
from prober.scheduling.runner import Runner

pytestmark = pytest.mark.slow


def dash(url: str, **more: Any) -> dict[str, Any]:
    return {"type": "dash", "url": url, "timeout": "10s", **more}


async def twice(tmp_path: Path, check: dict[str, Any]) -> tuple[Result, Result]:
    """Two runs of one check with the state kept between them, as the daemon runs it."""
    runner = Runner()
    first = await runner.run(load_check(tmp_path, check))
    second = await runner.run(load_check(tmp_path, check))
    return first, second


@pytest.mark.parametrize("mode", ["timeline", "number", "ldash"])
async def test_a_healthy_ffmpeg_stream_is_up_in_every_template_mode(tmp_path: Path, mode: str) -> None:
    async with (
        nginx_static(tmp_path / "out", tmp_path / "nginx") as base,
        dash_encoder(tmp_path / "out", "healthy", mode, utc=f"{base}/time"),
    ):
        first, second = await twice(tmp_path, dash(f"{base}/live.mpd", content=True))
    for result in (first, second):
        assert result.status == "up", (result.error, result.details)
        metrics = result.metrics
        assert metrics["dynamic"] is True and metrics["fresh"] is True and metrics["consistent"] is True
        assert metrics["representations_total"] == 2 and metrics["representations_failed"] == 0
        assert metrics["segment_status"] == 200 and metrics["init_status"] == 200
        assert metrics["realtime_ratio"] > 1
        assert -1.5 < metrics["live_edge_drift"] < 3.5, metrics["live_edge_drift"]
        assert metrics["clock_offset"] is not None and abs(metrics["clock_offset"]) < 1.5  # nginx's /time
        assert (metrics["width"], metrics["height"]) == (320, 240) and metrics["resolution_matches"] is True
        assert metrics["frozen"] is False and metrics["audio_silent"] is False and metrics["black_ratio"] < 0.5
    assert "looked at the MPD again" in " ".join(first.details["notes"])
    assert second.metrics["pts_gap"] in (0.0, None)


@pytest.mark.parametrize("mode", ["timeline", "number"])
async def test_a_killed_encoder_turns_the_stream_stale(tmp_path: Path, mode: str) -> None:
    runner = Runner()
    async with nginx_static(tmp_path / "out", tmp_path / "nginx") as base:
        check = load_check(tmp_path, dash(f"{base}/live.mpd"))
        async with dash_encoder(tmp_path / "out", "healthy", mode) as encoder:
            before = await runner.run(check)
            encoder.send_signal(signal.SIGKILL)  # no chance to write a static MPD on the way out
            await encoder.wait()
        await asyncio.sleep(4)
        after = await runner.run(check)
    assert before.status == "up", (before.error, before.details)
    assert after.status == "down"
    assert after.metrics["fresh"] is False
    assert after.metrics["stale_for"] > 3.5
    assert after.metrics["dynamic"] is True
    if mode == "timeline":
        # The MPD still lists the last segments, which exist: the freshness fails, and the MPD (ffmpeg's
        # minimumUpdatePeriod is 1 s here) was not refreshed.
        assert after.metrics["segment_status"] == 200
        assert after.metrics["mpd_refreshed"] is False
        assert after.error == (
            "no new DASH segment appeared within 1.5 x the segment duration: the live stream has stalled; "
            "and 1 more failed"
        )
    else:
        # The template keeps announcing segments by the clock; the one due is missing.
        assert after.metrics["segment_status"] == 404
        notes = " ".join(after.details["notes"])
        assert "does not exist; the newest that does is" in notes
        assert after.error is not None and after.error.startswith("no new DASH segment appeared"), after.error
    problems = [item.get("failed", "") for item in after.details["representations"]]
    assert any(problem.startswith("no new segment for") for problem in problems), problems


async def test_a_stream_ended_by_the_encoder_is_a_static_mpd(tmp_path: Path) -> None:
    async with nginx_static(tmp_path / "out", tmp_path / "nginx") as base:
        async with dash_encoder(tmp_path / "out", "healthy", "timeline") as encoder:
            encoder.send_signal(signal.SIGINT)  # ffmpeg ends cleanly and rewrites the MPD as static
            await encoder.wait()
        result = await Runner().run(load_check(tmp_path, dash(f"{base}/live.mpd")))
        vod = await Runner().run(load_check(tmp_path, dash(f"{base}/live.mpd", live=False)))
    assert result.status == "down"
    assert result.error == (
        f'the MPD {base}/live.mpd is static (type="static"): the live stream has ended (for a VOD set live: false)'
    )
    assert vod.status == "up", (vod.error, vod.details)
    assert vod.metrics["fresh"] is None and vod.metrics["segment_status"] == 200


@pytest.mark.parametrize(
    ("source", "metric", "words"),
    [
        ("frozen", "frozen", "the picture has been frozen"),
        ("black", "black_ratio", "the picture is black"),
        ("silent", "audio_silent", "the audio is silent"),
    ],
)
async def test_frozen_black_and_silent_streams_read_like_hls(
    tmp_path: Path, source: str, metric: str, words: str
) -> None:
    # A black picture does not move either: only the frozen case asks for a short frozen_for.
    limit = "1s" if source == "frozen" else "60s"
    async with (
        nginx_static(tmp_path / "out", tmp_path / "nginx") as base,
        dash_encoder(tmp_path / "out", source, "timeline"),
    ):
        _, second = await twice(tmp_path, dash(f"{base}/live.mpd", content={"frozen_for": limit}))
    assert second.status == "down"
    assert second.metrics[metric] not in (None, False, 0.0)
    assert second.error is not None and words in second.error, second.error
    assert second.metrics["fresh"] is True  # the stream is live: only what it shows is wrong


async def test_a_deleted_segment_is_a_404_that_names_the_segment(tmp_path: Path) -> None:
    async with aiohttp_origin(tmp_path / "out") as origin, dash_encoder(tmp_path / "out", "healthy", "timeline"):
        healthy = await Runner().run(load_check(tmp_path, dash(f"{origin.url}/live.mpd")))
        origin.missing = lambda name: name.startswith("chunk-stream0-")
        result = await Runner().run(load_check(tmp_path, dash(f"{origin.url}/live.mpd")))
    assert healthy.status == "up", (healthy.error, healthy.details)
    assert result.status == "down"
    assert result.metrics["segment_status"] == 404
    assert result.error == (
        "a segment the MPD announces returned HTTP 404: players stall on it "
        f"(video representation 0: segment {result.details['representations'][0]['downloads'][0]['url']}: HTTP 404)"
    )
    errors = result.details["errors"]
    assert any(e.startswith("video representation 0: segment ") and e.endswith(": HTTP 404") for e in errors), errors


@pytest.mark.parametrize("mode", ["timeline", "number"])
async def test_an_availability_start_time_60s_early_puts_the_live_edge_60s_behind(tmp_path: Path, mode: str) -> None:
    async with aiohttp_origin(tmp_path / "out") as origin, dash_encoder(tmp_path / "out", "healthy", mode):
        origin.rewrite = lambda text: shift_availability_start(text, -60)
        result = await Runner().run(load_check(tmp_path, dash(f"{origin.url}/live.mpd")))
    assert result.status == "down"
    assert 58 < result.metrics["live_edge_drift"] < 64, result.metrics
    assert result.error is not None
    assert result.error.startswith("the DASH live edge is 6")
    assert "s behind the wall clock (expected <= 30s)" in result.error
    assert result.metrics["fresh"] is True  # segments keep coming: only the clock the MPD gives is wrong


async def test_an_availability_start_time_60s_late_puts_the_live_edge_ahead(tmp_path: Path) -> None:
    async with aiohttp_origin(tmp_path / "out") as origin, dash_encoder(tmp_path / "out", "healthy", "timeline"):
        origin.rewrite = lambda text: shift_availability_start(text, 60)
        result = await Runner().run(load_check(tmp_path, dash(f"{origin.url}/live.mpd")))
    assert result.status == "down"
    assert 56 < result.metrics["live_edge_ahead"] < 62, result.metrics
    assert result.error is not None and result.error.startswith("the DASH live edge is 5")
    assert "s ahead of the wall clock" in result.error
