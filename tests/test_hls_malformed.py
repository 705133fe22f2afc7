"""hls playlists that are not playlists: each a `down` result whose error says what is wrong.

Bodies are served by the simulated origin on 127.0.0.1; the healthy twins (gzip, a redirect to another
base URL) must stay up and resolve segment URIs against the final URL.
"""

from __future__ import annotations

import socket
import tracemalloc
from pathlib import Path

import pytest
from fake_clock import FakeClock
from hls_origin import LiveMedia, Origin, load_hls_check

from prober.results import Result
from prober.scheduling.runner import Runner

GOOD = (
    "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n"
    "#EXTINF:2.000,\nseg7.ts\n#EXTINF:2.000,\nseg8.ts\n#EXTINF:2.000,\nseg9.ts\n"
)


async def serve_and_check(clock: FakeClock, origin: Origin, tmp_path: Path, body: bytes, status: int = 200) -> Result:
    origin.static["/live.m3u8"] = (status, {"Content-Type": "application/vnd.apple.mpegurl"}, body)
    spec = load_hls_check(tmp_path, {"url": origin.url("/live.m3u8")})
    return await Runner(clock=clock, persistent_state=True).run(spec)


HTML = b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "is not a valid HLS playlist: the playlist is empty (0 bytes)"),
        (b"\n \n", "the playlist is empty (only whitespace)"),
        (HTML, "the server sent an HTML or XML page, not an HLS playlist: '502 Bad Gateway'"),
        (GOOD.replace("#EXTM3U\n", "").encode(), "it does not start with #EXTM3U (it starts with '#EXT-X-VERSION:3"),
        (b"\xef\xbb\xbf" + GOOD.encode(), "starts with a UTF-8 byte order mark (BOM), which RFC 8216 §4.1 forbids"),
        (GOOD.replace("#EXTINF:2.000,\nseg8", "#EXTINF:abc,\nseg8").encode(), "line 7: EXTINF duration 'abc' is not"),
        (
            GOOD.replace("TARGETDURATION:2", "TARGETDURATION:4.5").encode(),
            "line 3: EXT-X-TARGETDURATION must be a whole number of seconds, got '4.5'",
        ),
        (
            GOOD[: GOOD.rindex("seg9.ts")].encode(),
            "ends with an EXTINF (line 9) that has no segment URI: it looks truncated",
        ),
        (GOOD[:40].encode(), "has no EXT-X-TARGETDURATION tag, which RFC 8216 requires: it may be truncated"),
        (GOOD.replace("seg8.ts\n", "").encode(), "line 8: an EXTINF follows the EXTINF on line 7 with no segment URI"),
        (
            GOOD.replace("#EXT-X-PROGRAM", "")
            .replace("#EXTINF:2.000,\nseg9", "#EXT-X-PROGRAM-DATE-TIME:yesterday\n#EXTINF:2.000,\nseg9")
            .encode(),
            "line 9: EXT-X-PROGRAM-DATE-TIME 'yesterday' is not an ISO 8601 date-time",
        ),
        (GOOD.encode() + b"\xff\xfe\n", "the playlist is not UTF-8 text: byte 0xff at offset"),
        (b"#EXTM3U\nseg1.ts\n", "line 2: 'seg1.ts' is a URI with no EXTINF or EXT-X-STREAM-INF before it"),
    ],
    ids=[
        "empty",
        "whitespace",
        "html-with-200",
        "no-extm3u",
        "bom",
        "extinf-abc",
        "targetduration-4.5",
        "truncated-after-extinf",
        "truncated-before-targetduration",
        "extinf-without-uri",
        "bad-pdt",
        "not-utf8",
        "uri-without-extinf",
    ],
)
async def test_a_malformed_playlist_is_down_saying_what_is_wrong(
    clock: FakeClock, origin: Origin, tmp_path: Path, body: bytes, says: str
) -> None:
    result = await serve_and_check(clock, origin, tmp_path, body)
    assert result.status == "down"
    assert result.error is not None
    assert result.error.startswith(f"the playlist {origin.url('/live.m3u8')} is not a valid HLS playlist: ")
    assert says in result.error
    assert result.metrics["playlist_status"] == 200
    assert origin.requested(lambda path: path.endswith(".ts")) == []


