"""The MPEG-DASH manifest (MPD) as a small typed model, and its parser.

`parse_mpd(body, url)` reads an MPD (ISO/IEC 23009-1) into an `Mpd`: its type (dynamic or static), the
times a live manifest is judged by (availabilityStartTime, publishTime, minimumUpdatePeriod,
timeShiftBufferDepth), its UTCTiming sources, and per Period the Representations with their BaseURL
already resolved (MPD, Period, AdaptationSet and Representation levels, against the MPD's own URL) and
their segment addressing (SegmentTemplate, SegmentList or SegmentBase) merged from the levels that
declare it. Turning addressing into segment URLs is `segments.py`'s job.

Hostile XML cannot hurt the daemon: the body is refused above `MPD_LIMIT` bytes, parsed by defusedxml
with DTDs forbidden (no entities, so no billion laughs, no external entities), and the parse stops at
`MAX_DEPTH` levels of nesting or `MAX_ELEMENTS` elements. Each refusal is an `MpdError` whose text is a
sentence. `mpegdash` (the PyPI MPD library) is not used: it parses with xml.dom.minidom (not hardened),
opens URLs itself and leaves SegmentTimeline, durations and BaseURL resolution to the caller.

Pure: no I/O, no clock. Never judges anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urljoin
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import DefusedXMLParser  # type: ignore[import-untyped]

__all__ = [
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "MPD_LIMIT",
    "Addressing",
    "Mpd",
    "MpdError",
    "Period",
    "Representation",
    "SegmentUrl",
    "TimelineEntry",
    "UtcTiming",
    "parse_datetime",
    "parse_duration",
    "parse_mpd",
]

MPD_LIMIT = 8 * 1024 * 1024
"""Bytes of MPD read at most (the largest real-world live MPDs, hours of SegmentTimeline, are ~2 MB)."""
MAX_DEPTH = 32
"""Element nesting at most (a real MPD nests 6 deep: MPD, Period, AdaptationSet, Representation, ...)."""
MAX_ELEMENTS = 200_000
"""Elements at most (a SegmentList of 100,000 SegmentURLs still parses)."""


class MpdError(Exception):
    """The body is not a usable MPD; `str(self)` says why, with the value or the place."""


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One `<S>` of a SegmentTimeline: start `t` (None: right after the previous one), duration, repeats."""

    t: int | None
    d: int
    r: int


@dataclass(frozen=True, slots=True)
class SegmentUrl:
    """One `<SegmentURL>` of a SegmentList."""

    media: str | None
    media_range: str | None


@dataclass(frozen=True, slots=True)
class Addressing:
    """How a Representation's segments are found, merged over Period, AdaptationSet and Representation."""

    kind: Literal["template", "list", "base"]
    timescale: int = 1
    duration: int | None = None
    start_number: int = 1
    presentation_time_offset: int = 0
    media: str | None = None
    initialization: str | None = None
    """The initialization URL (a template for SegmentTemplate), None when the media holds it (SegmentBase)."""
    initialization_range: str | None = None
    index_range: str | None = None
    """SegmentBase@indexRange: where the `sidx` box is."""
    timeline: tuple[TimelineEntry, ...] | None = None
    urls: tuple[SegmentUrl, ...] = ()
    availability_time_offset: float = 0.0


@dataclass(frozen=True, slots=True)
class Representation:
    id: str
    content_type: str
    """video, audio, text or the mimeType's first word (image, application)."""
    adaptation: int
    """Index of its AdaptationSet in the Period."""
    base_url: str
    """Absolute: relative segment URLs resolve against it."""
    addressing: Addressing | None
    bandwidth: int | None = None
    width: int | None = None
    height: int | None = None
    codecs: str | None = None
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class Period:
    index: int
    id: str | None
    start: float
    """Seconds from availabilityStartTime (dynamic) or the presentation start (static)."""
    end: float | None
    """The next Period's start, this one's start + @duration, or the presentation's end; None: open (live)."""
    representations: tuple[Representation, ...]


@dataclass(frozen=True, slots=True)
class UtcTiming:
    scheme: str
    value: str


