"""parse_playlist over m3u8: what m3u8 reads, what prober derives because m3u8 gets it wrong, and the sentences
for what m3u8 cannot read or reads too leniently. Each fault has its healthy twin.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import m3u8
import pytest

from prober.probes.hls.playlist import MasterPlaylist, MediaPlaylist, PlaylistError, parse_playlist

START = datetime(2026, 12, 3, 6, 0, tzinfo=UTC).timestamp()


def low_latency(*, parts_for: set[int]) -> str:
    """Four 2 s segments of six 0.333 s parts (1.998 s: parts never add up to EXTINF exactly), PDT once."""
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:9",
        "#EXT-X-TARGETDURATION:2",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0",
        "#EXT-X-PART-INF:PART-TARGET=0.333",
        "#EXT-X-MEDIA-SEQUENCE:10",
        "#EXT-X-PROGRAM-DATE-TIME:2026-12-03T06:00:00.000Z",
    ]
    for n in range(10, 14):
        if n in parts_for:
            lines += [f'#EXT-X-PART:DURATION=0.333,URI="part{n}.{p}.ts"' for p in range(6)]
        lines += ["#EXTINF:2.000,", f"seg{n}.ts"]
    lines += ['#EXT-X-PART:DURATION=0.333,URI="part14.0.ts"', '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part14.1.ts"']
    return "\n".join(lines) + "\n"


def test_pdt_comes_from_extinf_only_whether_or_not_old_part_tags_are_listed() -> None:
    with_parts = low_latency(parts_for={10, 11, 12, 13})
    dropped = low_latency(parts_for={12, 13})  # the origin dropped the part tags of the two older segments
    ours = [parse_playlist(body.encode()) for body in (with_parts, dropped)]
    for playlist in ours:
        assert isinstance(playlist, MediaPlaylist)
        assert [s.pdt for s in playlist.segments] == [START + 2 * i for i in range(4)]
        assert [s.sequence for s in playlist.segments] == [10, 11, 12, 13]
        assert playlist.parts_in_progress == 1 and playlist.part_target == 0.333 and playlist.can_block_reload
    # Why prober derives it: m3u8's running PDT advances per part and again per EXTINF, so the same
    # segment gets two different PDTs depending on the part tags listed before it.
    theirs = [
        m3u8.parse(body)["segments"][3]["current_program_date_time"].timestamp() for body in (with_parts, dropped)
    ]
    assert theirs[0] != theirs[1]
    assert theirs[0] != START + 6


def test_m3u8_reads_the_master_and_prober_keeps_variants_and_renditions() -> None:
    master = (
        "#EXTM3U\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",URI="audio/en.m3u8"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,AUDIO="aac"\nlow/index.m3u8\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,AUDIO="aac"\nhigh/index.m3u8\n'
        '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,RESOLUTION=640x360,URI="low/iframes.m3u8"\n'
        "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000\n"  # no URI: players ignore it (m3u8 alone raises KeyError)
    )
    playlist = parse_playlist(master.encode())
    assert isinstance(playlist, MasterPlaylist)
    assert [(v.uri, v.bandwidth, v.resolution, v.groups) for v in playlist.variants] == [
        ("low/index.m3u8", 800_000, "640x360", ("aac",)),
        ("high/index.m3u8", 3_000_000, "1280x720", ("aac",)),
    ]
    assert [(r.kind, r.uri, r.group, r.name) for r in playlist.renditions] == [
        ("audio", "audio/en.m3u8", "aac", "English"),
        ("iframe", "low/iframes.m3u8", None, None),
    ]
    assert playlist.broken == ()


GOOD = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:2.000,\nseg7.ts\n"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (GOOD.replace("2.000,", "nan,"), "line 4: EXTINF duration 'nan' is not a number of seconds"),
        (GOOD.replace("2.000,", "-2,"), "line 4: EXTINF duration '-2' is not a number of seconds"),
        (GOOD.replace("SEQUENCE:7", "SEQUENCE:-1"), "line 3: EXT-X-MEDIA-SEQUENCE must be a whole number, got '-1'"),
        (GOOD.replace("DURATION:2", "DURATION:0"), "line 2: EXT-X-TARGETDURATION must be at least 1, got 0"),
        (
            GOOD.replace("#EXTINF", "#EXT-X-KEY:METHOD\n#EXTINF"),
            "line 4: '#EXT-X-KEY:METHOD' is malformed; the m3u8 parser stopped there (ValueError: ",
        ),
        (
            GOOD.replace("#EXTINF", '#EXT-X-PROGRAM-DATE-TIME:2026-12-03T06:00:00Z\n#EXT-X-PART:URI="p.ts"\n#EXTINF'),
            "line 5: '#EXT-X-PART:URI=\"p.ts\"' is malformed; the m3u8 parser stopped there (KeyError: 'duration')",
        ),
        (GOOD + "#EXT-X-BYTERANGE:100\nseg8.ts\n", "line 7: 'seg8.ts' is a URI with no EXTINF or EXT-X-STREAM-INF"),
        (GOOD + '#EXT-X-PART:DURATION=1,URI="p.ts"\nseg8.ts\n', "line 7: 'seg8.ts' is a URI with no EXTINF"),
    ],
    ids=[
        "extinf-nan",
        "extinf-negative",
        "sequence-negative",
        "target-0",
        "key-unsplittable",
        "part-no-duration",
        "byterange-no-extinf",
        "part-then-uri",
    ],
)
def test_what_m3u8_cannot_read_or_reads_too_leniently_is_named_by_line(body: str, says: str) -> None:
    with pytest.raises(PlaylistError, match=re.escape(says)):
        parse_playlist(body.encode())
    twin = parse_playlist(GOOD.encode())
    assert isinstance(twin, MediaPlaylist) and [s.uri for s in twin.segments] == ["seg7.ts"]


def test_keys_and_maps_are_read_once_per_tag_and_offsets_continue_per_uri() -> None:
    body = (
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n"
        '#EXT-X-MAP:URI="init.mp4",BYTERANGE="720@0"\n'
        '#EXT-X-KEY:METHOD=AES-128,URI="k1",IV=0x00000000000000000000000000000001\n'
        "#EXTINF:2,\n#EXT-X-BYTERANGE:1000@720\nall.mp4\n"
        "#EXTINF:2,\n#EXT-X-BYTERANGE:500\nall.mp4\n"
        "#EXT-X-KEY:METHOD=NONE\n"
        "#EXTINF:2,\n#EXT-X-BYTERANGE:300\nother.mp4\n"
    )
    playlist = parse_playlist(body.encode())
    assert isinstance(playlist, MediaPlaylist)
    first, second, third = playlist.segments
    assert first.init is second.init and first.init is not None and first.init.byterange is not None
    assert (first.init.uri, first.init.byterange.header()) == ("init.mp4", "bytes=0-719")
    assert first.key is second.key and first.key is not None and first.key.iv == (1).to_bytes(16, "big")
    assert third.key is None
    assert [(s.byterange.offset, s.byterange.length) for s in playlist.segments if s.byterange] == [
        (720, 1000),
        (1720, 500),
        (0, 300),  # another resource starts at 0
    ]


def test_a_playlist_rotating_a_key_per_segment_parses_in_linear_time() -> None:
    """m3u8 checks every new key against a list of the keys seen: 20,000 keys took it 12 s of CPU."""
    body = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + "".join(
        f'#EXT-X-KEY:METHOD=AES-128,URI="k{n}"\n#EXTINF:2,\ns{n}.ts\n' for n in range(20_000)
    )
    started = time.process_time()
    playlist = parse_playlist(body.encode())
    took = time.process_time() - started
    assert isinstance(playlist, MediaPlaylist)
    assert len({segment.key for segment in playlist.segments}) == 20_000
    assert took < 4.0, f"{took:.1f}s of CPU for 20,000 keys"


async def test_large_playlists_are_parsed_in_a_worker_thread_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """m3u8 peaks at ~50 bytes per byte of playlist: four variants of a huge master parse in turn, not at once."""
    import asyncio
    import threading

    from prober.probes.hls import probe as hls

    active, peak, threads = 0, 0, set()
    lock = threading.Lock()

    def watched(body: bytes) -> MasterPlaylist | MediaPlaylist:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        threads.add(threading.get_ident())
        try:
            time.sleep(0.05)
            return parse_playlist(body)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(hls, "parse_playlist", watched)
    large = (GOOD + "#EXTINF:2.000,\nseg8.ts\n" * 2000).encode()
    assert len(large) > 16 * 1024
    playlists = await asyncio.gather(*(hls.parse_off_loop(large) for _ in range(4)))
    assert all(isinstance(p, MediaPlaylist) and len(p.segments) == 2001 for p in playlists)
    assert peak == 1
    assert threading.get_ident() not in threads
    threads.clear()
    small = await asyncio.gather(*(hls.parse_off_loop(GOOD.encode()) for _ in range(4)))  # the twin: on the loop
    assert all(isinstance(p, MediaPlaylist) for p in small)
    assert threads == {threading.get_ident()}
