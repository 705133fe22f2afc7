"""Tags are known by their whole name: an unknown tag that only begins like a known one is ignored (RFC 8216 4.1),
and a playlist mixing master and media tags is refused naming the tags it really has.

The m3u8 package matches tag names by prefix, so `#EXT-X-MEDIA-READY` would be EXT-X-MEDIA (a master tag in a
media playlist: refused), `#EXT-X-KEYFRAME-INTERVAL` an EXT-X-KEY, `#EXT-X-ENDLIST-SOON` the end of the
stream, `#EXT-X-GAPLESS` a gap. Each case is served live by the loopback origin (fake clock) and checked
against its twin without the tag: same status, same metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fake_clock import FakeClock
from hls_origin import LiveMedia, Origin, load_hls_check

from prober.results import Result
from prober.scheduling.runner import Runner

UNKNOWN = [
    "#EXT-X-MEDIA-READY:YES",
    "#EXT-X-KEYFRAME-INTERVAL:2",
    "#EXT-X-PARTNER-ID:7",
    "#EXT-X-MAPPING:cdn-eu",
    "#EXT-X-GAPLESS",
    "#EXT-X-ENDLIST-SOON",
    "#EXT-X-STREAM-INFO:HELLO=1",
    "#EXTINFO:not a duration",
]
COMPARED = ("segment_count", "media_sequence", "window", "target_duration", "endlist", "fresh", "consistent")


@dataclass
class Tagged(LiveMedia):
    """A live media playlist with extra tag lines after its header, before the first segment."""

    extra: tuple[str, ...] = ()
    before_each_segment: tuple[str, ...] = ()

    def render(self) -> str:
        lines = super().render().splitlines()
        first_segment = next(index for index, line in enumerate(lines) if line.startswith("#EXT-X-PROGRAM-DATE-TIME"))
        out = lines[:first_segment] + list(self.extra)
        for line in lines[first_segment:]:
            if line.startswith("#EXT-X-PROGRAM-DATE-TIME"):
                out.extend(self.before_each_segment)
            out.append(line)
        return "\n".join(out) + "\n"


async def two_runs(origin: Origin, clock: FakeClock, tmp_path: Path, path: str, name: str) -> list[Result]:
    spec = load_hls_check(tmp_path, {"url": origin.url(path)}, name=name)
    runner = Runner(clock=clock, persistent_state=True)
    start = clock.value
    results = []
    for offset in (0.0, 2.0):
        clock.value = start + offset
        results.append(await runner.run(spec))
    clock.value = start
    return results


@pytest.mark.parametrize("tag", UNKNOWN)
async def test_an_unknown_tag_named_like_a_known_one_is_ignored_in_a_media_playlist(
    tag: str, clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.add("tagged", Tagged(clock, extra=(tag,), before_each_segment=(tag,)))
    origin.add("plain", LiveMedia(clock))
    tagged = await two_runs(origin, clock, tmp_path, "/tagged/index.m3u8", "tagged")
    plain = await two_runs(origin, clock, tmp_path, "/plain/index.m3u8", "plain")
    for with_tag, without in zip(tagged, plain, strict=True):
        assert with_tag.status == without.status == "up", (with_tag.error, without.error)
        assert {m: with_tag.metrics.get(m) for m in COMPARED} == {m: without.metrics.get(m) for m in COMPARED}
        assert with_tag.details.get("inconsistencies") == without.details.get("inconsistencies") == []


async def test_an_unknown_tag_in_a_master_playlist_is_ignored(clock: FakeClock, origin: Origin, tmp_path: Path) -> None:
    origin.add("v1", LiveMedia(clock))
    origin.master_extra += ["#EXT-X-MEDIA-READY:YES", "#EXT-X-STREAM-INFO:HELLO=1"]
    (first, second) = await two_runs(origin, clock, tmp_path, "/master.m3u8", "master")
    assert first.status == second.status == "up", (first.error, second.error)
    assert second.metrics["variants_total"] == 1 and second.metrics["renditions_total"] == 0


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (('#EXT-X-SESSION-KEY:METHOD=AES-128,URI="https://keys.example/k1"',), "EXT-X-SESSION-KEY"),
        (('#EXT-X-SESSION-DATA:DATA-ID="com.example.title",VALUE="Live"',), "EXT-X-SESSION-DATA"),
        ((), None),
    ],
    ids=["session-key", "session-data", "healthy"],
)
async def test_a_media_playlist_with_a_master_tag_is_down_naming_the_tags_it_has(
    extra: tuple[str, ...], named: str | None, clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.add("live", Tagged(clock, extra=extra))
    spec = load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8")})
    result = await Runner(clock=clock, persistent_state=True).run(spec)
    if named is None:
        assert result.status == "up", result.error
        return
    assert result.status == "down"
    url = origin.url("/live/index.m3u8")
    assert result.error == (
        f"the playlist {url} is not a valid HLS playlist: the playlist mixes master tags ({named}) with media tags "
        "(EXTINF, EXT-X-TARGETDURATION): a playlist is one or the other (RFC 8216 4.1)"
    )
    assert "EXT-X-STREAM-INF" not in result.error and "EXT-X-MEDIA)" not in result.error


def test_the_tags_named_are_the_ones_in_the_playlist_for_every_master_tag() -> None:
    """Pure parser check of the sentence for each master tag m3u8 reads (no server needed for the wording)."""
    from prober.probes.hls.playlist import PlaylistError, parse_playlist

    masters: dict[str, Any] = {
        "EXT-X-STREAM-INF": "#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8",
        "EXT-X-MEDIA": '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="en",URI="a.m3u8"',
        "EXT-X-I-FRAME-STREAM-INF": '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI="i.m3u8"',
    }
    for tag, lines in masters.items():
        body = f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n{lines}\n#EXTINF:2,\ns.ts\n".encode()
        with pytest.raises(PlaylistError) as caught:
            parse_playlist(body)
        assert f"mixes master tags ({tag}) with media tags (EXTINF, EXT-X-TARGETDURATION)" in str(caught.value)