@dataclass(slots=True)
class Mpd:
    dynamic: bool
    periods: tuple[Period, ...]
    availability_start_time: float | None = None
    publish_time: float | None = None
    minimum_update_period: float | None = None
    time_shift_buffer_depth: float | None = None
    media_presentation_duration: float | None = None
    max_segment_duration: float | None = None
    suggested_presentation_delay: float | None = None
    utc_timing: tuple[UtcTiming, ...] = ()
    location: str | None = None
    problems: list[str] = field(default_factory=list)
    """What is wrong but does not stop the MPD from being used (an unreadable attribute, ...)."""


_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<years>\d+(?:\.\d+)?)Y)?(?:(?P<months>\d+(?:\.\d+)?)M)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_UNITS = {"years": 365 * 86400.0, "months": 30 * 86400.0, "days": 86400.0, "hours": 3600.0, "minutes": 60.0}


def parse_duration(text: str) -> float:
    """xs:duration (`PT1H2M3.5S`, `P1D`) as seconds; ValueError when it is not one."""
    value = text.strip().upper()  # `PT1M00s`: players read it, so does this
    match = _DURATION.match(value)
    if match is None or value in ("P", "PT", "-P") or value.endswith("T"):
        raise ValueError(f"{text!r} is not an xs:duration such as PT2S")
    seconds = float(match["seconds"] or 0)
    for unit, factor in _UNITS.items():
        if match[unit]:
            seconds += float(match[unit]) * factor
    return -seconds if match["sign"] else seconds


def parse_datetime(text: str) -> float:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    # Python 3.11 reads at most 6 fractional digits: round longer fractions off.
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # DASH-IF IOP 4.7: times without a zone are UTC
    return moment.timestamp()


class _Limits:
    """A TreeBuilder target that stops the parse at MAX_DEPTH nesting or MAX_ELEMENTS elements."""

    def __init__(self) -> None:
        self.builder = TreeBuilder()
        self.depth = 0
        self.elements = 0

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self.depth += 1
        self.elements += 1
        if self.depth > MAX_DEPTH:
            raise MpdError(f"the MPD nests elements more than {MAX_DEPTH} deep (at <{_local(tag)}>); stopped reading")
        if self.elements > MAX_ELEMENTS:
            raise MpdError(f"the MPD has more than {MAX_ELEMENTS:,} elements; stopped reading")
        return self.builder.start(tag, attrs)

    def end(self, tag: str) -> Element:
        self.depth -= 1
        return self.builder.end(tag)

    def data(self, data: str) -> None:
        self.builder.data(data)

    def close(self) -> Element:
        return self.builder.close()


_FORBIDDEN = {
    "DTDForbidden": "a DTD (<!DOCTYPE>)",
    "EntitiesForbidden": "an entity (<!ENTITY>)",
    "ExternalReferenceForbidden": "an external reference",
}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml(body: bytes) -> Element:
    if len(body) > MPD_LIMIT:
        raise MpdError(f"the MPD is {len(body):,} bytes, more than the {MPD_LIMIT // (1024 * 1024)} MiB read at most")
    target = _Limits()
    parser = DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(body)
        root: Element = parser.close()
    except MpdError:
        raise
    except DefusedXmlException as exc:
        what = _FORBIDDEN.get(type(exc).__name__, "markup defusedxml refuses")
        raise MpdError(f"the MPD declares {what}: refused, an MPD never needs one") from None
    except ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        raise MpdError(f"the MPD is not well-formed XML at line {line}, column {column + 1}: {_reason(exc)}") from None
    except RecursionError:
        raise MpdError(f"the MPD nests elements more than {MAX_DEPTH} deep; stopped reading") from None
    return root


def _reason(exc: ParseError) -> str:
    return str(exc).split(":", 1)[0]


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if _local(child.tag) == name]


def _child(element: Element, name: str) -> Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