async def test_the_well_formed_twin_of_the_malformed_cases_is_up(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.static["/seg9.ts"] = (200, {}, b"\x47" * 188)
    result = await serve_and_check(clock, origin, tmp_path, GOOD.encode())
    assert result.metrics["playlist_status"] == 200
    assert result.metrics["segment_status"] == 200
    assert result.metrics["media_sequence"] == 7
    assert result.metrics["window"] == 6.0
    # A fixed body never gains a segment: the first run of a daemon without PDT looks twice and sees that.
    assert result.metrics["fresh"] is False
    assert result.error == "fresh was false, expected true"


@pytest.mark.parametrize(("status", "error"), [(404, "returned HTTP 404"), (500, "returned HTTP 500")])
async def test_a_playlist_http_error_is_down_with_the_status(
    clock: FakeClock, origin: Origin, tmp_path: Path, status: int, error: str
) -> None:
    result = await serve_and_check(clock, origin, tmp_path, b"not found", status=status)
    assert result.status == "down"
    assert result.error == f"the playlist {origin.url('/live.m3u8')} {error}"
    assert result.metrics["playlist_status"] == status


async def test_a_refused_connection_is_down_naming_the_address(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/live.m3u8"
    result = await Runner().run(load_hls_check(tmp_path, {"url": url}))
    assert result.status == "down"
    assert result.error == f"cannot fetch the playlist {url}: connection refused by 127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"\x00\xff" * (5 * 1024 * 1024), "it does not start with #EXTM3U"),
        (b"#EXTM3U\n" + b"#" * (10 * 1024 * 1024), "the playlist is larger than 4 MiB; stopped reading"),
    ],
    ids=["garbage", "extm3u-then-garbage"],
)
async def test_a_10_mb_body_is_not_read_into_memory(
    clock: FakeClock, origin: Origin, tmp_path: Path, body: bytes, says: str
) -> None:
    origin.static["/live.m3u8"] = (200, {}, body)
    spec = load_hls_check(tmp_path, {"url": origin.url("/live.m3u8")})
    runner = Runner(clock=clock, persistent_state=True)
    tracemalloc.start()
    try:
        result = await runner.run(spec)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.status == "down"
    assert result.error is not None and says in result.error
    # The origin streams the body in 64 KiB writes; the client keeps at most 4 MiB of it.
    assert peak < 6 * 1024 * 1024


async def test_a_gzip_encoded_playlist_is_read(clock: FakeClock, origin: Origin, tmp_path: Path) -> None:
    origin.add("live", LiveMedia(clock))
    origin.gzip_paths.add("/live/index.m3u8")
    result = await Runner(clock=clock, persistent_state=True).run(
        load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8")})
    )
    assert result.status == "up", result.error
    assert result.metrics["segment_count"] == 6


async def test_relative_uris_resolve_against_the_url_after_redirects(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.add("live", LiveMedia(clock))
    origin.redirects["/entry/stream.m3u8"] = origin.url("/live/index.m3u8")
    result = await Runner(clock=clock, persistent_state=True).run(
        load_hls_check(tmp_path, {"url": origin.url("/entry/stream.m3u8")})
    )
    assert result.status == "up", result.error
    assert origin.requested(lambda path: path.endswith(".ts")) == ["/live/seg29.ts"]


async def test_a_master_whose_variant_is_malformed_names_the_variant(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.add("good", LiveMedia(clock), 800_000)
    origin.add("bad", LiveMedia(clock), 3_000_000)
    origin.static["/bad/index.m3u8"] = (200, {}, HTML)
    result = await Runner(clock=clock, persistent_state=True).run(
        load_hls_check(tmp_path, {"url": origin.url("/master.m3u8")})
    )
    assert result.status == "down"
    assert result.metrics["variants_failed"] == 1
    assert result.metrics["playlist_status"] == 200
    (error,) = result.details["errors"]
    assert error.startswith(f"variant {origin.url('/bad/index.m3u8')} is not a valid HLS playlist:")
    assert "'502 Bad Gateway'" in error


async def test_a_playlist_download_cut_short_is_down_saying_so(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.cut_short.add("/live.m3u8")
    result = await serve_and_check(clock, origin, tmp_path, GOOD.encode())
    assert result.status == "down"
    assert result.error is not None
    assert result.error.startswith(f"cannot fetch the playlist {origin.url('/live.m3u8')}: the download was cut short")
