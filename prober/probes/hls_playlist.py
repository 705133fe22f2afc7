"""Reading HLS playlists: strict checks of what the m3u8 parser lets through, then m3u8's parser.

`parse_playlist(body)` turns the bytes of a playlist into a `MasterPlaylist` or a `MediaPlaylist`
(small frozen dataclasses holding only what the hls probe needs), or raises `PlaylistError` with one
sentence saying what is wrong and on which line: an empty body, an HTML page, no `#EXTM3U`, a byte order
mark, a bad EXTINF, TARGETDURATION or PROGRAM-DATE-TIME, an EXTINF with no URI (a truncated file), a
media playlist without a target duration. Problems that do not stop a player but break RFC 8216 rules
inside one playlist (an EXTINF longer than the target duration, PROGRAM-DATE-TIME going backwards) are
returned in `MediaPlaylist.problems`.

Pure: it never does I/O, never reads a clock, and never judges freshness or compares runs (hls_state does).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import m3u8

__all__ = [
    "MasterPlaylist",
    "MediaPlaylist",
    "PlaylistError",
    "Segment",
    "Variant",
    "format_pdt",
    "parse_playlist",
    "snippet",
]

_BOM = b"\xef\xbb\xbf"
_DECIMAL_INTEGER = re.compile(r"^\d+$")
_DECIMAL_FLOAT = re.compile(r"^(\d+(\.\d*)?|\.\d+)$")
_HTML_HINTS = ("<!doctype", "<html", "<head", "<body", "<?xml", "<title")
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
_PDT_BACKWARDS_TOLERANCE = 0.001


class PlaylistError(ValueError):
    """The body is not a usable HLS playlist; `str(self)` says what is wrong, for the result's error."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One complete media segment (an LL-HLS segment still in progress, with parts but no URI, is not one)."""

    sequence: int
    uri: str
    duration: float
    discontinuity: int
    """The discontinuity number: EXT-X-DISCONTINUITY-SEQUENCE plus the EXT-X-DISCONTINUITY tags up to here."""
    pdt: float | None
    """Start of the segment by EXT-X-PROGRAM-DATE-TIME, as Unix seconds (a naive date-time is UTC)."""
    gap: bool


@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    target_duration: int
    media_sequence: int
    discontinuity_sequence: int
    segments: tuple[Segment, ...]
    endlist: bool
    playlist_type: str | None
    naive_pdt: bool
    """At least one PROGRAM-DATE-TIME had no time zone (read as UTC)."""
    problems: tuple[str, ...]
    """RFC 8216 rules broken inside this one playlist, as sentences."""

    @property
    def end_sequence(self) -> int:
        """Media sequence number the next new segment will get: grows exactly when a segment appears."""
        return self.media_sequence + len(self.segments)

    @property
    def window(self) -> float:
        """Seconds of media listed."""
        return sum(segment.duration for segment in self.segments)

    @property
    def newest(self) -> Segment | None:
        return self.segments[-1] if self.segments else None


@dataclass(frozen=True, slots=True)
class Variant:
    uri: str
    bandwidth: int | None
    resolution: str | None


@dataclass(frozen=True, slots=True)
class MasterPlaylist:
    variants: tuple[Variant, ...]
    broken: tuple[str, ...]
    """Sentences for EXT-X-STREAM-INF entries a player cannot use (no URI line after them)."""


