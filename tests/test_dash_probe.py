"""dash against MPDs served by a real aiohttp origin on loopback: hostile and broken MPDs (each a sentence, the
process unharmed), VOD from ffmpeg's single-file modes (SegmentList with byte ranges, SegmentBase with a
sidx), a hand-written multi-Period MPD over ffmpeg segments, UTCTiming clocks, and timelines that go
backwards or renumber their segments across runs."""

from __future__ import annotations

import asyncio
import struct
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from dash_origin import aiohttp_origin
from live_media import free_tcp_port, load_check, tool

from prober.probes.dash.mpd import MPD_LIMIT
from prober.scheduling.runner import Runner


def dash(url: str, **more: Any) -> dict[str, Any]:
    return {"type": "dash", "url": url, "timeout": "10s", **more}


def stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def test_a_50_mb_mpd_is_read_no_further_than_8_mib(tmp_path: Path) -> None:
    (tmp_path / "huge.mpd").write_text("<MPD>" + " " * (50 * 1024 * 1024) + "</MPD>")
    async with aiohttp_origin(tmp_path) as origin:
        started = time.process_time()
        result = await Runner().run(load_check(tmp_path, dash(f"{origin.url}/huge.mpd")))
    assert result.status == "down"
    assert result.error == (
        f"cannot fetch the MPD {origin.url}/huge.mpd: the MPD is larger than {MPD_LIMIT // 2**20} MiB; "
        "stopped reading there"
    )
    assert time.process_time() - started < 2.0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            "<MPD><Period>&b;</Period></MPD>",
            "the MPD declares a DTD (<!DOCTYPE>): refused, an MPD never needs one",
        ),
        ("<MPD>" * 100_000, "the MPD nests elements more than 32 deep (at <MPD>); stopped reading"),
        ("<html><body>Bad gateway</body></html>", "the document is <html>, not an MPD (<MPD> root element)"),
    ],
    ids=["entities", "deep", "html"],
)
async def test_a_hostile_or_wrong_mpd_is_down_with_a_sentence(tmp_path: Path, body: str, reason: str) -> None:
    (tmp_path / "bad.mpd").write_text(body)
    async with aiohttp_origin(tmp_path) as origin:
        result = await Runner().run(load_check(tmp_path, dash(f"{origin.url}/bad.mpd")))
    assert result.status == "down"
    assert result.error == f"the MPD {origin.url}/bad.mpd is not a usable MPD: {reason}"
    assert result.metrics["mpd_status"] == 200


async def test_a_missing_mpd_and_a_refused_port(tmp_path: Path) -> None:
    async with aiohttp_origin(tmp_path) as origin:
        missing = await Runner().run(load_check(tmp_path, dash(f"{origin.url}/gone.mpd")))
    assert missing.status == "down" and missing.error == f"the MPD {origin.url}/gone.mpd returned HTTP 404"
    port = free_tcp_port()
    refused = await Runner().run(load_check(tmp_path, dash(f"http://127.0.0.1:{port}/live.mpd")))
    assert (
        refused.error
        == f"cannot fetch the MPD http://127.0.0.1:{port}/live.mpd: connection refused by 127.0.0.1:{port}"
    )


def encode_vod(out: Path, *extra: str, seconds: int = 4) -> None:
    """A short VOD DASH encode by ffmpeg (no -re: it takes a fraction of a second)."""
    out.mkdir(parents=True, exist_ok=True)
    args = [tool("ffmpeg", "ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error"]
    args += ["-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=25:duration={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p"]
    args += ["-f", "dash", "-seg_duration", "1", *extra, str(out / "vod.mpd")]
    subprocess.run(args, check=True, timeout=60)


def boxes(data: bytes) -> dict[str, tuple[int, int]]:
    """The top-level boxes of an MP4 file: the first of each kind, as (first byte, last byte)."""
    found: dict[str, tuple[int, int]] = {}
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, at)
        found.setdefault(kind.decode(), (at, at + size - 1))
        at += size
    return found


