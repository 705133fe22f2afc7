"""EXT-X-BYTERANGE against real ffmpeg `single_file` output: TS and fMP4, an origin that honours Range and
one that ignores it, and an I-frame playlist whose byte ranges are respected.

ffmpeg writes the VOD material once per module (160x90, 1 s segments); `Replay` serves it as a live
sliding window on a fake clock, so each run sees exactly the segments the test chose.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fake_clock import FakeClock
from hls_origin import H264, VIDEO, Origin, Replay, encode, load_hls_check

from prober.results import Result
from prober.scheduling.runner import Runner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ranges")
    single = ("-hls_flags", "single_file")
    return {
        "ts": encode(root / "ts", *VIDEO, *H264, *single, name="ts"),
        "fmp4": encode(root / "fmp4", *VIDEO, *H264, "-hls_segment_type", "fmp4", *single, name="fmp4"),
        "iframe": encode(root / "iframe", *VIDEO, *H264, "-hls_flags", "iframes_only+single_file", name="iframe"),
        "plain": encode(root / "plain", *VIDEO, *H264, name="plain"),
    }


def ranges_of(playlist: Path) -> list[tuple[int, int]]:
    found = re.findall(r"#EXT-X-BYTERANGE:(\d+)@(\d+)", playlist.read_text())
    return [(int(length), int(offset)) for length, offset in found]


async def check(clock: FakeClock, tmp_path: Path, origin: Origin, name: str, **keys: object) -> Result:
    spec = load_hls_check(tmp_path, {"url": origin.url(f"/{name}/index.m3u8"), **keys})
    return await Runner(clock=clock, persistent_state=True).run(spec)


@pytest.mark.parametrize("kind", ["ts", "fmp4"])
async def test_a_single_file_stream_is_fetched_by_range_and_reads_only_the_range(
    kind: str, media: dict[str, Path], clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    replay = origin.replays[kind] = Replay.of(clock, media[kind], pdt=True)
    clock.value = replay.at(3)
    result = await check(clock, tmp_path, origin, kind, content=True)
    assert result.status == "up", result.error
    length, offset = ranges_of(media[kind])[3]
    assert result.metrics["segment_bytes"] == length
    assert result.metrics["segment_status"] == 200
    assert f"bytes={offset}-{offset + length - 1}" in replay.ranges
    (variant,) = result.details["variants"]
    assert variant["segments"][0]["status"] == 206 and variant["segments"][0]["range"] is True
    assert result.metrics["has_video"] is True  # the fMP4 init section came by its own MAP BYTERANGE
    assert not any("ignored the Range" in note for note in result.details.get("notes", []))
    file_size = (media[kind].parent / replay.entries[0].uri).stat().st_size
    assert result.metrics["segment_bytes"] < file_size / 3


@pytest.mark.parametrize("content", [True, False], ids=["content", "no-content"])
@pytest.mark.parametrize("kind", ["ts", "fmp4"])
async def test_an_origin_that_ignores_range_is_noted_and_only_the_range_is_read(
    kind: str, content: bool, media: dict[str, Path], clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    replay = origin.replays[kind] = Replay.of(clock, media[kind], pdt=True, honour_range=False)
    clock.value = replay.at(3)
    result = await check(clock, tmp_path, origin, kind, content=content)
    assert result.status == "up", result.error
    length, _ = ranges_of(media[kind])[3]
    assert result.metrics["segment_bytes"] == length
    notes = " ".join(result.details["notes"])
    assert "the server ignored the Range header for" in notes and "sent the whole file" in notes
    assert result.details["variants"][0]["segments"][0]["status"] == 200
    if content:
        assert result.metrics["has_video"] is True  # the right bytes were cut out of the whole file


async def test_a_segment_without_byterange_is_fetched_whole_without_a_range_header(
    media: dict[str, Path], clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    replay = origin.replays["plain"] = Replay.of(clock, media["plain"], pdt=True)
    clock.value = replay.at(3)
    result = await check(clock, tmp_path, origin, "plain")
    assert result.status == "up", result.error
    assert replay.ranges == []
    assert result.metrics["segment_bytes"] == (media["plain"].parent / replay.entries[3].uri).stat().st_size


def master_with_iframes(origin: Origin) -> None:
    body = (
        "#EXTM3U\n#EXT-X-VERSION:4\n"
        '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,RESOLUTION=160x90,URI="iframe/index.m3u8"\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=160x90\nplain/index.m3u8\n"
    )
    origin.static["/master.m3u8"] = (200, {"Content-Type": "application/vnd.apple.mpegurl"}, body.encode())


async def test_an_i_frame_playlist_is_checked_by_range_and_judged_at_its_variants_pace(
    media: dict[str, Path], clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    master_with_iframes(origin)
    video = origin.replays["plain"] = Replay.of(clock, media["plain"])
    iframes = origin.replays["iframe"] = Replay.of(clock, media["iframe"])
    assert "#EXT-X-I-FRAMES-ONLY" in " ".join(iframes.entries[0].tags + iframes.header)
    runner = Runner(clock=clock, persistent_state=True)
    spec = load_hls_check(tmp_path, {"url": origin.url("/master.m3u8")})
    clock.value = video.at(2)
    first = await runner.run(spec)
    assert first.status == "up", first.error
    assert first.metrics["renditions_total"] == 1 and first.metrics["renditions_failed"] == 0
    kinds = {variant["variant"]: variant.get("kind", "variant") for variant in first.details["variants"]}
    assert kinds == {"plain/index.m3u8": "variant", "iframe/index.m3u8": "iframe"}
    length, offset = ranges_of(media["iframe"])[2]
    assert f"bytes={offset}-{offset + length - 1}" in iframes.ranges
    clock.value = video.at(3)
    second = await runner.run(spec)
    assert second.status == "up", second.error

    # The fault: the I-frame playlist stops while the video goes on.
    iframes.frozen_at = clock.value
    clock.value = video.at(5) + 0.5
    third = await runner.run(spec)
    assert third.status == "down"
    assert third.metrics["fresh"] is False
    (frozen,) = [v for v in third.details["variants"] if v.get("kind") == "iframe"]
    assert frozen["failed"].startswith("no new segment for")