class _Reader:
    """Attribute readers that note a bad value in `problems` and carry on with None."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def int(self, element: Element, name: str, default: int | None = None) -> int | None:
        raw = element.get(name)
        if raw is None:
            return default
        try:
            return int(raw.strip())
        except ValueError:
            self.problems.append(f"{_local(element.tag)}@{name}={raw[:40]!r} is not an integer")
            return default

    def duration(self, element: Element, name: str) -> float | None:
        raw = element.get(name)
        if raw is None:
            return None
        try:
            return parse_duration(raw)
        except ValueError as exc:
            self.problems.append(f"{_local(element.tag)}@{name}: {exc}")
            return None

    def datetime(self, element: Element, name: str) -> float | None:
        raw = element.get(name)
        if raw is None:
            return None
        try:
            return parse_datetime(raw)
        except (ValueError, OverflowError):
            self.problems.append(f"{_local(element.tag)}@{name}={raw[:40]!r} is not an xs:dateTime")
            return None

    def float(self, element: Element, name: str) -> float | None:
        raw = element.get(name)
        if raw is None:
            return None
        if raw.strip() == "INF":
            return float("inf")
        try:
            return float(raw)
        except ValueError:
            self.problems.append(f"{_local(element.tag)}@{name}={raw[:40]!r} is not a number")
            return None


def _base(element: Element, base: str) -> str:
    found = _child(element, "BaseURL")
    if found is None or not (found.text or "").strip():
        return base
    return urljoin(base, (found.text or "").strip())


_ADDRESSING = {"SegmentTemplate": "template", "SegmentList": "list", "SegmentBase": "base"}


def _addressing_raw(element: Element, read: _Reader) -> tuple[str, dict[str, Any]] | None:
    """The addressing an element declares itself: (kind, the attributes it sets)."""
    for name, kind in _ADDRESSING.items():
        node = _child(element, name)
        if node is None:
            continue
        raw: dict[str, Any] = {}
        for key, attr in (("timescale", "timescale"), ("start_number", "startNumber")):
            value = read.int(node, attr)
            if value is not None:
                raw[key] = value
        for key, attr in (("duration", "duration"), ("presentation_time_offset", "presentationTimeOffset")):
            value = read.int(node, attr)
            if value is not None:
                raw[key] = value
        offset = read.float(node, "availabilityTimeOffset")
        if offset is not None:
            raw["availability_time_offset"] = offset
        for key, attr in (("media", "media"), ("initialization", "initialization"), ("index_range", "indexRange")):
            if node.get(attr) is not None:
                raw[key] = node.get(attr)
        init = _child(node, "Initialization")
        if init is not None:
            if init.get("sourceURL") is not None:
                raw["initialization"] = init.get("sourceURL")
            if init.get("range") is not None:
                raw["initialization_range"] = init.get("range")
        timeline = _child(node, "SegmentTimeline")
        if timeline is not None:
            entries = []
            for entry in _children(timeline, "S"):
                d = read.int(entry, "d")
                if d is None or d <= 0:
                    read.problems.append(f"SegmentTimeline <S> without a positive @d ({entry.get('d')!r}): skipped")
                    continue
                entries.append(TimelineEntry(read.int(entry, "t"), d, read.int(entry, "r", 0) or 0))
            raw["timeline"] = tuple(entries)
        if kind == "list":
            raw["urls"] = tuple(
                SegmentUrl(url.get("media"), url.get("mediaRange")) for url in _children(node, "SegmentURL")
            )
        return kind, raw
    return None


def _merge(levels: list[tuple[str, dict[str, Any]] | None]) -> Addressing | None:
    """The most specific level's kind, with attributes inherited from the upper levels of the same kind."""
    declared = [level for level in levels if level is not None]
    if not declared:
        return None
    kind = declared[-1][0]
    merged: dict[str, Any] = {}
    for level_kind, raw in declared:
        if level_kind == kind:
            merged.update(raw)
    if merged.get("timescale", 1) <= 0:
        merged["timescale"] = 1
    return Addressing(kind=kind, **merged)  # type: ignore[arg-type]


def _content_type(adaptation: Element, representation: Element) -> str:
    declared = adaptation.get("contentType")
    if declared:
        return declared
    mime = representation.get("mimeType") or adaptation.get("mimeType") or ""
    if mime:
        word = mime.split("/", 1)[0]
        return (
            "text"
            if mime in ("application/ttml+xml", "application/mp4")
            and "stpp" in (representation.get("codecs") or adaptation.get("codecs") or "")
            else word
        )
    return "unknown"