@pytest.mark.slow
async def test_vod_segment_list_and_segment_base_from_ffmpeg_single_files(tmp_path: Path) -> None:
    encode_vod(tmp_path / "list", "-single_file", "1", "-use_template", "0", "-use_timeline", "0")
    encode_vod(tmp_path / "base", "-single_file", "1", "-global_sidx", "1", "-use_template", "0", "-use_timeline", "0")
    media = (tmp_path / "base" / "vod-stream0.mp4").read_bytes()
    sidx, moov = boxes(media)["sidx"], boxes(media)["moov"]
    (tmp_path / "base" / "base.mpd").write_text(
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT4S"><Period>'
        '<AdaptationSet contentType="video"><Representation id="v" bandwidth="300000" width="160" height="120">'
        f'<BaseURL>vod-stream0.mp4</BaseURL><SegmentBase indexRange="{sidx[0]}-{sidx[1]}">'
        f'<Initialization range="0-{moov[1]}"/></SegmentBase></Representation></AdaptationSet></Period></MPD>'
    )
    async with aiohttp_origin(tmp_path) as origin:
        listed = await Runner().run(
            load_check(tmp_path, dash(f"{origin.url}/list/vod.mpd", live=False, content=True, segments=2))
        )
        based = await Runner().run(load_check(tmp_path, dash(f"{origin.url}/base/base.mpd", live=False, content=True)))
    for result in (listed, based):
        assert result.status == "up", (result.error, result.details)
        assert result.metrics["dynamic"] is False and result.metrics["fresh"] is None
        assert result.metrics["segment_status"] == 200 and result.metrics["init_status"] == 200
        assert (result.metrics["width"], result.metrics["height"]) == (160, 120)
        assert result.metrics["has_video"] is True and result.metrics["frozen"] is False
    newest = based.details["representations"][0]["newest_segment"]
    assert newest["number"] == 4  # the sidx lists 4 subsegments of 1 s
    assert listed.details["representations"][0]["segments_announced"] == 4


def multi_period(ast: float, *, utc: str = "") -> str:
    template = (
        '<AdaptationSet contentType="video"><SegmentTemplate timescale="1000000" duration="1000000" '
        'initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" '
        'startNumber="1"/><Representation id="0" bandwidth="300000" width="160" height="120"/></AdaptationSet>'
    )
    return (
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" minimumUpdatePeriod="PT500S" '
        f'availabilityStartTime="{stamp(ast)}">'
        f'<Period id="ad" start="PT0S"><BaseURL>ad/</BaseURL>{template}</Period>'
        f'<Period id="main" start="PT3S"><BaseURL>main/</BaseURL>{template}</Period>{utc}</MPD>'
    )


@pytest.mark.slow
async def test_a_live_multi_period_mpd_is_judged_in_its_current_period(tmp_path: Path) -> None:
    for name in ("ad", "main"):
        encode_vod(tmp_path / name, "-use_template", "1", "-use_timeline", "0", seconds=12)
    async with aiohttp_origin(tmp_path) as origin:
        clock = f'<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-xsdate:2014" value="{origin.url}/missing-clock"/>'
        (tmp_path / "live.mpd").write_text(multi_period(time.time() - 6.6, utc=clock))
        result = await Runner().run(load_check(tmp_path, dash(f"{origin.url}/live.mpd", content=True)))
        # The same two Periods as VOD: every Period is judged.
        vod = multi_period(0).replace('type="dynamic"', 'type="static" mediaPresentationDuration="PT9S"')
        (tmp_path / "vod.mpd").write_text(vod.replace('start="PT3S"', 'start="PT4S"'))
        static = await Runner().run(load_check(tmp_path, dash(f"{origin.url}/vod.mpd", live=False, content=True)))
    assert static.status == "up", (static.error, static.details)
    assert static.metrics["representations_total"] == 2 and static.metrics["segment_status"] == 200
    urls = [item["newest_segment"]["url"] for item in static.details["representations"]]
    assert urls == [f"{origin.url}/ad/chunk-stream0-00004.m4s", f"{origin.url}/main/chunk-stream0-00005.m4s"]
    assert result.status == "up", (result.error, result.details)
    assert result.metrics["periods"] == 2 and result.metrics["representations_total"] == 1
    newest = result.details["representations"][0]["newest_segment"]
    assert "/main/chunk-stream0-0000" in newest["url"] and newest["number"] in (3, 4)  # 3.6 s into Period "main"
    assert result.metrics["fresh"] is True and 0 <= result.metrics["live_edge_drift"] < 2
    notes = " ".join(result.details["notes"])
    assert f"the UTCTiming clock '{origin.url}/missing-clock' could not be read: " in notes
    assert "returned HTTP 404" in notes and "the local clock is the wall clock" in notes
    assert result.metrics["clock_offset"] is None


