"""Content checks on real ffmpeg output: what the picture and the sound show, each fault with its healthy twin.

`testsrc` + `sine` is up; a looped still image turns down once frozen past the threshold (across runs); a black
picture and silent audio are down; a timestamp jump without EXT-X-DISCONTINUITY is a `pts_gap` (and the same
splice announced by the tag is not); a segment that is valid HTTP but not media is down with FFmpeg's reason.
Material is 160x90, 1 s segments, made once per module; `Replay` serves it live on a fake clock.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from fake_clock import FakeClock
from hls_origin import AAC, H264, TONE, VIDEO, Origin, Replay, encode, load_hls_check, read_vod

from prober.results import Result
from prober.scheduling.runner import Runner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("content")
    still = root / "still.png"  # one frame of the test pattern: the frozen encoder's picture
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *VIDEO, "-frames:v", "1", str(still)],
        check=True,
        timeout=60,
    )
    silence = ("-f", "lavfi", "-i", "anullsrc=channel_layout=stereo:sample_rate=48000")
    black = ("-f", "lavfi", "-i", "color=black:size=160x90:rate=25")
    numbered = ("-start_number", "120", "-hls_segment_filename", "%d.ts")
    return {
        "healthy": encode(root / "healthy", *VIDEO, *TONE, *H264, *AAC, name="healthy"),
        "still": encode(root / "still", "-loop", "1", "-i", str(still), *TONE, *H264, *AAC, name="still", seconds=14),
        "black": encode(root / "black", *black, *TONE, *H264, *AAC, name="black"),
        "silent": encode(root / "silent", *VIDEO, *silence, *H264, *AAC, name="silent"),
        "a": encode(root / "a", *VIDEO, *TONE, *H264, *AAC, name="a"),
        "b": encode(root / "b", *VIDEO, *TONE, *H264, *AAC, "-output_ts_offset", "100", name="b"),
        "numbered": encode(root / "numbered", *VIDEO, *TONE, *H264, *AAC, *numbered, name="numbered"),
    }


async def run_at(runner: Runner, spec: Any, clock: FakeClock, replay: Replay, n: int) -> Result:
    clock.value = replay.at(n)
    return await runner.run(spec)


def spec_for(tmp_path: Path, origin: Origin, name: str, **keys: Any) -> Any:
    return load_hls_check(tmp_path, {"url": origin.url(f"/{name}/index.m3u8"), "content": True, **keys})


async def test_a_test_pattern_with_a_tone_is_up_with_every_content_metric(
    media: dict[str, Path], clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    replay = origin.replays["healthy"] = Replay.of(clock, media["healthy"], pdt=True)
    runner = Runner(clock=clock, persistent_state=True)
    spec = spec_for(tmp_path, origin, "healthy")
    for n in (2, 3, 4):
        result = await run_at(runner, spec, clock, replay, n)
        assert result.status == "up", result.error
    metrics = result.metrics
    assert metrics["has_video"] is True and metrics["has_audio"] is True
    assert (metrics["width"], metrics["height"]) == (160, 90)
    assert metrics["frozen"] is False and metrics["frozen_for"] == 0
    assert metrics["black_ratio"] == 0
    assert metrics["audio_silent"] is False and -30 < metrics["audio_level"] < -10  # sine at 1/8 amplitude
    assert abs(metrics["decoded_duration"] - 1.0) < 0.1 and metrics["duration_mismatch"] < 0.1
    assert metrics["pts_gap"] == 0


async def test_a_still_image_turns_down_once_frozen_past_the_threshold(
    media: dict[str, Path], clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    replay = origin.replays["still"] = Replay.of(clock, media["still"], pdt=True)
    runner = Runner(clock=clock, persistent_state=True)
    spec = spec_for(tmp_path, origin, "still")
    first = await run_at(runner, spec, clock, replay, 2)
    assert first.status == "up", first.error  # one still second is not an outage (slides, a pause)
    assert first.metrics["frozen"] is True and first.metrics["frozen_for"] < 2
    middle = await run_at(runner, spec, clock, replay, 7)
    assert middle.status == "up", middle.error
    assert 5 < middle.metrics["frozen_for"] < 10
    last = await run_at(runner, spec, clock, replay, 12)
    assert last.status == "down"
    assert last.metrics["frozen_for"] > 10
    assert last.error is not None and last.error.startswith("the picture has been frozen for 1")
    assert last.metrics["fresh"] is True  # fresh segments, frozen picture: what freshness checks miss


async def test_a_content_block_sets_the_frozen_threshold(
    media: dict[str, Path], clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    replay = origin.replays["still"] = Replay.of(clock, media["still"], pdt=True)
    runner = Runner(clock=clock, persistent_state=True)
    spec = spec_for(tmp_path, origin, "still", content={"frozen_for": "3s"})
    await run_at(runner, spec, clock, replay, 2)
    result = await run_at(runner, spec, clock, replay, 5)
    assert result.status == "down"
    assert result.error is not None and "(expected <= 3s)" in result.error


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("black", "the picture is black: 100% of the decoded frames are black (expected < 0.98)"),
        ("silent", "the audio is silent (its level is below the silence threshold)"),
        ("healthy", None),
    ],
)
async def test_a_black_picture_or_silent_audio_is_down(
    name: str, says: str | None, media: dict[str, Path], clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    replay = origin.replays[name] = Replay.of(clock, media[name], pdt=True)
    result = await run_at(
        Runner(clock=clock, persistent_state=True), spec_for(tmp_path, origin, name), clock, replay, 3
    )
    assert result.error == says
    assert result.status == ("up" if says is None else "down")
    assert result.metrics["black_ratio"] == (1 if name == "black" else 0)
    assert result.metrics["audio_silent"] is (name == "silent")
    if name == "silent":
        assert result.metrics["audio_level"] == -120


@pytest.mark.parametrize("announced", [False, True], ids=["no-discontinuity-tag", "with-discontinuity-tag"])
async def test_a_timestamp_jump_without_discontinuity_is_a_pts_gap(
    announced: bool, media: dict[str, Path], clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    header, first = read_vod(media["a"])
    _, second = read_vod(media["b"])
    splice = len(first)
    replay = origin.replays["spliced"] = Replay(
        clock, header, first + second, pdt=True, discontinuity_before={splice} if announced else set()
    )
    runner = Runner(clock=clock, persistent_state=True)
    spec = spec_for(tmp_path, origin, "spliced", expect={"pts_gap": ["< 1s", None]})
    before = await run_at(runner, spec, clock, replay, splice - 2)
    assert before.status == "up", before.error
    after = await run_at(runner, spec, clock, replay, splice)
    if announced:
        assert after.status == "up", after.error
        assert after.metrics["pts_gap"] == 0
    else:
        assert after.status == "down"
        assert 90 < after.metrics["pts_gap"] < 100  # ffmpeg's -output_ts_offset 100, less the 6 s before it
        assert after.error is not None
        assert after.error.startswith("the timestamps jumped 9") and "without an EXT-X-DISCONTINUITY" in after.error


@pytest.mark.parametrize("corrupt", [True, False], ids=["undecodable", "healthy"])
async def test_a_segment_that_is_not_media_is_down_saying_it_could_not_be_decoded(
    corrupt: bool, media: dict[str, Path], clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    replay = origin.replays["numbered"] = Replay.of(clock, media["numbered"], pdt=True)
    assert replay.entries[3].uri == "123.ts"
    if corrupt:
        replay.corrupt["123.ts"] = b"<html>this is not a video</html>\n" * 300
    result = await run_at(
        Runner(clock=clock, persistent_state=True), spec_for(tmp_path, origin, "numbered"), clock, replay, 3
    )
    if corrupt:
        assert result.status == "down"
        assert result.error == "segment 123.ts could not be decoded: Invalid data found when processing input"
        assert result.metrics["segment_status"] == 200
    else:
        assert result.status == "up", result.error
        assert result.metrics["has_video"] is True


async def test_content_off_decodes_nothing_and_reports_no_content_metrics(
    media: dict[str, Path], clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    replay = origin.replays["black"] = Replay.of(clock, media["black"], pdt=True)
    spec = load_hls_check(tmp_path, {"url": origin.url("/black/index.m3u8")})
    result = await run_at(Runner(clock=clock, persistent_state=True), spec, clock, replay, 3)
    assert result.status == "up", result.error
    assert "black_ratio" not in result.metrics and "has_video" not in result.metrics
