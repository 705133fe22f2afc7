"""Which segments a DASH Representation announces, and where they are.

`announce(mpd, period, representation, now)` turns a Representation's addressing into its newest
segments (number, media time, duration, absolute URL, byte range) and its initialization segment:

- SegmentTemplate with `$Number$` and `@duration`: in a live MPD the segments follow the clock (segment
  n is complete when availabilityStartTime + Period@start + its end has passed);
- SegmentTemplate with a SegmentTimeline (`$Time$` or `$Number$`): `<S t d r>` entries, `r="-1"`
  repeating up to the next `@t`, the Period's end or (live) now;
- SegmentList: `<SegmentURL media mediaRange>`, timed by `@duration` or a SegmentTimeline;
- SegmentBase: one file whose `sidx` box (`parse_sidx`, read from `@indexRange`) lists the byte ranges
  of its subsegments; `announce` returns where the index is and `from_index` the segments.

Templates understand `$RepresentationID$`, `$Number$`, `$Time$`, `$Bandwidth$`, `$SubNumber$`, `$$` and
the width tags (`$Number%05d$`). Nothing is enumerated: a timeline of `r="1000000000"` or a live stream
running for a year costs the same few operations (runs of equal segments are counted, not listed).

Pure: no I/O; `now` is passed in. Never judges anything.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from urllib.parse import urljoin

from prober.probes.dash.mpd import Addressing, Mpd, Period, Representation

__all__ = [
    "Announced",
    "Segment",
    "SidxError",
    "SidxReference",
    "announce",
    "expand_template",
    "from_index",
    "numbered",
    "parse_byte_range",
    "parse_sidx",
    "segment_grace",
]

KEEP = 12
"""Newest segments returned per Representation (compared across runs for consistency)."""
_TEMPLATE = re.compile(r"\$(RepresentationID|Number|Time|Bandwidth|SubNumber)(%0?(\d{0,2})([dioxX]))?\$|\$\$")


class SidxError(Exception):
    """A `sidx` box that cannot be read; `str(self)` says where and why."""


@dataclass(frozen=True, slots=True)
class Segment:
    number: int
    time: int
    """Media time of its start, in `timescale` units (SegmentTimeline @t)."""
    duration: int
    timescale: int
    url: str
    byte_range: tuple[int, int] | None = None
    """First and last byte (inclusive), for `Range:`."""
    offset: int = 0
    """presentationTimeOffset: media time at the Period's start."""

    @property
    def seconds(self) -> float:
        return self.duration / self.timescale

    @property
    def start(self) -> float:
        """Seconds from the Period's start."""
        return (self.time - self.offset) / self.timescale

    @property
    def end(self) -> float:
        return self.start + self.seconds


@dataclass(slots=True)
class Announced:
    """The newest segments one Representation announces, oldest first."""

    segments: list[Segment] = field(default_factory=list)
    total: int = 0
    """Segments announced in all (counted, not listed)."""
    init_url: str | None = None
    init_range: tuple[int, int] | None = None
    index: tuple[str, tuple[int, int]] | None = None
    """SegmentBase: the URL and byte range of the `sidx` box to read before the segments are known."""
    clock_based: bool = False
    """A live `$Number$` template without timeline: the newest segment is computed from the clock."""
    problems: list[str] = field(default_factory=list)

    @property
    def newest(self) -> Segment | None:
        return self.segments[-1] if self.segments else None


def expand_template(template: str, representation: Representation, *, number: int = 0, time: int = 0) -> str:
    """A SegmentTemplate @media/@initialization with its identifiers replaced (ISO/IEC 23009-1 5.3.9.4.4)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        if name == "RepresentationID":
            return representation.id
        raw = {"Number": number, "Time": time, "Bandwidth": representation.bandwidth or 0, "SubNumber": 0}[name]
        if match.group(2):
            width = int(match.group(3) or 1)
            kind = match.group(4)
            kind = "d" if kind in ("i", "u") else kind
            return format(raw, f"0{width}{kind}")
        return str(raw)

    return _TEMPLATE.sub(value, template)


def parse_byte_range(text: str | None) -> tuple[int, int] | None:
    """`"100-199"` as (100, 199); None when absent or unreadable."""
    if not text:
        return None
    first, _, last = text.strip().partition("-")
    try:
        start, end = int(first), int(last)
    except ValueError:
        return None
    return (start, end) if 0 <= start <= end else None


def segment_grace(duration: float) -> float:
    """Seconds after a segment's end before a clock-driven origin is expected to serve it."""
    return min(2.0, 0.5 * duration)


@dataclass(frozen=True, slots=True)
class _Run:
    number: int
    t: int
    d: int
    count: int


