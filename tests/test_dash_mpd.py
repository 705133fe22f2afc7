"""The MPD parser and segment addressing: real-world MPDs (tests/fixtures/dash, see its README), templates,
SegmentTimeline repeats, BaseURL levels, Periods, the sidx box, and hostile XML refused with a sentence."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from prober.probes.dash.mpd import MAX_DEPTH, MPD_LIMIT, MpdError, parse_duration, parse_mpd
from prober.probes.dash.segments import SidxError, announce, expand_template, parse_sidx

FIXTURES = Path(__file__).parent / "fixtures" / "dash"
URL = "https://cdn.example.com/live/stream/manifest.mpd"


def mpd(body: str, **attrs: str) -> bytes:
    extra = " ".join(f'{key}="{value}"' for key, value in attrs.items())
    return f'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" {extra}>{body}</MPD>'.encode()


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.mpd")), ids=lambda p: p.name)
def test_every_real_world_fixture_parses_and_announces_segments(path: Path) -> None:
    parsed = parse_mpd(path.read_bytes(), URL)
    assert parsed.periods
    now = time.time()
    for period in parsed.periods:
        assert period.representations
        for rep in period.representations:
            assert rep.base_url.startswith(("https://", "http://"))
            announced = announce(parsed, period, rep, now)
            assert announced.newest is not None or announced.index is not None, (rep.id, announced.problems)


def test_the_fixtures_are_read_as_their_packagers_meant() -> None:
    live = parse_mpd((FIXTURES / "dashjs_dynamic_number.mpd").read_bytes(), URL)
    assert live.dynamic and live.availability_start_time == 1346835600.0
    period = live.periods[0]
    video = period.representations[0]
    assert (video.id, video.content_type, video.width, video.bandwidth) == ("video1", "video", 1280, 3000000)
    # 4 s segments from 2012-09-05T09:00:00Z: segment n ends at 4 (n + 1) s; startNumber 0; 2 s of grace.
    announced = announce(live, period, video, 1346835600.0 + 200.0 + 2.5)
    assert announced.clock_based and announced.newest is not None
    assert announced.newest.number == 49 and announced.newest.url == "https://cdn.example.com/live/stream/video1/49.m4s"
    # Its mediaPresentationDuration (260.266 s) ends the presentation: no segment past it is announced.
    ended = announce(live, period, video, 1346835600.0 + 4000.0)
    assert ended.newest is not None and ended.newest.number == 65
    assert announced.init_url == "https://cdn.example.com/live/stream/video1/Header.m4s"

    g2 = parse_mpd((FIXTURES / "iso_example_G2.mpd").read_bytes(), URL)
    rep = g2.periods[0].representations[1]
    announced = announce(g2, g2.periods[0], rep, time.time())
    assert announced.total == 433 and announced.newest is not None
    assert announced.newest.url == f"http://cdn1.example.com/video/500000/{432 * 180180}.mp4v"

    vod = parse_mpd((FIXTURES / "eyevinn_timeline_multi_period.mpd").read_bytes(), URL)
    assert [(p.start, p.end) for p in vod.periods] == [(0.0, 30.0), (30.0, 60.0)]
    second = vod.periods[1]
    audio = announce(vod, second, second.representations[0], 0)
    assert audio.newest is not None and audio.newest.number == 17 + 15
    assert audio.newest.url == "https://cdn.example.com/live/stream/audio/segment32.m4f"

    angel = parse_mpd((FIXTURES / "shaka_angel_one.mpd").read_bytes(), URL)
    text = [rep for rep in angel.periods[0].representations if rep.content_type == "text"]
    assert text and text[0].base_url == "https://shaka-player-demo.appspot.com/assets/angel_one/subs/s-en.vtt"
    webm = announce(angel, angel.periods[0], angel.periods[0].representations[0], 0)
    assert webm.index == ("https://shaka-player-demo.appspot.com/assets/angel_one/a-en.webm", (815951, 816145))
    assert webm.init_range == (0, 4521)

    lower = parse_mpd((FIXTURES / "dashjs_alternative_insert.mpd").read_bytes(), URL)
    assert lower.media_presentation_duration == 60.0  # `PT1M00s`, read as players read it


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("chunk-$RepresentationID$-$Number%05d$.m4s", "chunk-v1-00042.m4s"),
        ("$Bandwidth$/$Time$.mp4", "800000/90000.mp4"),
        ("seg_$Number$_$$.m4s", "seg_42_$.m4s"),
        ("$Time%010d$.m4s", "0000090000.m4s"),
        ("plain.m4s", "plain.m4s"),
    ],
)
def test_templates_replace_every_identifier(template: str, expected: str) -> None:
    parsed = parse_mpd(
        mpd('<Period><AdaptationSet><Representation id="v1" bandwidth="800000"/></AdaptationSet></Period>'), URL
    )
    rep = parsed.periods[0].representations[0]
    assert expand_template(template, rep, number=42, time=90000) == expected


TIMELINE = (
    '<Period id="p" start="PT0S"><AdaptationSet contentType="video">'
    '<SegmentTemplate timescale="10" media="$Time$.m4s" startNumber="5"><SegmentTimeline>{s}</SegmentTimeline>'
    '</SegmentTemplate><Representation id="v" bandwidth="1"/></AdaptationSet></Period>'
)


def timeline(s: str, now: float, **attrs: str) -> tuple[int, list[tuple[int, int]]]:
    parsed = parse_mpd(mpd(TIMELINE.format(s=s), **attrs), URL)
    period = parsed.periods[0]
    announced = announce(parsed, period, period.representations[0], now)
    return announced.total, [(seg.number, seg.time) for seg in announced.segments[-2:]]


def test_a_live_timeline_repeating_to_the_end_counts_up_to_now() -> None:
    attrs = {"type": "dynamic", "availabilityStartTime": "1970-01-01T00:00:00Z"}
    # 2 s segments from t=0; at 9.5 s four are complete (0-2-4-6-8).
    assert timeline('<S t="0" d="20" r="-1"/>', 9.5, **attrs) == (4, [(7, 40), (8, 60)])
    # r=-1 followed by an S with @t repeats up to it.
    assert timeline('<S t="0" d="20" r="-1"/><S t="100" d="10"/>', 1e9, **attrs) == (6, [(9, 80), (10, 100)])
    # A billion repeats costs nothing: counted, not listed.
    assert timeline('<S t="0" d="1" r="1000000000"/>', 0, type="static", mediaPresentationDuration="PT1S")[0] == (
        1000000001
    )


def test_a_static_timeline_repeating_to_the_end_stops_at_the_period_end() -> None:
    total, newest = timeline('<S t="0" d="20" r="-1"/>', 0, type="static", mediaPresentationDuration="PT9S")
    assert total == 5 and newest[-1] == (9, 80)


def test_base_urls_resolve_at_every_level() -> None:
    body = (
        "<BaseURL>https://origin.example.com/root/</BaseURL>"
        "<Period><BaseURL>period/</BaseURL><AdaptationSet><BaseURL>/abs/set/</BaseURL>"
        '<SegmentTemplate media="$Number$.m4s" duration="2" initialization="init.mp4"/>'
        '<Representation id="a"><BaseURL>rep/</BaseURL></Representation>'
        '<Representation id="b"/></AdaptationSet>'
        '<AdaptationSet><SegmentList duration="1"><SegmentURL media="x.m4s"/></SegmentList>'
        '<Representation id="c"/></AdaptationSet></Period>'
    )
    parsed = parse_mpd(mpd(body, type="static", mediaPresentationDuration="PT4S"), URL)
    reps = {rep.id: rep for rep in parsed.periods[0].representations}
    assert reps["a"].base_url == "https://origin.example.com/abs/set/rep/"
    assert reps["b"].base_url == "https://origin.example.com/abs/set/"
    assert reps["c"].base_url == "https://origin.example.com/root/period/"
    announced = announce(parsed, parsed.periods[0], reps["a"], 0)
    assert announced.newest is not None and announced.newest.url == "https://origin.example.com/abs/set/rep/2.m4s"
    assert announced.init_url == "https://origin.example.com/abs/set/rep/init.mp4"


def test_periods_without_start_follow_each_other_and_utc_timing_is_read() -> None:
    body = (
        '<Period id="ad" duration="PT10S"><AdaptationSet><Representation id="a"/></AdaptationSet></Period>'
        '<Period id="main"><AdaptationSet><Representation id="b"/></AdaptationSet></Period>'
        '<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="https://time.example.com/?iso"/>'
        '<UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value="2024-01-01T00:00:00Z"/>'
    )
    parsed = parse_mpd(mpd(body, type="dynamic", availabilityStartTime="2024-01-01T00:00:00Z"), URL)
    assert [(p.id, p.start, p.end) for p in parsed.periods] == [("ad", 0.0, 10.0), ("main", 10.0, None)]
    assert [t.scheme.rsplit(":", 2)[-2] for t in parsed.utc_timing] == ["http-iso", "direct"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT2S", 2.0), ("PT1H2M3.5S", 3723.5), ("P1DT1S", 86401.0), ("PT0.04S", 0.04), ("-PT1S", -1.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_a_duration_that_is_not_one_is_noted_with_its_value() -> None:
    parsed = parse_mpd(
        mpd(
            '<Period><AdaptationSet><Representation id="a"/></AdaptationSet></Period>', minimumUpdatePeriod="2 seconds"
        ),
        URL,
    )
    assert parsed.minimum_update_period is None
    assert parsed.problems == ["MPD@minimumUpdatePeriod: '2 seconds' is not an xs:duration such as PT2S"]


def sidx(references: list[tuple[int, int]], *, version: int = 0, first_offset: int = 0) -> bytes:
    body = struct.pack(">B3xII", version, 1, 1000)
    body += struct.pack(">II", 0, first_offset) if version == 0 else struct.pack(">QQ", 0, first_offset)
    body += struct.pack(">HH", 0, len(references))
    for size, duration in references:
        body += struct.pack(">III", size, duration, 0x90000000)
    return struct.pack(">I4s", 8 + len(body), b"sidx") + body


def test_the_sidx_box_gives_the_byte_range_of_each_subsegment() -> None:
    box = sidx([(1000, 2000), (1500, 2000)])
    references, timescale, earliest = parse_sidx(box, 800)
    assert timescale == 1000 and earliest == 0
    assert [(r.start, r.end, r.duration) for r in references] == [
        (800 + len(box), 800 + len(box) + 999, 2000),
        (800 + len(box) + 1000, 800 + len(box) + 2499, 2000),
    ]
    v1 = sidx([(10, 1)], version=1, first_offset=5)
    assert parse_sidx(b"\x00\x00\x00\x08free" + v1, 0)[0][0].start == 8 + len(v1) + 5


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x00\x00\x00\x10moof", "no sidx box"),
        (sidx([(10, 1), (10, 1)])[:-12], "the sidx box is 56 bytes but the index range holds only 44 of them"),
        (b"\x00\x00\x00\x02sidx", "impossible size 2"),
        (sidx([(0x80000010, 1)]), "hierarchical index"),
    ],
)
def test_a_broken_sidx_box_is_a_sentence(data: bytes, words: str) -> None:
    with pytest.raises(SidxError, match=words):
        parse_sidx(data, 0)


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10))
    + b']><MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><Period>&lol9;</Period></MPD>'
)
EXTERNAL = (
    b'<?xml version="1.0"?><!DOCTYPE MPD [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><Period>&x;</Period></MPD>'
)


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        (BILLION_LAUGHS, "the MPD declares a DTD (<!DOCTYPE>): refused, an MPD never needs one"),
        (EXTERNAL, "the MPD declares a DTD (<!DOCTYPE>): refused, an MPD never needs one"),
        (b"<MPD>" * 5000, f"the MPD nests elements more than {MAX_DEPTH} deep (at <MPD>); stopped reading"),
        (b"<MPD " + b"x" * 10, "the MPD is not well-formed XML at line 1, column 1: unclosed token"),
        (b"<html><body>502</body></html>", "the document is <html>, not an MPD (<MPD> root element)"),
        (mpd(""), "the MPD has no <Period>: there is nothing to play"),
        (b"<MPD>" + b"<a/>" * 200_001 + b"</MPD>", "the MPD has more than 200,000 elements; stopped reading"),
        (b" " * (MPD_LIMIT + 1), f"the MPD is {MPD_LIMIT + 1:,} bytes, more than the 8 MiB read at most"),
    ],
    ids=["billion-laughs", "external-entity", "deep", "broken", "html", "no-period", "too-many", "too-large"],
)
def test_hostile_xml_is_refused_with_a_sentence(body: bytes, sentence: str) -> None:
    started = time.process_time()
    with pytest.raises(MpdError) as caught:
        parse_mpd(body, URL)
    assert str(caught.value) == sentence
    assert time.process_time() - started < 1.0