@pytest.mark.slow
async def test_a_utc_timing_clock_ahead_moves_the_live_edge(tmp_path: Path) -> None:
    """The MPD's clock (http-iso, direct) is the wall clock: an origin clock 40 s ahead puts a live edge that
    is on time by the local clock 40 s behind, as players following UTCTiming see it."""
    ahead = 40.0

    async def clock(request: web.Request) -> web.Response:
        return web.Response(text=stamp(time.time() + ahead))

    app = web.Application()
    app.router.add_get("/time", clock)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_tcp_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        now = time.time()
        body = (
            '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" '
            f'availabilityStartTime="{stamp(now - 100)}"><Period id="p" start="PT0S">'
            '<AdaptationSet contentType="video">'
            '<SegmentTemplate timescale="10" media="$Time$.m4s"><SegmentTimeline><S t="0" d="10" r="99"/>'
            '</SegmentTimeline></SegmentTemplate><Representation id="v"/></AdaptationSet></Period>'
            '<UTCTiming schemeIdUri="urn:mpeg:dash:utc:ntp:2014" value="pool.ntp.org"/>'
            f'<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="http://127.0.0.1:{port}/time"/></MPD>'
        )
        (tmp_path / "live.mpd").write_text(body)
        async with aiohttp_origin(tmp_path) as origin:
            # The timeline here never grows: only the live edge is judged ("fresh" judged present, not true).
            check = dash(f"{origin.url}/live.mpd", segments=0, timeout="3s", expect={"fresh": "!= null"})
            result = await Runner().run(load_check(tmp_path, check))
            local = await Runner().run(load_check(tmp_path, {**check, "utc_timing": False}))
    finally:
        await runner.cleanup()
    assert result.metrics["clock_offset"] == pytest.approx(ahead, abs=0.5)
    assert result.metrics["live_edge_drift"] == pytest.approx(ahead, abs=1.5)
    assert result.status == "down"
    assert result.error is not None and result.error.startswith("the DASH live edge is 4")
    assert "UTCTiming 'urn:mpeg:dash:utc:ntp:2014' is not read" in " ".join(result.details["notes"])
    assert local.metrics["clock_offset"] is None and abs(local.metrics["live_edge_drift"]) < 1.5


def number_mpd(ast: float) -> str:
    return (
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" '
        f'availabilityStartTime="{stamp(ast)}"><Period id="p" start="PT0S"><AdaptationSet contentType="video">'
        '<SegmentTemplate timescale="1000" duration="4000" media="seg-$Number$.m4s"/><Representation id="v"/>'
        "</AdaptationSet></Period></MPD>"
    )


async def test_a_live_number_stream_before_its_first_segment_says_when_it_is_due(tmp_path: Path) -> None:
    """A `$Number$` stream that began 1 s ago (4 s segments) and one that begins in a minute: no segment is
    announced yet, and the sentence says when one is due, not merely that there is none."""
    async with aiohttp_origin(tmp_path) as origin:
        (tmp_path / "young.mpd").write_text(number_mpd(time.time() - 1))
        (tmp_path / "future.mpd").write_text(number_mpd(time.time() + 60))
        young = await Runner().run(load_check(tmp_path, dash(f"{origin.url}/young.mpd", utc_timing=False)))
        future = await Runner().run(load_check(tmp_path, dash(f"{origin.url}/future.mpd", utc_timing=False)))
    assert young.status == "down" and young.error is not None
    reason = young.details["errors"][0]
    # Due at 4 s plus the 2 s an origin is given to serve a finished segment.
    assert reason.startswith("video representation v: the MPD announces no segment yet: the stream began 1."), reason
    assert " s ago and its first 4 s segment is due in 4." in reason or "is due in 5.0 s" in reason, reason
    assert future.status == "down"
    assert future.details["errors"][0].startswith(
        "video representation v: the MPD announces no segment yet: its availabilityStartTime + Period@start is 6"
    ), future.details["errors"]