def _runs(addressing: Addressing, timeline_end: int | None, now_ticks: int | None, problems: list[str]) -> list[_Run]:
    """The timeline as runs of equal segments: `r="-1"` counted up to the next @t, the end, or now."""
    entries = addressing.timeline or ()
    runs: list[_Run] = []
    cursor = addressing.presentation_time_offset if entries and entries[0].t is None else 0
    number = addressing.start_number
    for index, entry in enumerate(entries):
        t = entry.t if entry.t is not None else cursor
        if runs and t < cursor:
            problems.append(f"SegmentTimeline entry {index} starts at t={t}, before the previous one ends (t={cursor})")
        if entry.r >= 0:
            count = entry.r + 1
        else:
            following = entries[index + 1].t if index + 1 < len(entries) else None
            if following is not None:
                count = max(0, math.ceil((following - t) / entry.d))
            elif timeline_end is not None and (now_ticks is None or timeline_end <= now_ticks):
                count = max(0, math.ceil((timeline_end - t) / entry.d))
            elif now_ticks is not None:
                limit = now_ticks if timeline_end is None else min(now_ticks, timeline_end)
                count = max(0, (limit - t) // entry.d)
            else:
                problems.append(f'SegmentTimeline entry {index} repeats without end (r="-1") in a Period without end')
                count = 1
        if count > 0:
            runs.append(_Run(number, t, entry.d, count))
        number += count
        cursor = t + count * entry.d
    return runs


def _newest_of_runs(runs: list[_Run], keep: int) -> list[tuple[int, int, int]]:
    """(number, t, d) of the newest `keep` segments, oldest first."""
    found: list[tuple[int, int, int]] = []
    for run in reversed(runs):
        take = min(run.count, keep - len(found))
        for step in range(run.count - 1, run.count - 1 - take, -1):
            found.append((run.number + step, run.t + step * run.d, run.d))
        if len(found) >= keep:
            break
    found.reverse()
    return found


def announce(mpd: Mpd, period: Period, representation: Representation, now: float, *, keep: int = KEEP) -> Announced:
    """The newest segments `representation` announces at `now` (Unix seconds, already corrected by UTCTiming)."""
    announced = Announced()
    addressing = representation.addressing
    base = representation.base_url
    if addressing is None:
        # A bare BaseURL: the Representation is one file (a subtitle track, an old on-demand profile).
        announced.segments = [Segment(1, 0, 0, 1, base)]
        announced.total = 1
        return announced
    scale = addressing.timescale
    offset = addressing.presentation_time_offset
    period_ticks = None if period.end is None else offset + round((period.end - period.start) * scale)
    now_ticks: int | None = None
    if mpd.dynamic and mpd.availability_start_time is not None:
        now_ticks = offset + math.floor((now - mpd.availability_start_time - period.start) * scale)
    if addressing.kind == "template":
        if addressing.initialization:
            announced.init_url = _join(base, expand_template(addressing.initialization, representation))
        if addressing.media is None:
            announced.problems.append("its SegmentTemplate has no @media")
            return announced
        media = addressing.media
        if addressing.timeline is not None:
            runs = _runs(addressing, period_ticks, now_ticks, announced.problems)
            announced.total = sum(run.count for run in runs)
            for number, t, d in _newest_of_runs(runs, keep):
                url = _join(base, expand_template(media, representation, number=number, time=t))
                announced.segments.append(Segment(number, t, d, scale, url, None, offset))
            return announced
        if not addressing.duration:
            announced.problems.append("its SegmentTemplate has neither @duration nor a SegmentTimeline")
            return announced
        d = addressing.duration
        if mpd.dynamic:
            if now_ticks is None:
                announced.problems.append("a live $Number$ template needs MPD@availabilityStartTime to place segments")
                return announced
            announced.clock_based = True
            grace = round(segment_grace(d / scale) * scale)
            limit = now_ticks - grace
            if period_ticks is not None and limit >= period_ticks:
                count = max(0, math.ceil((period_ticks - offset) / d))  # the Period is over: all of it, the last short
            else:
                count = max(0, (limit - offset) // d)
        else:
            if period_ticks is None:
                announced.problems.append("a static MPD whose Period has no end: the number of segments is unknown")
                return announced
            count = max(0, math.ceil((period_ticks - offset) / d))
        announced.total = count
        first = max(0, count - keep)
        for index in range(first, count):
            number = addressing.start_number + index
            t = offset + index * d
            url = _join(base, expand_template(media, representation, number=number, time=t))
            announced.segments.append(Segment(number, t, d, scale, url, None, offset))
        return announced
    if addressing.kind == "list":
        if addressing.initialization or addressing.initialization_range:
            # <Initialization range> without @sourceURL: the bytes are in the Representation's own file.
            announced.init_url = _join(base, addressing.initialization) if addressing.initialization else base
            announced.init_range = parse_byte_range(addressing.initialization_range)
        urls = addressing.urls
        announced.total = len(urls)
        times: list[tuple[int, int, int]]
        if addressing.timeline is not None:
            runs = _runs(addressing, period_ticks, now_ticks, announced.problems)
            times = _newest_of_runs(runs, keep)
            shift = addressing.start_number
            times = [item for item in times if 0 <= item[0] - shift < len(urls)]
        else:
            d = addressing.duration or 0
            if not d and len(urls) > 1:
                announced.problems.append("its SegmentList has neither @duration nor a SegmentTimeline")
            start = max(0, len(urls) - keep)
            times = [(addressing.start_number + i, offset + i * d, d) for i in range(start, len(urls))]
        for number, t, d in times:
            item = urls[number - addressing.start_number]
            url = _join(base, item.media) if item.media else base
            announced.segments.append(Segment(number, t, d, scale, url, parse_byte_range(item.media_range), offset))
        return announced
    # SegmentBase: one file; its sidx says where the segments are.
    announced.init_url = _join(base, addressing.initialization) if addressing.initialization else base
    announced.init_range = parse_byte_range(addressing.initialization_range)
    index_range = parse_byte_range(addressing.index_range)
    if index_range is None:
        announced.segments = [Segment(1, 0, 0, scale, base)]
        announced.total = 1
        if addressing.index_range:
            announced.problems.append(f"SegmentBase@indexRange={addressing.index_range[:40]!r} is not a byte range")
        return announced
    announced.index = (base, index_range)
    if announced.init_range is None and index_range[0] > 0:
        announced.init_range = (0, index_range[0] - 1)  # the moov box comes before the sidx
    return announced


def numbered(representation: Representation, number: int) -> Segment:
    """Segment `number` of a `$Number$` template without timeline (`@duration`)."""
    addressing = representation.addressing
    assert addressing is not None and addressing.media is not None and addressing.duration
    d = addressing.duration
    t = addressing.presentation_time_offset + (number - addressing.start_number) * d
    url = _join(representation.base_url, expand_template(addressing.media, representation, number=number, time=t))
    return Segment(number, t, d, addressing.timescale, url, None, addressing.presentation_time_offset)


def from_index(announced: Announced, representation: Representation, data: bytes, *, keep: int = KEEP) -> None:
    """Fill a SegmentBase Representation's segments from its `sidx` bytes (read at `announced.index`)."""
    assert announced.index is not None
    url, (first, _) = announced.index
    references, timescale, earliest = parse_sidx(data, first)
    addressing = representation.addressing
    offset = addressing.presentation_time_offset if addressing is not None else 0
    announced.total = len(references)
    t = earliest
    segments = []
    for number, reference in enumerate(references, start=1):
        segments.append(
            Segment(number, t, reference.duration, timescale, url, (reference.start, reference.end), offset)
        )
        t += reference.duration
    announced.segments = segments[-keep:]


@dataclass(frozen=True, slots=True)
class SidxReference:
    start: int
    end: int
    """Byte range (inclusive) of one subsegment in the file."""
    duration: int


_MAX_REFERENCES = 100_000


def parse_sidx(data: bytes, position: int) -> tuple[list[SidxReference], int, int]:
    """Read the Segment Index box (ISO/IEC 14496-12 8.16.3) at the start of `data`, which was read from byte
    `position` of the file: (subsegment references, timescale, earliest presentation time)."""
    at = 0
    while True:
        if len(data) - at < 8:
            raise SidxError(f"no sidx box in the {len(data)} bytes of the index range")
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            if len(data) - at < 16:
                raise SidxError("the index range ends inside a box header")
            (size,) = struct.unpack_from(">Q", data, at + 8)
            header = 16
        if size < header:
            raise SidxError(f"a box at byte {position + at} declares an impossible size {size}")
        if kind == b"sidx":
            break
        at += size  # a styp or free box may come first
    box = data[at : at + size]
    if len(box) < size:
        raise SidxError(f"the sidx box is {size} bytes but the index range holds only {len(box)} of them")
    body = header
    if len(box) < body + 12:
        raise SidxError("the sidx box is too short")
    version = box[body]
    (timescale,) = struct.unpack_from(">I", box, body + 8)
    if version == 0:
        if len(box) < body + 24:
            raise SidxError("the sidx box is too short")
        earliest, first_offset = struct.unpack_from(">II", box, body + 12)
        cursor = body + 20
    else:
        if len(box) < body + 32:
            raise SidxError("the sidx box is too short")
        earliest, first_offset = struct.unpack_from(">QQ", box, body + 12)
        cursor = body + 28
    (count,) = struct.unpack_from(">H", box, cursor + 2)
    cursor += 4
    if timescale == 0:
        raise SidxError("the sidx box has timescale 0")
    if len(box) < cursor + 12 * count:
        raise SidxError(f"the sidx box lists {count} references but holds only {(len(box) - cursor) // 12}")
    start = position + at + size + first_offset
    references: list[SidxReference] = []
    for index in range(min(count, _MAX_REFERENCES)):
        word, duration, _ = struct.unpack_from(">III", box, cursor + 12 * index)
        if word >> 31:
            raise SidxError("the sidx box references another sidx (a hierarchical index), which is not read")
        length = word & 0x7FFFFFFF
        if length == 0:
            raise SidxError(f"sidx reference {index} has size 0")
        references.append(SidxReference(start, start + length - 1, duration))
        start += length
    return references, timescale, earliest


def _join(base: str, relative: str) -> str:
    return urljoin(base, relative)
