"""hls segment downloads and master playlists: failing segments, GAPs, slow segments, variants.

Runs through the Runner against the simulated origin on 127.0.0.1 with a fake clock (daemon-style
runs, so a first run reads freshness from the PDT and does not wait).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fake_clock import FakeClock
from hls_origin import LiveMedia, Origin, load_hls_check

from prober.probes.base import MemoryStateStore
from prober.results import Result
from prober.scheduling.runner import Runner


async def run_once(clock: FakeClock, tmp_path: Path, check: dict[str, Any]) -> Result:
    return await Runner(clock=clock, persistent_state=True).run(load_hls_check(tmp_path, check))


# --- segments ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media_keys", "metric", "value", "error"),
    [
        ({"segment_status": 404}, "segment_status", 404, "segment_status was 404, expected 200"),
        ({"segment_status": 503}, "segment_status", 503, "segment_status was 503, expected 200"),
        ({"segment_size": 0}, "segment_bytes", 0, "segment_bytes was 0, expected > 0"),
        ({}, "segment_status", 200, None),
    ],
    ids=["404", "503", "empty-body", "healthy"],
)
async def test_a_failing_segment_turns_the_check_down(
    clock: FakeClock, origin: Origin, tmp_path: Path, media_keys: dict[str, Any], metric: str, value: int, error: str
) -> None:
    origin.add("live", LiveMedia(clock, **media_keys))
    result = await run_once(clock, tmp_path, {"url": origin.url("/live/index.m3u8")})
    assert result.metrics[metric] == value
    assert result.status == ("up" if error is None else "down")
    if error is None:
        assert result.error is None
    else:
        assert result.error is not None and result.error.startswith(error)
    if error is not None:
        (reason,) = result.details["errors"]
        assert reason.startswith("segment seg29.ts")


async def test_a_segment_that_never_finishes_is_cut_off_within_the_timeout(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.add("live", LiveMedia(clock, segment_hang=True))
    result = await run_once(clock, tmp_path, {"url": origin.url("/live/index.m3u8"), "timeout": "1s"})
    assert result.status == "down"
    assert result.error is not None and result.error.startswith("segment_status was null, expected 200")
    assert result.metrics["segment_status"] is None
    assert 0.5 < result.metrics["segment_fetch"] < 1.0
    assert result.duration_ms < 1000
    (reason,) = result.details["errors"]
    assert re.fullmatch(r"segment seg29\.ts: no complete answer within \d+ms", reason)


@pytest.mark.parametrize(("delay", "status"), [(0.6, "down"), (0.0, "up")])
async def test_a_segment_downloading_slower_than_real_time_is_caught_by_realtime_ratio(
    clock: FakeClock, origin: Origin, tmp_path: Path, delay: float, status: str
) -> None:
    media = LiveMedia(clock, segment_duration=0.5, target_duration=1, segment_delay=delay)
    origin.add("live", media)
    result = await run_once(
        clock,
        tmp_path,
        {"url": origin.url("/live/index.m3u8"), "expect": {"realtime_ratio": "> 1", "segment_fetch": "< 2s"}},
    )
    assert result.status == status, result.error
    if delay:
        assert result.metrics["realtime_ratio"] < 0.85
        assert result.metrics["segment_fetch"] >= delay
        assert result.error is not None and result.error.startswith("realtime_ratio was")
    else:
        assert result.metrics["realtime_ratio"] > 1


@pytest.mark.parametrize(("gap", "status"), [(True, "up"), (False, "down")])
async def test_an_ext_x_gap_segment_is_not_downloaded_so_its_404_does_not_alarm(
    clock: FakeClock, origin: Origin, tmp_path: Path, gap: bool, status: str
) -> None:
    media = LiveMedia(clock, gaps={29} if gap else set(), segment_status_for={} if gap else {29: 404})
    origin.add("live", media)
    result = await run_once(clock, tmp_path, {"url": origin.url("/live/index.m3u8")})
    assert result.status == status, result.error
    fetched = origin.requested(lambda path: path.endswith(".ts"))
    assert fetched == (["/live/seg28.ts"] if gap else ["/live/seg29.ts"])


async def test_segment_fetch_percentiles_cover_every_downloaded_segment(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.add("live", LiveMedia(clock))
    result = await run_once(clock, tmp_path, {"url": origin.url("/live/index.m3u8"), "segments": 4})
    assert result.status == "up", result.error
    assert origin.requested(lambda path: path.endswith(".ts")) == [f"/live/seg{n}.ts" for n in (29, 28, 27, 26)]
    metrics = result.metrics
    assert 0 < metrics["segment_fetch_p50"] <= metrics["segment_fetch_p95"] <= metrics["segment_fetch_p99"]
    assert metrics["segment_bytes"] == 1880
    (summary,) = result.details["variants"]
    assert [segment["uri"] for segment in summary["segments"]] == ["seg29.ts", "seg28.ts", "seg27.ts", "seg26.ts"]


async def test_segments_zero_downloads_nothing_and_drops_segment_expectations(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.add("live", LiveMedia(clock, segment_status=500))
    result = await run_once(clock, tmp_path, {"url": origin.url("/live/index.m3u8"), "segments": 0})
    assert result.status == "up", result.error
    assert "segment_status" not in result.metrics
    assert origin.requested(lambda path: path.endswith(".ts")) == []


async def test_an_ll_hls_segment_still_in_progress_is_not_a_segment(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.add("live", LiveMedia(clock, parts_in_progress=2))
    result = await run_once(clock, tmp_path, {"url": origin.url("/live/index.m3u8")})
    assert result.status == "up", result.error
    assert result.metrics["segment_count"] == 6
    assert result.metrics["window"] == 12.0
    assert origin.requested(lambda path: path.endswith(".ts")) == ["/live/seg29.ts"]


# --- master playlists -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dead", "status"), [(True, "down"), (False, "up")])
async def test_one_dead_variant_counts_as_a_failed_variant(
    clock: FakeClock, origin: Origin, tmp_path: Path, dead: bool, status: str
) -> None:
    origin.add("low", LiveMedia(clock), 800_000)
    origin.add("high", LiveMedia(clock, status=404 if dead else 200), 3_000_000)
    result = await run_once(clock, tmp_path, {"url": origin.url("/master.m3u8")})
    assert result.status == status, result.error
    assert result.metrics["variants_total"] == 2
    assert result.metrics["variants_failed"] == (1 if dead else 0)
    assert result.metrics["playlist_status"] == (404 if dead else 200)
    if dead:
        assert result.details["errors"] == [f"variant {origin.url('/high/index.m3u8')} returned HTTP 404"]
        assert result.metrics["fresh"] is True  # the live variant is still measured


async def test_every_variant_dead_is_a_down_result_naming_the_first(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.add("low", LiveMedia(clock, status=500), 800_000)
    origin.add("high", LiveMedia(clock, status=404), 3_000_000)
    result = await run_once(clock, tmp_path, {"url": origin.url("/master.m3u8")})
    assert result.status == "down"
    assert result.error == f"all 2 variants failed; variant {origin.url('/low/index.m3u8')} returned HTTP 500"
    assert result.metrics["variants_failed"] == 2
    assert result.metrics["playlist_status"] == 500


@pytest.mark.parametrize(
    ("lines", "broken_line"),
    [
        (["#EXT-X-STREAM-INF:BANDWIDTH=3000000", "high/index.m3u8", "#EXT-X-STREAM-INF:BANDWIDTH=6000000"], 6),
        (["#EXT-X-STREAM-INF:BANDWIDTH=6000000", "#EXT-X-STREAM-INF:BANDWIDTH=3000000", "high/index.m3u8"], 4),
    ],
    ids=["at-the-end", "followed-by-another-stream-inf"],
)
async def test_a_stream_inf_without_a_uri_is_a_failed_variant(
    clock: FakeClock, origin: Origin, tmp_path: Path, lines: list[str], broken_line: int
) -> None:
    origin.add("low", LiveMedia(clock), 800_000)
    origin.add("high", LiveMedia(clock), 3_000_000)
    master = ["#EXTM3U", "#EXT-X-STREAM-INF:BANDWIDTH=800000", "low/index.m3u8", *lines]
    origin.static["/broken.m3u8"] = (200, {}, "\n".join(master).encode())
    result = await run_once(clock, tmp_path, {"url": origin.url("/broken.m3u8")})
    assert result.status == "down"
    assert result.metrics["variants_total"] == 3
    assert result.metrics["variants_failed"] == 1
    assert result.details["errors"] == [f"the EXT-X-STREAM-INF on line {broken_line} has no URI line after it"]
    assert result.error == (
        f"variants_failed was 1, expected 0 (the EXT-X-STREAM-INF on line {broken_line} has no URI line after it)"
    )
    assert {v["variant"] for v in result.details["variants"]} == {"low/index.m3u8", "high/index.m3u8"}


async def test_variants_with_different_target_durations_are_each_judged_by_their_own(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.add("fast", LiveMedia(clock, segment_duration=2.0, target_duration=2), 800_000)
    origin.add("slow", LiveMedia(clock, segment_duration=6.0, target_duration=6, window=4), 3_000_000)
    spec = load_hls_check(tmp_path, {"url": origin.url("/master.m3u8")})
    runner = Runner(clock=clock, persistent_state=True)
    results = []
    for _ in range(4):
        results.append(await runner.run(spec))
        clock.advance(2.5)
    assert [r.status for r in results] == ["up"] * 4, [r.error for r in results]
    assert results[-1].metrics["target_duration"] == 6
    assert max(r.metrics["stale_for"] for r in results) > 3.0  # longer than the fast variant could be stale


@pytest.mark.parametrize(
    ("choice", "fetched"),
    [("all", {"low", "mid", "high"}), ("first", {"mid"}), ("highest", {"high"}), ("lowest", {"low"})],
)
async def test_variants_key_chooses_which_variants_are_checked(
    clock: FakeClock, origin: Origin, tmp_path: Path, choice: str, fetched: set[str]
) -> None:
    for name, bandwidth in (("mid", 1_600_000), ("low", 800_000), ("high", 3_000_000)):
        origin.add(name, LiveMedia(clock), bandwidth)
    result = await run_once(clock, tmp_path, {"url": origin.url("/master.m3u8"), "variants": choice})
    assert result.status == "up", result.error
    playlists = origin.requested(lambda path: path.endswith("index.m3u8"))
    assert {path.split("/")[1] for path in playlists} == fetched
    assert result.metrics["variants_total"] == len(fetched)


@pytest.mark.parametrize(
    ("choice", "fetched"),
    [
        ("all", {"low", "high", "aud-lo", "aud-hi"}),
        ("lowest", {"low", "aud-lo"}),
        ("highest", {"high", "aud-hi"}),
    ],
)
async def test_renditions_follow_the_groups_of_the_chosen_variants(
    clock: FakeClock, origin: Origin, tmp_path: Path, choice: str, fetched: set[str]
) -> None:
    for name in ("low", "high", "aud-lo", "aud-hi"):
        origin.media[name] = LiveMedia(clock)
    master = (
        "#EXTM3U\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="lo",NAME="Stereo",URI="aud-lo/index.m3u8"\n'
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="hi",NAME="Surround",URI="aud-hi/index.m3u8"\n'
        '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC1",INSTREAM-ID="CC1"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=800000,AUDIO="lo",CLOSED-CAPTIONS="cc"\nlow/index.m3u8\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=3000000,AUDIO="hi"\nhigh/index.m3u8\n'
    )
    origin.static["/master.m3u8"] = (200, {}, master.encode())
    result = await run_once(clock, tmp_path, {"url": origin.url("/master.m3u8"), "variants": choice})
    assert result.status == "up", result.error
    playlists = origin.requested(lambda path: path.endswith("index.m3u8"))
    assert {path.split("/")[1] for path in playlists} == fetched
    assert result.metrics["renditions_total"] == len([name for name in fetched if name.startswith("aud")])
    labels = {v["variant"]: v.get("kind", "variant") for v in result.details["variants"]}
    assert all(labels[f"{name}/index.m3u8"] == "audio" for name in fetched if name.startswith("aud"))


async def test_tokens_in_variant_and_segment_uris_stay_out_of_results_and_state(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.add("live", LiveMedia(clock, uri_template="seg{n}.ts?token=s3cr3t-seg"))
    master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nlive/index.m3u8?token=s3cr3t-var\n"
    origin.static["/master.m3u8"] = (200, {}, master.encode())
    store = MemoryStateStore()
    spec = load_hls_check(tmp_path, {"url": origin.url("/master.m3u8?token=s3cr3t-top"), "segments": 2})
    first = await Runner(clock=clock, persistent_state=True, state_store=store).run(spec)
    clock.advance(2.0)
    origin.media["live"].segment_status = 404
    second = await Runner(clock=clock, persistent_state=True, state_store=store).run(spec)
    assert first.status == "up", first.error
    assert second.status == "down"
    assert origin.requested(lambda path: path == "/live/seg30.ts")  # the tokens were sent to the origin
    stored = json.dumps(await store.load("stream", "default"))
    for text in (json.dumps(first.to_json()), json.dumps(second.to_json()), stored):
        assert "s3cr3t" not in text
