"""dash against REAL live MPEG-DASH: ffmpeg's DASH muxer in its three template modes (SegmentTimeline,
$Number$ with @duration, low-latency `-streaming 1 -ldash 1`) served by Debian's nginx (UTCTiming from
nginx's clock), and by an aiohttp origin for the faults ffmpeg cannot make: healthy, encoder killed
(stale), frozen, black, silent, a segment that answers 404, availabilityStartTime 60 s off. Every failure
has its healthy twin (the healthy run of the same mode)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from concurrent_cases import run_cases
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


def case_dir(tmp_path: Path, name: str) -> Path:
    """A folder of its own for one case of a test whose cases run at once."""
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def healthy_runs(tmp_path: Path, mode: str) -> tuple[Result, Result]:
    async with (
        nginx_static(tmp_path / "out", tmp_path / "nginx") as base,
        dash_encoder(tmp_path / "out", "healthy", mode, utc=f"{base}/time"),
    ):
        return await twice(tmp_path, dash(f"{base}/live.mpd", content=True))


async def test_a_healthy_ffmpeg_stream_is_up_in_every_template_mode(tmp_path: Path) -> None:
    """The three template modes, each its own encoder and nginx, run at once (independent cases)."""
    modes = ["timeline", "number", "ldash"]
    runs = await run_cases(*(healthy_runs(case_dir(tmp_path, mode), mode) for mode in modes))
    for mode, (first, second) in zip(modes, runs, strict=True):
        for result in (first, second):
            assert result.status == "up", (mode, result.error, result.details)
            metrics = result.metrics
            assert metrics["dynamic"] is True and metrics["fresh"] is True and metrics["consistent"] is True, mode
            assert metrics["representations_total"] == 2 and metrics["representations_failed"] == 0, mode
            assert metrics["segment_status"] == 200 and metrics["init_status"] == 200, mode
            assert metrics["realtime_ratio"] > 1, mode
            assert -1.5 < metrics["live_edge_drift"] < 3.5, (mode, metrics["live_edge_drift"])
            assert metrics["clock_offset"] is not None and abs(metrics["clock_offset"]) < 1.5, mode  # nginx's /time
            assert (metrics["width"], metrics["height"]) == (320, 240) and metrics["resolution_matches"] is True, mode
            assert metrics["frozen"] is False and metrics["audio_silent"] is False and metrics["black_ratio"] < 0.5, (
                mode
            )
        assert "looked at the MPD again" in " ".join(first.details["notes"]), mode
        assert second.metrics["pts_gap"] in (0.0, None), mode


async def killed_runs(tmp_path: Path, mode: str) -> tuple[Result, Result]:
    runner = Runner()
    async with nginx_static(tmp_path / "out", tmp_path / "nginx") as base:
        check = load_check(tmp_path, dash(f"{base}/live.mpd"))
        async with dash_encoder(tmp_path / "out", "healthy", mode) as encoder:
            before = await runner.run(check)
            encoder.send_signal(signal.SIGKILL)  # no chance to write a static MPD on the way out
            await encoder.wait()
        await asyncio.sleep(4)
        after = await runner.run(check)
    return before, after


async def test_a_killed_encoder_turns_the_stream_stale(tmp_path: Path) -> None:
    """Both template modes, each its own encoder and nginx, run at once (independent cases)."""
    modes = ["timeline", "number"]
    outcomes = await run_cases(*(killed_runs(case_dir(tmp_path, mode), mode) for mode in modes))
    for mode, (before, after) in zip(modes, outcomes, strict=True):
        assert before.status == "up", (mode, before.error, before.details)
        assert after.status == "down", mode
        assert after.metrics["fresh"] is False, json.dumps([mode, after.metrics, after.details], default=str)
        assert after.metrics["stale_for"] > 3.5, (mode, after.metrics["stale_for"])
        assert after.metrics["dynamic"] is True, mode
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
        assert any(problem.startswith("no new segment for") for problem in problems), (mode, problems)


async def test_a_late_but_live_number_origin_is_fresh_with_its_missing_segment_a_404(tmp_path: Path) -> None:
    """The killed encoder's twin in `$Number$` mode: an origin that serves each segment only 2.5 s after ffmpeg
    wrote it (past the 0.5 s grace) is missing the segment the clock announces, but new segments keep coming:
    a 404, not a stalled stream."""
    out = tmp_path / "out"

    def young(name: str) -> bool:
        try:
            return name.startswith("chunk-") and time.time() - (out / name).stat().st_mtime < 2.5
        except OSError:
            return False

    runner = Runner()
    async with aiohttp_origin(out) as origin, dash_encoder(out, "healthy", "number", warmup=5.0):
        origin.missing = young
        check = load_check(tmp_path, dash(f"{origin.url}/live.mpd"))
        first = await runner.run(check)
        await asyncio.sleep(2)
        second = await runner.run(check)
    for result in (first, second):
        assert result.status == "down" and result.metrics["segment_status"] == 404, (result.error, result.details)
        assert result.metrics["fresh"] is True, json.dumps([result.metrics, result.details], default=str)
    notes = " ".join(second.details["notes"])
    assert "the newest segment the MPD announces is missing: looked at the MPD again after " in notes, notes
    assert "; a new segment appeared" in notes, notes


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


async def content_runs(tmp_path: Path, source: str) -> Result:
    # A black picture does not move either: only the frozen case asks for a short frozen_for.
    limit = "1s" if source == "frozen" else "60s"
    async with (
        nginx_static(tmp_path / "out", tmp_path / "nginx") as base,
        dash_encoder(tmp_path / "out", source, "timeline"),
    ):
        _, second = await twice(tmp_path, dash(f"{base}/live.mpd", content={"frozen_for": limit}))
    return second


async def test_frozen_black_and_silent_streams_read_like_hls(tmp_path: Path) -> None:
    """The three sources, each its own encoder and nginx, run at once (independent cases)."""
    cases = [
        ("frozen", "frozen", "the picture has been frozen"),
        ("black", "black_ratio", "the picture is black"),
        ("silent", "audio_silent", "the audio is silent"),
    ]
    seconds = await run_cases(*(content_runs(case_dir(tmp_path, source), source) for source, _, _ in cases))
    for (source, metric, words), second in zip(cases, seconds, strict=True):
        assert second.status == "down", (source, second.error)
        assert second.metrics[metric] not in (None, False, 0.0), (source, second.metrics[metric])
        assert second.error is not None and words in second.error, (source, second.error)
        assert second.metrics["fresh"] is True, source  # the stream is live: only what it shows is wrong


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


async def shifted_run(tmp_path: Path, mode: str, seconds: float) -> Result:
    async with aiohttp_origin(tmp_path / "out") as origin, dash_encoder(tmp_path / "out", "healthy", mode):
        origin.rewrite = lambda text: shift_availability_start(text, seconds)
        return await Runner().run(load_check(tmp_path, dash(f"{origin.url}/live.mpd")))


async def test_an_availability_start_time_60s_off_puts_the_live_edge_60s_behind_or_ahead(tmp_path: Path) -> None:
    """60 s early in both template modes and 60 s late, each its own encoder and origin, run at once."""
    early_modes = ["timeline", "number"]
    *early, late = await run_cases(
        *(shifted_run(case_dir(tmp_path, f"early-{mode}"), mode, -60) for mode in early_modes),
        shifted_run(case_dir(tmp_path, "late-timeline"), "timeline", 60),
    )
    for mode, result in zip(early_modes, early, strict=True):
        assert result.status == "down", mode
        assert 58 < result.metrics["live_edge_drift"] < 64, (mode, result.metrics)
        assert result.error is not None, mode
        assert result.error.startswith("the DASH live edge is 6"), (mode, result.error)
        assert "s behind the wall clock (expected <= 30s)" in result.error, (mode, result.error)
        assert result.metrics["fresh"] is True, mode  # segments keep coming: only the clock the MPD gives is wrong
    # 60 s late
    assert late.status == "down"
    assert 56 < late.metrics["live_edge_ahead"] < 62, late.metrics
    assert late.error is not None and re.match(r"the DASH live edge is (5[6-9]|6[0-2]) s ahead", late.error), late.error
    assert "s ahead of the wall clock" in late.error