def timeline_mpd(ast: float, entries: str, start_number: int = 1) -> str:
    return (
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" '
        f'availabilityStartTime="{stamp(ast)}"><Period id="p" start="PT0S"><AdaptationSet contentType="video">'
        f'<SegmentTemplate timescale="10" media="seg-$Number$.m4s" startNumber="{start_number}"><SegmentTimeline>'
        f'{entries}</SegmentTimeline></SegmentTemplate><Representation id="v"/></AdaptationSet></Period></MPD>'
    )


@pytest.mark.slow
async def test_a_timeline_that_renumbers_or_goes_backwards_is_inconsistent(tmp_path: Path) -> None:
    ast = time.time() - 1000
    mpd = tmp_path / "live.mpd"
    runner = Runner()
    async with aiohttp_origin(tmp_path) as origin:
        check = load_check(tmp_path, dash(f"{origin.url}/live.mpd", segments=0, max_live_edge_drift="1h"))
        mpd.write_text(timeline_mpd(ast, '<S t="9000" d="10" r="5"/>'))
        first = await runner.run(check)
        # Segment 3 (t=9020) now names t=9070: the numbers changed meaning, and the edge moved on.
        mpd.write_text(timeline_mpd(ast, '<S t="9050" d="10" r="5"/>'))
        renumbered = await runner.run(check)
        # The newest segment now ends before the previous run's newest: the timeline went backwards.
        mpd.write_text(timeline_mpd(ast, '<S t="9000" d="10" r="3"/>', start_number=6))
        backwards = await runner.run(check)
        # availabilityStartTime moved: every segment's time changed meaning.
        mpd.write_text(timeline_mpd(ast + 30, '<S t="9000" d="10" r="9"/>', start_number=6))
        moved = await runner.run(check)
    assert first.metrics["consistent"] is True, first.details
    assert renumbered.status == "down" and renumbered.metrics["consistent"] is False
    assert (
        "video representation v: segment 3 moved from t=9020 to t=9070: segment numbers changed meaning"
        in (renumbered.details["inconsistencies"])
    )
    assert backwards.status == "down" and backwards.metrics["timeline_regressed"] is True
    assert backwards.error is not None and backwards.error.startswith(
        "the DASH timeline went backwards since the previous run"
    )
    assert any(
        "the timeline went backwards: its newest segment (9) now ends" in item
        for item in backwards.details["inconsistencies"]
    )
    assert any("availabilityStartTime moved from " in item for item in moved.details["inconsistencies"])


async def test_concurrent_runs_share_nothing_and_bounded_representations(tmp_path: Path) -> None:
    reps = "".join(f'<Representation id="r{i}" bandwidth="{1000 * (i + 1)}"/>' for i in range(40))
    body = (
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT10S"><Period>'
        '<AdaptationSet contentType="video"><SegmentTemplate media="$RepresentationID$-$Number$.m4s" duration="2"/>'
        f"{reps}</AdaptationSet></Period></MPD>"
    )
    (tmp_path / "vod.mpd").write_text(body)
    async with aiohttp_origin(tmp_path) as origin:
        base = dash(f"{origin.url}/vod.mpd", live=False, segments=0)
        results = await asyncio.gather(
            Runner().run(load_check(tmp_path, {**base, "max_representations": 5}, name="capped")),
            Runner().run(load_check(tmp_path, {**base, "representations": "highest"}, name="highest")),
        )
    capped, highest = results
    assert capped.status == "up" and capped.metrics["representations_total"] == 5
    assert (
        "the MPD lists 40 Representations to judge; only the first 5 were (max_representations: 5)"
        in (capped.details["notes"])
    )
    assert [item["representation"] for item in highest.details["representations"]] == ["r39"]