def _period(
    element: Element, index: int, start: float, end: float | None, base: str, read: _Reader, mpd_level: Any
) -> Period:
    period_base = _base(element, base)
    period_addressing = _addressing_raw(element, read)
    representations: list[Representation] = []
    for position, adaptation in enumerate(_children(element, "AdaptationSet")):
        set_base = _base(adaptation, period_base)
        set_addressing = _addressing_raw(adaptation, read)
        for item in _children(adaptation, "Representation"):
            rep_id = item.get("id")
            if rep_id is None:
                read.problems.append(f"a Representation of AdaptationSet {position} in Period {index} has no @id")
                rep_id = f"{position}.{len(representations)}"
            addressing = _merge([mpd_level, period_addressing, set_addressing, _addressing_raw(item, read)])
            representations.append(
                Representation(
                    id=rep_id,
                    content_type=_content_type(adaptation, item),
                    adaptation=position,
                    base_url=_base(item, set_base),
                    addressing=addressing,
                    bandwidth=read.int(item, "bandwidth"),
                    width=read.int(item, "width", read.int(adaptation, "width")),
                    height=read.int(item, "height", read.int(adaptation, "height")),
                    codecs=item.get("codecs") or adaptation.get("codecs"),
                    lang=adaptation.get("lang"),
                )
            )
    return Period(index, element.get("id"), start, end, tuple(representations))


def parse_mpd(body: bytes, url: str) -> Mpd:
    """Parse an MPD fetched from `url` (relative BaseURLs resolve against it); MpdError when unusable."""
    root = _xml(body)
    if _local(root.tag) != "MPD":
        raise MpdError(f"the document is <{_local(root.tag)[:40]}>, not an MPD (<MPD> root element)")
    problems: list[str] = []
    read = _Reader(problems)
    kind = (root.get("type") or "static").strip()
    if kind not in ("static", "dynamic"):
        problems.append(f"MPD@type={kind[:40]!r} is neither static nor dynamic; read as static")
    mpd = Mpd(
        dynamic=kind == "dynamic",
        periods=(),
        availability_start_time=read.datetime(root, "availabilityStartTime"),
        publish_time=read.datetime(root, "publishTime"),
        minimum_update_period=read.duration(root, "minimumUpdatePeriod"),
        time_shift_buffer_depth=read.duration(root, "timeShiftBufferDepth"),
        media_presentation_duration=read.duration(root, "mediaPresentationDuration"),
        max_segment_duration=read.duration(root, "maxSegmentDuration"),
        suggested_presentation_delay=read.duration(root, "suggestedPresentationDelay"),
        utc_timing=tuple(
            UtcTiming((node.get("schemeIdUri") or "").strip(), (node.get("value") or "").strip())
            for node in _children(root, "UTCTiming")
        ),
        problems=problems,
    )
    location = _child(root, "Location")
    if location is not None and (location.text or "").strip():
        mpd.location = urljoin(url, (location.text or "").strip())
    if mpd.dynamic and mpd.availability_start_time is None:
        problems.append("a dynamic MPD without availabilityStartTime: the live edge cannot be placed in time")
    base = _base(root, url)
    elements = _children(root, "Period")
    if not elements:
        raise MpdError("the MPD has no <Period>: there is nothing to play")
    mpd_level = _addressing_raw(root, read)
    starts: list[float | None] = []
    previous_end: float | None = 0.0
    for element in elements:
        start = read.duration(element, "start")
        if start is None:
            start = previous_end
        duration = read.duration(element, "duration")
        starts.append(start)
        previous_end = None if start is None or duration is None else start + duration
    periods: list[Period] = []
    for index, element in enumerate(elements):
        start = starts[index]
        if start is None:
            problems.append(f"Period {index} has no @start and the previous one no @duration; placed at 0")
            start = 0.0
        duration = read.duration(element, "duration")
        end: float | None = None
        if index + 1 < len(elements) and starts[index + 1] is not None:
            end = starts[index + 1]
        elif duration is not None:
            end = start + duration
        elif mpd.media_presentation_duration is not None:
            end = mpd.media_presentation_duration
        periods.append(_period(element, index, start, end, base, read, mpd_level))
    mpd.periods = tuple(periods)
    return mpd