def snippet(data: bytes | str, limit: int = 60) -> str:
    """The start of a body as a short quoted string for an error message."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def format_pdt(moment: float) -> str:
    """Unix seconds as the ISO 8601 UTC form playlists use, for messages."""
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _check_start(body: bytes) -> str:
    if not body.strip():
        raise PlaylistError("the playlist is empty" + (" (only whitespace)" if body else " (0 bytes)"))
    if body.startswith(_BOM):
        raise PlaylistError(
            "the playlist starts with a UTF-8 byte order mark (BOM), which RFC 8216 §4.1 forbids; players may refuse it"
        )
    head = body[:512].lstrip().lower()
    looks_like_a_page = any(hint.encode() in head for hint in _HTML_HINTS) or head.startswith(b"<")
    if looks_like_a_page and not body.startswith(b"#EXTM3U"):
        title = _TITLE.search(body[:8192])
        shown = snippet(title.group(1)) if title else snippet(body[:120])
        raise PlaylistError(f"the server sent an HTML or XML page, not an HLS playlist: {shown}")
    first_line = body.split(b"\n", 1)[0].rstrip(b"\r \t")
    if first_line != b"#EXTM3U":
        raise PlaylistError(
            f"the body is not an HLS playlist: it does not start with #EXTM3U (it starts with {snippet(body[:60])})"
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlaylistError(
            f"the playlist is not UTF-8 text: byte 0x{body[exc.start]:02x} at offset {exc.start} cannot be decoded"
        ) from None


def _parse_pdt(value: str, lineno: int) -> None:
    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        raise PlaylistError(
            f"line {lineno}: EXT-X-PROGRAM-DATE-TIME {value.strip()!r} is not an ISO 8601 date-time"
        ) from None


@dataclass(slots=True)
class _Scan:
    master: bool = False
    media: bool = False
    target_duration: bool = False


def _scan(text: str) -> tuple[_Scan, list[str]]:
    """Line-by-line checks the m3u8 parser is lenient about; returns what kind of playlist it is."""
    scan = _Scan()
    broken: list[str] = []
    pending_extinf: int | None = None
    pending_stream_inf: int | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#EXT"):
            tag, _, value = line.partition(":")
            if pending_stream_inf is not None:
                broken.append(f"the EXT-X-STREAM-INF on line {pending_stream_inf} has no URI line after it")
                pending_stream_inf = None
            if tag == "#EXTINF":
                if pending_extinf is not None:
                    raise PlaylistError(
                        f"line {lineno}: an EXTINF follows the EXTINF on line {pending_extinf} with no segment URI "
                        "between them"
                    )
                duration = value.split(",", 1)[0].strip()
                if not _DECIMAL_FLOAT.match(duration):
                    raise PlaylistError(f"line {lineno}: EXTINF duration {duration!r} is not a number of seconds")
                pending_extinf = lineno
                scan.media = True
            elif tag == "#EXT-X-TARGETDURATION":
                if not _DECIMAL_INTEGER.match(value.strip()):
                    raise PlaylistError(
                        f"line {lineno}: EXT-X-TARGETDURATION must be a whole number of seconds, got {value.strip()!r}"
                    )
                if int(value) < 1:
                    raise PlaylistError(f"line {lineno}: EXT-X-TARGETDURATION must be at least 1, got {value.strip()}")
                scan.target_duration = True
                scan.media = True
            elif tag in ("#EXT-X-MEDIA-SEQUENCE", "#EXT-X-DISCONTINUITY-SEQUENCE"):
                if not _DECIMAL_INTEGER.match(value.strip()):
                    raise PlaylistError(f"line {lineno}: {tag[1:]} must be a whole number, got {value.strip()!r}")
                scan.media = True
            elif tag == "#EXT-X-PROGRAM-DATE-TIME":
                _parse_pdt(value, lineno)
            elif tag == "#EXT-X-STREAM-INF":
                pending_stream_inf = lineno
                scan.master = True
        elif line.startswith("#"):
            continue
        elif pending_extinf is not None:
            pending_extinf = None
        elif pending_stream_inf is not None:
            pending_stream_inf = None
        else:
            raise PlaylistError(f"line {lineno}: {snippet(line)} is a URI with no EXTINF or EXT-X-STREAM-INF before it")
    if pending_extinf is not None:
        raise PlaylistError(
            f"the playlist ends with an EXTINF (line {pending_extinf}) that has no segment URI: it looks truncated"
        )
    if pending_stream_inf is not None:
        broken.append(f"the EXT-X-STREAM-INF on line {pending_stream_inf} has no URI line after it")
    if scan.master and scan.media:
        raise PlaylistError(
            "the playlist mixes master tags (EXT-X-STREAM-INF) with media tags (EXTINF, TARGETDURATION)"
        )
    if not scan.master and not scan.target_duration:
        raise PlaylistError(
            "the media playlist has no EXT-X-TARGETDURATION tag, which RFC 8216 requires: it may be truncated"
        )
    return scan, broken


def _epoch(value: Any) -> tuple[float | None, bool]:
    if not isinstance(value, datetime):
        return None, False
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC).timestamp(), True
    return value.timestamp(), False


def _media(data: dict[str, Any]) -> MediaPlaylist:
    target = int(data.get("targetduration") or 0)
    sequence = int(data.get("media_sequence") or 0)
    disc_sequence = int(data.get("discontinuity_sequence") or 0)
    discontinuity = disc_sequence
    segments: list[Segment] = []
    problems: list[str] = []
    naive = False
    previous_pdt: float | None = None
    for raw in data.get("segments") or []:
        uri = raw.get("uri")
        if not uri:
            continue  # LL-HLS: a segment in progress has parts and no URI yet
        msn = sequence + len(segments)
        if raw.get("discontinuity"):
            discontinuity += 1
        duration = float(raw.get("duration") or 0.0)
        pdt, is_naive = _epoch(raw.get("current_program_date_time"))
        naive = naive or is_naive
        if math.floor(duration + 0.5) > target:
            problems.append(f"segment {msn} lasts {duration:g}s (EXTINF), longer than the target duration {target}s")
        if pdt is not None and previous_pdt is not None and pdt < previous_pdt - _PDT_BACKWARDS_TOLERANCE:
            problems.append(
                f"PROGRAM-DATE-TIME goes backwards at segment {msn}: {format_pdt(pdt)} is before the previous "
                f"segment's {format_pdt(previous_pdt)}"
            )
        previous_pdt = pdt if pdt is not None else previous_pdt
        segments.append(Segment(msn, str(uri), duration, discontinuity, pdt, bool(raw.get("gap_tag"))))
    return MediaPlaylist(
        target_duration=target,
        media_sequence=sequence,
        discontinuity_sequence=disc_sequence,
        segments=tuple(segments),
        endlist=bool(data.get("is_endlist")),
        playlist_type=(str(data["playlist_type"]).upper() if data.get("playlist_type") else None),
        naive_pdt=naive,
        problems=tuple(problems),
    )


def _master(data: dict[str, Any], broken: list[str]) -> MasterPlaylist:
    variants: list[Variant] = []
    seen: set[str] = set()
    for raw in data.get("playlists") or []:
        uri = str(raw.get("uri") or "").strip()
        if not uri or uri in seen:
            continue
        seen.add(uri)
        info = raw.get("stream_info") or {}
        bandwidth = info.get("bandwidth")
        resolution = info.get("resolution")
        variants.append(
            Variant(uri, int(bandwidth) if bandwidth is not None else None, str(resolution) if resolution else None)
        )
    if not variants and not broken:
        raise PlaylistError("the master playlist lists no variants (no EXT-X-STREAM-INF with a URI)")
    return MasterPlaylist(tuple(variants), tuple(broken))


def parse_playlist(body: bytes) -> MasterPlaylist | MediaPlaylist:
    """Validate and parse one playlist body; raise PlaylistError saying what is wrong."""
    text = _check_start(body)
    scan, broken = _scan(text)
    try:
        data = m3u8.parse(text)
    except Exception as exc:  # m3u8 raises bare ValueErrors, KeyErrors, ... on odd input
        raise PlaylistError(f"the playlist cannot be parsed: {type(exc).__name__}: {exc}") from None
    if scan.master:
        return _master(data, broken)
    return _media(data)
