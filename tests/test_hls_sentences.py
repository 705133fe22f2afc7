"""The sentences an on-call engineer reads for streams that are wrong in ordinary ways, each with its healthy twin:
a VOD playlist under `live: true`, a blank line before #EXTM3U, a master with no variants (as ffmpeg writes for
a subtitles-only var_stream_map), a playlist with no segments, and a first look (`prober check`) at a stream
whose PROGRAM-DATE-TIME says it stopped long ago.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fake_clock import FakeClock
from hls_origin import LiveMedia, Origin, load_hls_check

from prober.probes.hls.playlist import MediaPlaylist, PlaylistError, parse_playlist
from prober.results import Result
from prober.scheduling.runner import Runner

GOOD = (
    "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n"
    "#EXTINF:2.000,\nseg7.ts\n#EXTINF:2.000,\nseg8.ts\n#EXTINF:2.000,\nseg9.ts\n"
)


async def serve(clock: FakeClock, origin: Origin, tmp_path: Path, body: str | bytes, **keys: Any) -> Result:
    data = body.encode() if isinstance(body, str) else body
    origin.static["/live.m3u8"] = (200, {"Content-Type": "application/vnd.apple.mpegurl"}, data)
    spec = load_hls_check(tmp_path, {"url": origin.url("/live.m3u8"), **keys})
    return await Runner(clock=clock, persistent_state=True).run(spec)


async def test_a_vod_playlist_under_live_says_the_live_stream_has_ended(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    vod = GOOD + "#EXT-X-ENDLIST\n"
    result = await serve(clock, origin, tmp_path, vod)
    assert result.status == "down"
    assert (
        result.error
        == "the playlist has EXT-X-ENDLIST: the live stream has ended (for a VOD or event stream set live: false)"
    )
    assert result.metrics["endlist"] is True
    twin = await serve(clock, origin, tmp_path, vod, live=False, segments=0)
    assert twin.status == "up", twin.error


async def test_one_ended_variant_of_a_live_master_says_so_first(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.add("ended", LiveMedia(clock, endlist=True, frozen_at=clock.time()))
    origin.add("live", LiveMedia(clock))
    result = await Runner(clock=clock, persistent_state=True).run(
        load_hls_check(tmp_path, {"url": origin.url("/master.m3u8")})
    )
    assert result.status == "down"
    assert result.error is not None
    assert result.error.startswith("the playlist has EXT-X-ENDLIST: the live stream has ended")


@pytest.mark.parametrize("lead", ["\n", "\r\n\n", "  "])
async def test_a_blank_line_before_extm3u_is_named(lead: str, clock: FakeClock, origin: Origin, tmp_path: Path) -> None:
    result = await serve(clock, origin, tmp_path, lead + GOOD)
    assert result.status == "down"
    assert result.error is not None
    assert "starts with blank lines or spaces before #EXTM3U" in result.error or "starts with spaces" in result.error
    assert "which must be its very first line (RFC 8216 §4.3.1.1)" in result.error
    assert "it starts with '#EXTM3U" not in result.error


async def test_a_master_with_renditions_but_no_variants_says_so(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    master = (
        "#EXTM3U\n#EXT-X-VERSION:3\n"
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="subtitle_0",DEFAULT=YES,URI="o0_vtt.m3u8"\n'
    )
    result = await serve(clock, origin, tmp_path, master)
    assert result.status == "down"
    assert result.error is not None and result.error.endswith(
        "is not a valid HLS playlist: the master playlist lists no variants (no EXT-X-STREAM-INF with a URI); "
        "it lists 1 rendition, but a player needs a variant to start"
    )
    assert "TARGETDURATION" not in result.error


async def test_a_playlist_with_no_segments_says_there_is_nothing_to_play(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    empty = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
    result = await serve(clock, origin, tmp_path, empty)
    assert result.status == "down"
    assert result.error == (
        f"the playlist {origin.url('/live.m3u8')} lists no segments (EXT-X-TARGETDURATION but no EXTINF): "
        "players have nothing to play"
    )
    assert "null" not in result.error
    twin = await serve(clock, origin, tmp_path, GOOD, segments=0, live=False)
    assert twin.status == "up", twin.error


@pytest.mark.parametrize("stopped_ago", [19.0, None], ids=["stopped-19s-ago", "running"])
async def test_a_first_look_reports_how_old_the_pdt_says_the_stream_is(
    stopped_ago: float | None, clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    frozen = None if stopped_ago is None else clock.time() - stopped_ago
    origin.add("live", LiveMedia(clock, frozen_at=frozen))
    spec = load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8"), "timeout": "10s"})
    result = await Runner(clock=clock).run(spec)  # `prober check`: no state, it looks twice
    if stopped_ago is None:
        assert result.status == "up", result.error
        assert result.metrics["stale_for"] < 2
        return
    assert result.status == "down"
    assert result.metrics["stale_for"] > stopped_ago  # not the 3.2 s spent looking
    notes = " ".join(result.details["notes"])
    assert "no new segment appeared; the newest PROGRAM-DATE-TIME says it ended" in notes


RANGED = (
    "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
    "#EXTINF:2.000,\n#EXT-X-BYTERANGE:{first}\nall.ts\n#EXTINF:2.000,\n#EXT-X-BYTERANGE:500\nall.ts\n"
)


@pytest.mark.parametrize(
    ("byterange", "says"),
    [
        ("abc", "line 6: EXT-X-BYTERANGE 'abc' is not <length>[@<offset>]"),
        ("0@0", "line 6: EXT-X-BYTERANGE length must be at least 1 byte, got 0"),
        ("-5@10", "line 6: EXT-X-BYTERANGE '-5@10' is not <length>[@<offset>]"),
        ("1000@0", None),
    ],
)
def test_a_bad_byterange_is_named_and_offsets_carry_over(byterange: str, says: str | None) -> None:
    body = RANGED.format(first=byterange).encode()
    if says is not None:
        with pytest.raises(PlaylistError, match=re.escape(says)):
            parse_playlist(body)
        return
    playlist = parse_playlist(body)
    assert isinstance(playlist, MediaPlaylist)
    first, second = playlist.segments
    assert first.byterange is not None and first.byterange.header() == "bytes=0-999"
    assert second.byterange is not None and (second.byterange.offset, second.byterange.length) == (1000, 500)


def test_a_playlist_breaking_rules_on_every_segment_lists_twenty_problems_not_all() -> None:
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:2"] + ["#EXTINF:9.0,\ns.ts"] * 5000
    playlist = parse_playlist("\n".join(lines).encode())
    assert isinstance(playlist, MediaPlaylist)
    assert len(playlist.problems) == 21
    assert playlist.problems[0] == "segment 0 lasts 9s (EXTINF), longer than the target duration 2s"
    assert playlist.problems[-1] == "... and 4980 more like these"
    healthy = parse_playlist("\n".join(["#EXTM3U", "#EXT-X-TARGETDURATION:9", *lines[2:]]).encode())
    assert isinstance(healthy, MediaPlaylist) and healthy.problems == ()
