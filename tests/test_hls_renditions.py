"""Every rendition is judged like a variant: an audio rendition frozen while the video advances is down, and
the reverse; a subtitles rendition is checked too; `renditions: none` leaves them out.

Video-only, audio-only and WebVTT material comes from ffmpeg once per module; `Replay` serves each as its
own live playlist on a fake clock, behind a master with EXT-X-MEDIA entries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_clock import FakeClock
from hls_origin import AAC, H264, TONE, VIDEO, Origin, Replay, encode, load_hls_check

from prober.scheduling.runner import Runner

pytestmark = pytest.mark.slow

MASTER = (
    "#EXTM3U\n#EXT-X-VERSION:4\n"
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",DEFAULT=YES,URI="audio/index.m3u8"\n'
    '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English CC",URI="subs/index.m3u8"\n'
    '#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=160x90,AUDIO="aud",SUBTITLES="subs"\nvideo/index.m3u8\n'
)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("renditions")
    srt = root / "subs.srt"
    srt.write_text("".join(f"{n}\n00:00:{n:02d},000 --> 00:00:{n:02d},900\nline {n}\n\n" for n in range(1, 9)))
    return {
        "video": encode(root / "video", *VIDEO, *H264, "-an", name="video", seconds=8),
        "audio": encode(root / "audio", *TONE, *AAC, "-vn", name="audio", seconds=8),
        "subs": subtitles(root / "subs", srt),
    }


def subtitles(directory: Path, srt: Path) -> Path:
    """WebVTT segments as ffmpeg's HLS muxer writes them (it needs a video stream beside the subtitles)."""
    subtitle_args = ("-i", str(srt), "-map", "0:v", "-map", "1:s", "-c:s", "webvtt")
    streams = ("-var_stream_map", "v:0,s:0,sgroup:subs", "-hls_segment_filename", "v%v_%d.ts")
    encode(directory, *VIDEO, *subtitle_args, *H264, *streams, name="subs%v", seconds=8)
    playlist = directory / "subs0_vtt.m3u8"
    assert ".vtt" in playlist.read_text()
    return playlist


@pytest.fixture
def origin(origin: Origin, media: dict[str, Path], clock: FakeClock) -> Origin:
    """The shared origin (tests/conftest.py), serving the master and a live replay of each rendition."""
    origin.static["/master.m3u8"] = (200, {"Content-Type": "application/vnd.apple.mpegurl"}, MASTER.encode())
    for name, playlist in media.items():
        origin.replays[name] = Replay.of(clock, playlist, pdt=True)
    return origin


async def runs(origin: Origin, clock: FakeClock, tmp_path: Path, freeze: str | None, **keys: Any) -> list[Any]:
    """Three runs one second apart; `freeze` stops that rendition's encoder after the first."""
    runner = Runner(clock=clock, persistent_state=True)
    spec = load_hls_check(tmp_path, {"url": origin.url("/master.m3u8"), **keys})
    video = origin.replays["video"]
    results = []
    for step, n in enumerate((2, 3, 5)):
        if step == 1 and freeze is not None:
            origin.replays[freeze].frozen_at = clock.value
        clock.value = video.at(n)
        results.append(await runner.run(spec))
    return results


def by_kind(result: Any) -> dict[str, dict[str, Any]]:
    return {variant.get("kind", "variant"): variant for variant in result.details["variants"]}


async def test_every_rendition_advancing_is_up_and_each_is_listed(
    origin: Origin, clock: FakeClock, tmp_path: Path
) -> None:
    results = await runs(origin, clock, tmp_path, None, segments=1)
    for result in results:
        assert result.status == "up", result.error
    last = results[-1]
    assert last.metrics["renditions_total"] == 2 and last.metrics["renditions_failed"] == 0
    assert last.metrics["variants_total"] == 1
    kinds = by_kind(last)
    assert set(kinds) == {"variant", "audio", "subtitles"}
    assert all("failed" not in entry for entry in kinds.values())
    assert kinds["subtitles"]["segments"][0]["bytes"] > 0  # a WebVTT segment from ffmpeg
    assert origin.requested(lambda path: path.startswith("/subs/") and path.endswith(".vtt"))


async def test_an_audio_rendition_frozen_while_the_video_advances_is_down_naming_it(
    origin: Origin, clock: FakeClock, tmp_path: Path
) -> None:
    results = await runs(origin, clock, tmp_path, "audio")
    last = results[-1]
    assert last.status == "down"
    assert last.error == "fresh was false, expected true"
    kinds = by_kind(last)
    assert kinds["audio"]["failed"].startswith("no new segment for") and kinds["audio"]["fresh"] is False
    assert kinds["variant"]["fresh"] is True and "failed" not in kinds["variant"]


async def test_a_video_variant_frozen_while_the_audio_advances_is_down_too(
    origin: Origin, clock: FakeClock, tmp_path: Path
) -> None:
    last = (await runs(origin, clock, tmp_path, "video"))[-1]
    # The video stopped at segment 2: run the clock on past 1.5 target durations without it.
    assert last.status == "down"
    kinds = by_kind(last)
    assert kinds["variant"]["fresh"] is False and kinds["audio"]["fresh"] is True


async def test_a_subtitles_rendition_that_fails_is_a_failed_rendition(
    origin: Origin, clock: FakeClock, tmp_path: Path
) -> None:
    origin.static["/subs/index.m3u8"] = (404, {}, b"not here")
    last = (await runs(origin, clock, tmp_path, None))[-1]
    assert last.status == "down"
    assert last.metrics["renditions_failed"] == 1 and last.metrics["variants_failed"] == 0
    sentence = f"subtitles rendition 'English CC' {origin.url('/subs/index.m3u8')} returned HTTP 404"
    assert last.error is not None and last.error.endswith(f"({sentence})")
    assert by_kind(last)["subtitles"]["failed"] == sentence


async def test_renditions_none_checks_only_the_variants(origin: Origin, clock: FakeClock, tmp_path: Path) -> None:
    origin.static["/subs/index.m3u8"] = (404, {}, b"not here")
    last = (await runs(origin, clock, tmp_path, "audio", renditions="none"))[-1]
    assert last.status == "up", last.error
    assert last.metrics["renditions_total"] == 0
    assert not origin.requested(lambda path: path.startswith(("/audio/", "/subs/")))
