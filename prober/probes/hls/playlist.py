"""Reading HLS playlists: the m3u8 package parses the tag grammar; this module checks what m3u8 lets through
and derives what it gets wrong or leaves out.

`parse_playlist(body)` turns the bytes of a playlist into a `MasterPlaylist` or a `MediaPlaylist` (small
frozen dataclasses holding only what the hls probe needs), or raises `PlaylistError` with one sentence saying
what is wrong and on which line: an empty body, an HTML page, no `#EXTM3U`, a byte order mark, a bad EXTINF,
TARGETDURATION, BYTERANGE or PROGRAM-DATE-TIME, an EXTINF with no URI (a truncated file), a media playlist
without a target duration, a master playlist without variants. Problems that do not stop a player but break
RFC 8216 rules inside one playlist (an EXTINF longer than the target duration, PROGRAM-DATE-TIME going
backwards) are returned in `MediaPlaylist.problems`.

Who does what:

- `m3u8.parse` is the parser of record: segments (EXTINF, BYTERANGE strings, KEY, MAP, PROGRAM-DATE-TIME,
  DISCONTINUITY, GAP, parts), variants (STREAM-INF), renditions (MEDIA), I-frame playlists, TARGETDURATION,
  MEDIA-SEQUENCE, DISCONTINUITY-SEQUENCE, ENDLIST, PLAYLIST-TYPE, PART-INF, SERVER-CONTROL, SKIP,
  I-FRAMES-ONLY, preload hints, rendition reports, dateranges. Its dictionaries are read directly: the
  `m3u8.M3U8` object model built on them doubles the time (4.6 s against 2.2 s for 300,000 segments) and
  adds nothing the probe reads.
- Derived here from m3u8's output, because m3u8 gets it wrong or leaves it out:
  - PROGRAM-DATE-TIME from EXTINF only: a segment's own tag, else the previous segment's PDT plus its
    EXTINF. m3u8 6.x's running `current_program_date_time` also advances for every EXT-X-PART, so a
    segment whose part tags the origin has dropped (RFC 8216bis allows it) gets another PDT than the same
    segment with them, and a run-to-run comparison sees "PDT moved backwards".
  - byte ranges: m3u8 keeps `<length>[@<offset>]` as text; an omitted offset continues where the previous
    range of the same URI ended (RFC 8216 4.3.2.2), and a length under 1 byte is an error.
  - media sequence numbers (EXT-X-SKIP counted), discontinuity numbers, the window, parts in progress,
    whether the body is a master, a media playlist or both (an error), and the RFC problems.
- Read from the raw text, only where m3u8 loses the information (each place says why):
  - `_check_start`: an empty body, an HTML page, a BOM, a blank first line, bytes that are not UTF-8
    (m3u8 strips the text and reads anything).
  - `_suspect`: lines m3u8 drops without a trace (a URI with no EXTINF before it, an EXTINF followed by
    another EXTINF, which overwrites it), noticed by comparing cheap counts of the text with m3u8's output.
  - `_broken_stream_infs`: an EXT-X-STREAM-INF with no URI (m3u8 lets the next one overwrite it).
  - `_first_error`: line numbers for the error sentence (m3u8 keeps none, and raises bare ValueErrors and
    KeyErrors). It rescans the lines only when m3u8 raised or its output shows something wrong, so a
    healthy playlist is read once, by m3u8.
- `_guard`, a custom-tag hook (m3u8's own extension point) installed only where it matters: m3u8's key list
  is quadratic (a 1 MB playlist rotating 20,000 keys: 12 s of CPU), and an I-frame entry without a URI makes
  m3u8 raise where players ignore the entry.

Pure: it never does I/O, never reads a clock, and never judges freshness or compares runs (hls_state does).
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import m3u8

__all__ = [
    "MAX_LINES",
    "ByteRange",
    "InitSection",
    "Key",
    "MasterPlaylist",
    "MediaPlaylist",
    "PlaylistError",
    "Rendition",
    "Segment",
    "Variant",
    "format_pdt",
    "parse_playlist",
    "snippet",
]

_BOM = b"\xef\xbb\xbf"
_DECIMAL_INTEGER = re.compile(r"^\d+$")
_DECIMAL_FLOAT = re.compile(r"^(\d+(\.\d*)?|\.\d+)$")
_BYTERANGE = re.compile(r"^(\d+)(?:@(\d+))?$")
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')
_URI_LINE = re.compile(r"^[ \t]*[^#\s]", re.M)
"""A line that is neither blank nor a tag or comment: a segment or variant URI."""
_HTML_HINTS = ("<!doctype", "<html", "<head", "<body", "<?xml", "<title")
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
_PDT_BACKWARDS_TOLERANCE = 0.001
_MAX_PROBLEMS = 20
"""At most this many RFC 8216 problems are listed per playlist (a 300k-segment playlist can have 300k)."""
_MANY_KEYS = 64
MAX_LINES = 200_000
"""A playlist with more lines is refused before parsing: parsing costs about 1 CPU-second per 190,000 lines
here, in a worker thread that shares the interpreter lock with the event loop, so this bounds what one target
can cost per run. A 24-hour window of 2 s segments, each with a PROGRAM-DATE-TIME, is about 130,000 lines."""
"""Above this many EXT-X-KEY tags m3u8's key list gets a set beside it (see `_Keys`, `_guard`)."""


class PlaylistError(ValueError):
    """The body is not a usable HLS playlist; `str(self)` says what is wrong, for the result's error."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    """EXT-X-BYTERANGE (or a MAP's BYTERANGE): `length` bytes starting at `offset`."""

    length: int
    offset: int

    def header(self) -> str:
        """The HTTP Range header value asking for exactly these bytes."""
        return f"bytes={self.offset}-{self.offset + self.length - 1}"


@dataclass(frozen=True, slots=True)
class Key:
    """EXT-X-KEY in effect for a segment (METHOD=NONE is no key)."""

    method: str
    uri: str | None
    iv: bytes | None


@dataclass(frozen=True, slots=True)
class InitSection:
    """EXT-X-MAP: the initialization section (fMP4 `init.mp4`) that precedes the segments."""

    uri: str
    byterange: ByteRange | None


@dataclass(frozen=True, slots=True)
class Segment:
    """One complete media segment (an LL-HLS segment still in progress, with parts but no URI, is not one)."""

    sequence: int
    uri: str
    duration: float
    discontinuity: int
    """The discontinuity number: EXT-X-DISCONTINUITY-SEQUENCE plus the EXT-X-DISCONTINUITY tags up to here."""
    pdt: float | None
    """Start of the segment by EXT-X-PROGRAM-DATE-TIME, as Unix seconds (a naive date-time is UTC): its own
    tag, else the previous segment's PDT plus the previous EXTINF (parts never count)."""
    gap: bool
    byterange: ByteRange | None = None
    key: Key | None = None
    init: InitSection | None = None
    discontinuity_before: bool = False
    """An EXT-X-DISCONTINUITY tag precedes this segment."""


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
    window: float = 0.0
    """Seconds of media listed."""
    part_target: float | None = None
    """EXT-X-PART-INF PART-TARGET: set when the playlist is LL-HLS."""
    parts_in_progress: int = 0
    """EXT-X-PART tags after the newest complete segment (the segment being written)."""
    can_block_reload: bool = False
    iframes_only: bool = False

    @property
    def end_sequence(self) -> int:
        """Media sequence number the next new segment will get: grows exactly when a segment appears."""
        return self.media_sequence + len(self.segments)

    @property
    def newest(self) -> Segment | None:
        return self.segments[-1] if self.segments else None

    @property
    def low_latency(self) -> bool:
        return self.part_target is not None


@dataclass(frozen=True, slots=True)
class Variant:
    uri: str
    bandwidth: int | None
    resolution: str | None
    groups: tuple[str, ...] = ()
    """GROUP-IDs of the renditions it uses (AUDIO, VIDEO, SUBTITLES attributes)."""


@dataclass(frozen=True, slots=True)
class Rendition:
    """An alternate rendition with its own playlist: EXT-X-MEDIA with a URI, or an I-frame playlist."""

    kind: str
    """`audio`, `video`, `subtitles` (EXT-X-MEDIA TYPE, lower case) or `iframe`."""
    uri: str
    group: str | None
    name: str | None
    bandwidth: int | None = None
    resolution: str | None = None


@dataclass(frozen=True, slots=True)
class MasterPlaylist:
    variants: tuple[Variant, ...]
    broken: tuple[str, ...]
    """Sentences for EXT-X-STREAM-INF entries a player cannot use (no URI line after them)."""
    renditions: tuple[Rendition, ...] = ()


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
        stripped = body.lstrip()
        if stripped.split(b"\n", 1)[0].rstrip(b"\r \t") == b"#EXTM3U":
            lead = "blank lines or spaces" if body[: len(body) - len(stripped)].count(b"\n") else "spaces"
            raise PlaylistError(
                f"the playlist starts with {lead} before #EXTM3U, which must be its very first line "
                "(RFC 8216 §4.3.1.1); strict players refuse it"
            )
        raise PlaylistError(
            f"the body is not an HLS playlist: it does not start with #EXTM3U (it starts with {snippet(body[:60])})"
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlaylistError(
            f"the playlist is not UTF-8 text: byte 0x{body[exc.start]:02x} at offset {exc.start} cannot be decoded"
        ) from None


def _attributes(value: str) -> dict[str, str]:
    """An attribute list (`BANDWIDTH=800000,CODECS="avc1,mp4a"`) with quotes removed."""
    return {name: raw[1:-1] if raw.startswith('"') else raw.strip() for name, raw in _ATTRIBUTE.findall(value)}


def _pdt(value: str, lineno: int) -> tuple[float, bool]:
    text = value.strip()
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise PlaylistError(f"line {lineno}: EXT-X-PROGRAM-DATE-TIME {text!r} is not an ISO 8601 date-time") from None
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=UTC).timestamp(), True
    return stamp.timestamp(), False


def _byterange(value: str, where: str, tag: str) -> tuple[int, int | None]:
    """`<length>[@<offset>]` (m3u8 keeps it as text) as numbers; `where` starts the sentence ("line 6: ")."""
    match = _BYTERANGE.match(value.strip())
    if match is None:
        raise PlaylistError(f"{where}{tag} {value.strip()!r} is not <length>[@<offset>]")
    length = int(match.group(1))
    if length < 1:
        raise PlaylistError(f"{where}{tag} length must be at least 1 byte, got {length}")
    return length, int(match.group(2)) if match.group(2) is not None else None


def _iv(value: str | None) -> bytes | None:
    if not value or not value.lower().startswith("0x"):
        return None
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        return None
    return raw.rjust(16, b"\0")[-16:]


class _Keys(list[Any]):
    """m3u8's list of the keys seen, with a set beside it so that `in` costs O(1).

    `m3u8.parse` asks `key not in data["keys"]` for every EXT-X-KEY tag and `None not in data["keys"]` for
    every unencrypted segment. On a list that is quadratic: a 1 MB playlist rotating 20,000 keys took 12 s
    of CPU, a 4 MiB one minutes. m3u8 only appends to the list and tests membership, so a list that keeps a
    set of the same entries gives the same answers in constant time.
    """

    def __init__(self, items: list[Any]) -> None:
        super().__init__()
        self._seen: set[Any] = set()
        for item in items:
            self.append(item)

    def __contains__(self, item: object) -> bool:
        return _frozen(item) in self._seen

    def append(self, item: Any, /) -> None:
        self._seen.add(_frozen(item))
        super().append(item)


def _frozen(item: object) -> object:
    return tuple(sorted(item.items())) if isinstance(item, dict) else item


def _guard(line: str, lineno: int, data: dict[str, Any], state: dict[str, Any]) -> bool:
    """m3u8 custom-tag hook, called before m3u8 reads each tag line; it parses nothing itself.

    It swaps in `_Keys`, and hides from m3u8 an EXT-X-I-FRAME-STREAM-INF without a URI, on which m3u8 raises
    KeyError: players ignore such an entry, so a master that lists one still plays (True: line handled).
    """
    if not isinstance(data["keys"], _Keys):
        data["keys"] = _Keys(data["keys"])
    return line.startswith("#EXT-X-I-FRAME-STREAM-INF") and "URI=" not in line


def _read(text: str) -> dict[str, Any]:
    """`m3u8.parse`, with m3u8's bare exceptions turned into a sentence naming the line. The hook costs a
    call per tag line, so it is installed only for playlists it can matter to (masters are small)."""
    guarded = text.count("#EXT-X-KEY") > _MANY_KEYS or "#EXT-X-I-FRAME-STREAM-INF" in text
    try:
        data: dict[str, Any] = m3u8.parse(text, custom_tags_parser=_guard if guarded else None)
    except Exception as exc:  # m3u8 raises ValueError, KeyError, TypeError, ... on values it cannot read
        raise (_located(text) or _unreadable(text, exc)) from None
    return data


def _unreadable(text: str, exc: Exception) -> PlaylistError:
    """m3u8 raised on something `_first_error` does not check (an attribute list it cannot split, an
    EXT-X-PART without DURATION, ...). m3u8 keeps no line numbers: parse again (error path only) with a hook
    that notes each tag line, to name the line it stopped at."""
    where: list[tuple[int, str]] = [(0, "")]

    def note(line: str, lineno: int, data: dict[str, Any], state: dict[str, Any]) -> bool:
        where[0] = (lineno, line)
        return _guard(line, lineno, data, state)

    with contextlib.suppress(Exception):
        m3u8.parse(text, custom_tags_parser=note)
    lineno, line = where[0]
    return PlaylistError(
        f"line {lineno}: {snippet(line)} is malformed; the m3u8 parser stopped there ({type(exc).__name__}: {exc})"
    )


def _located(text: str) -> PlaylistError | None:
    sentence = _first_error(text)
    return PlaylistError(sentence) if sentence is not None else None


def _first_error(text: str) -> str | None:
    """The first line m3u8 cannot read, reads too leniently, or drops, as a sentence naming the line.

    Raw lines because m3u8's output has no line numbers. Called only when m3u8 raised or its output shows
    a problem, so it never costs a healthy playlist anything. Follows m3u8's rules for which URI belongs to
    what: an EXTINF or EXT-X-STREAM-INF waits for its URI across other tags.
    """
    pending_extinf: int | None = None
    pending_stream_inf = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line[0] == "#":
            tag, _, value = line.partition(":")
            where = f"line {lineno}: "
            try:
                if tag == "#EXTINF":
                    if pending_extinf is not None:
                        return (
                            f"{where}an EXTINF follows the EXTINF on line {pending_extinf} with no segment URI "
                            "between them"
                        )
                    number = value.split(",", 1)[0].strip()
                    if not _DECIMAL_FLOAT.match(number):
                        return f"{where}EXTINF duration {number!r} is not a number of seconds"
                    pending_extinf = lineno
                elif tag == "#EXT-X-STREAM-INF":
                    pending_stream_inf = True
                elif tag == "#EXT-X-TARGETDURATION":
                    if not _DECIMAL_INTEGER.match(value.strip()):
                        return f"{where}EXT-X-TARGETDURATION must be a whole number of seconds, got {value.strip()!r}"
                    if int(value) < 1:
                        return f"{where}EXT-X-TARGETDURATION must be at least 1, got {value.strip()}"
                elif tag in ("#EXT-X-MEDIA-SEQUENCE", "#EXT-X-DISCONTINUITY-SEQUENCE"):
                    if not _DECIMAL_INTEGER.match(value.strip()):
                        return f"{where}{tag[1:]} must be a whole number, got {value.strip()!r}"
                elif tag == "#EXT-X-PROGRAM-DATE-TIME":
                    _pdt(value, lineno)
                elif tag == "#EXT-X-BYTERANGE":
                    _byterange(value, where, "EXT-X-BYTERANGE")
                elif tag == "#EXT-X-MAP" and "BYTERANGE" in (attributes := _attributes(value)):
                    _byterange(attributes["BYTERANGE"], where, "EXT-X-MAP BYTERANGE")
            except PlaylistError as exc:
                return str(exc)
        elif pending_extinf is not None:
            pending_extinf = None
        elif pending_stream_inf:
            pending_stream_inf = False
        else:
            return f"line {lineno}: {snippet(line)} is a URI with no EXTINF or EXT-X-STREAM-INF before it"
    if pending_extinf is not None:
        return f"the playlist ends with an EXTINF (line {pending_extinf}) that has no segment URI: it looks truncated"
    return None


def _suspect(data: dict[str, Any], text: str) -> str | None:
    """What m3u8 dropped without a trace, noticed by comparing its output with cheap counts of the raw text
    (str.count, one regex: ~45 ms on 4 MB): a URI line m3u8 attached to nothing, an EXTINF whose duration a
    second EXTINF overwrote, an EXTINF left waiting for its URI at the end. `_first_error` then names the
    line; the sentence here is the fallback when the counts were fooled (a '#EXTINF' inside a URI)."""
    segments = data["segments"]
    partial = segments[-1] if segments and "uri" not in segments[-1] else None
    complete = len(segments) - (partial is not None)
    if partial is not None and "duration" in partial:
        return "the playlist ends with an EXTINF that has no segment URI: it looks truncated"
    if text.count("#EXTINF") > complete:
        return "an EXTINF is followed by another EXTINF with no segment URI between them"
    if len(_URI_LINE.findall(text)) > complete + len(data["playlists"]):
        return "a URI line has no EXTINF or EXT-X-STREAM-INF before it"
    return None


_MASTER_TAGS = (
    ("playlists", "EXT-X-STREAM-INF"),
    ("media", "EXT-X-MEDIA"),
    ("iframe_playlists", "EXT-X-I-FRAME-STREAM-INF"),
    ("image_playlists", "EXT-X-IMAGE-STREAM-INF"),
    ("session_data", "EXT-X-SESSION-DATA"),
    ("session_keys", "EXT-X-SESSION-KEY"),
    ("content_steering", "EXT-X-CONTENT-STEERING"),
)
_MEDIA_TAGS = (
    ("segments", "EXTINF"),
    ("targetduration", "EXT-X-TARGETDURATION"),
    ("discontinuity_sequence", "EXT-X-DISCONTINUITY-SEQUENCE"),
    ("is_endlist", "EXT-X-ENDLIST"),
    ("playlist_type", "EXT-X-PLAYLIST-TYPE"),
    ("part_inf", "EXT-X-PART-INF"),
    ("is_i_frames_only", "EXT-X-I-FRAMES-ONLY"),
)


def _kinds(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(the master tags, the media tags) m3u8 found, by name: it reads both kinds into one dictionary."""
    master = [tag for key, tag in _MASTER_TAGS if data.get(key)]
    if data["is_variant"] and not master:
        master.append("EXT-X-STREAM-INF")
    media = [tag for key, tag in _MEDIA_TAGS if data.get(key) or (key in _PRESENT_KEYS and key in data)]
    return master, media


_PRESENT_KEYS = frozenset({"targetduration", "discontinuity_sequence"})
"""Keys m3u8 sets only when the tag is there, whatever its value (a TARGETDURATION of 0 is still one)."""
_M3U8_TAGS = sorted(
    {value[1:] for value in vars(m3u8.protocol).values() if isinstance(value, str) and value.startswith("#EXT")},
    key=len,
    reverse=True,
)
_MISREAD = re.compile(
    r"\n#(?=(?!(?:{names})(?=[:\s]|$))(?:{names})[^:\s])".format(names="|".join(map(re.escape, _M3U8_TAGS)))
)
"""The start of a tag line whose name only begins like a tag m3u8 knows (`#EXT-X-MEDIA-READY:`): m3u8 matches
tags by prefix and would read it as that tag (EXT-X-MEDIA). RFC 8216 4.1: clients ignore unknown tags."""


def _ignore_unknown_tags(text: str) -> str:
    """Turn tags m3u8 would misread by prefix into comments (`# EXT-X-MEDIA-READY:...`: no `#EXT` left for the
    raw-text counts of `_suspect` either), line numbers unchanged. One regex search over the text (~5 ms per
    MB); the text is copied only when such a tag is there."""
    return _MISREAD.sub("\n# ", text) if _MISREAD.search(text) else text


def parse_playlist(body: bytes) -> MasterPlaylist | MediaPlaylist:
    """Validate and parse one playlist body; raise PlaylistError saying what is wrong."""
    lines = body.count(b"\n") + 1  # a C scan, ~2 ms for 4 MB: before anything costs in proportion to lines
    if lines > MAX_LINES:
        raise PlaylistError(
            f"it has {lines:,} lines, more than the {MAX_LINES:,} prober parses (a 24-hour window of "
            "2 s segments is about 130,000); stopped before parsing it"
        )
    text = _ignore_unknown_tags(_check_start(body))
    data = _read(text)
    suspect = _suspect(data, text)
    if suspect is not None:
        raise _located(text) or PlaylistError(suspect)
    master, media = _kinds(data)
    if master and media:
        raise PlaylistError(
            f"the playlist mixes master tags ({', '.join(master)}) with media tags ({', '.join(media)}): "
            "a playlist is one or the other (RFC 8216 4.1)"
        )
    if master:
        return _master(data, text)
    return _media(data, text)


def _epoch(stamp: datetime) -> tuple[float, bool]:
    """Unix seconds and whether the date-time was naive (read as UTC)."""
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=UTC).timestamp(), True
    return stamp.timestamp(), False


def _key(raw: dict[str, Any]) -> Key | None:
    method = str(raw.get("method") or "NONE").upper()
    return None if method == "NONE" else Key(method, raw.get("uri"), _iv(raw.get("iv")))


def _init(raw: dict[str, Any], text: str) -> InitSection | None:
    uri = raw.get("uri")
    if not uri:
        return None
    byterange = None
    if raw.get("byterange") is not None:
        try:
            length, offset = _byterange(str(raw["byterange"]), "", "EXT-X-MAP BYTERANGE")
        except PlaylistError as exc:
            raise _located(text) or exc from None
        byterange = ByteRange(length, offset or 0)
    return InitSection(str(uri), byterange)


def _media(data: dict[str, Any], text: str) -> MediaPlaylist:
    target = data.get("targetduration")
    if target is None:
        raise PlaylistError(
            "the media playlist has no EXT-X-TARGETDURATION tag, which RFC 8216 requires: it may be truncated"
        )
    media_sequence = int(data.get("media_sequence") or 0)
    disc_sequence = int(data.get("discontinuity_sequence") or 0)
    if target < 1 or media_sequence < 0 or disc_sequence < 0:  # m3u8's int() takes "-1" and "0"
        raise _located(text) or PlaylistError(
            f"EXT-X-TARGETDURATION {target}, MEDIA-SEQUENCE {media_sequence} or DISCONTINUITY-SEQUENCE "
            f"{disc_sequence} is out of range"
        )
    raw_segments: list[dict[str, Any]] = data["segments"]
    partial = raw_segments[-1] if raw_segments and "uri" not in raw_segments[-1] else None
    if partial is not None:  # LL-HLS: the segment being written has parts and no URI yet; it is not a segment
        raw_segments = raw_segments[:-1]
    first_number = media_sequence + int((data.get("skip") or {}).get("skipped_segments") or 0)
    segments: list[Segment] = []
    problems: list[str] = []
    keys: dict[int, Key | None] = {}
    inits: dict[int, InitSection | None] = {}
    disc_number = disc_sequence
    naive = False
    running_pdt: float | None = None
    previous_pdt: float | None = None
    previous_end: tuple[str, int] | None = None
    window = 0.0
    for index, raw in enumerate(raw_segments):
        sequence = first_number + index
        uri = raw["uri"]
        duration = raw.get("duration")
        if duration is None or not 0 <= duration < math.inf:  # m3u8's float() takes "nan", "-1", "inf"
            raise _located(text) or PlaylistError(f"segment {sequence} has no usable EXTINF duration")
        discontinuity = bool(raw.get("discontinuity"))
        if discontinuity:
            disc_number += 1
        own = raw.get("program_date_time")
        if own is not None:
            pdt: float | None
            pdt, naive_here = _epoch(own)
            naive = naive or naive_here
        else:
            pdt = running_pdt
        if pdt is not None and previous_pdt is not None and pdt < previous_pdt - _PDT_BACKWARDS_TOLERANCE:
            problems.append(
                f"PROGRAM-DATE-TIME goes backwards at segment {sequence}: {format_pdt(pdt)} is before the "
                f"previous segment's {format_pdt(previous_pdt)}"
            )
        byterange = None
        if raw.get("byterange") is not None:
            try:
                length, offset = _byterange(raw["byterange"], "", "EXT-X-BYTERANGE")
            except PlaylistError as exc:
                raise _located(text) or exc from None
            if offset is None:
                offset = previous_end[1] if previous_end is not None and previous_end[0] == uri else 0
            byterange = ByteRange(length, offset)
            previous_end = (uri, offset + length)
        else:
            previous_end = None
        raw_key = raw.get("key")
        key = None
        if raw_key is not None:  # m3u8 shares one dictionary among the segments a key covers: one Key each
            if id(raw_key) not in keys:
                keys[id(raw_key)] = _key(raw_key)
            key = keys[id(raw_key)]
        raw_init = raw.get("init_section")
        init = None
        if raw_init is not None:  # likewise one dictionary per EXT-X-MAP
            if id(raw_init) not in inits:
                inits[id(raw_init)] = _init(raw_init, text)
            init = inits[id(raw_init)]
        segments.append(
            Segment(
                sequence, uri, duration, disc_number, pdt, bool(raw.get("gap_tag")), byterange, key, init, discontinuity
            )
        )
        window += duration
        if pdt is not None:
            previous_pdt = pdt
            running_pdt = pdt + duration  # EXTINF only: parts never move the program date-time
        else:
            running_pdt = None
        if int(duration + 0.5) > target:
            problems.append(
                f"segment {sequence} lasts {duration:g}s (EXTINF), longer than the target duration {target}s"
            )
    problems.sort(key=_problem_order)
    if len(problems) > _MAX_PROBLEMS:
        more = len(problems) - _MAX_PROBLEMS
        problems[_MAX_PROBLEMS:] = [f"... and {more} more like these"]
    part_target = (data.get("part_inf") or {}).get("part_target")
    control = data.get("server_control") or {}
    return MediaPlaylist(
        target_duration=target,
        media_sequence=media_sequence,
        discontinuity_sequence=disc_sequence,
        segments=tuple(segments),
        endlist=bool(data.get("is_endlist")),
        playlist_type=str(data["playlist_type"]).upper() if data.get("playlist_type") else None,
        naive_pdt=naive,
        problems=tuple(problems),
        window=window,
        part_target=float(part_target) if part_target is not None else None,
        parts_in_progress=len(partial.get("parts") or ()) if partial is not None else 0,
        can_block_reload=str(control.get("can_block_reload", "")).upper() == "YES",
        iframes_only=bool(data.get("is_i_frames_only")),
    )


def _problem_order(problem: str) -> int:
    digits = re.search(r"segment (\d+)", problem)
    return int(digits.group(1)) if digits else 0


def _broken_stream_infs(text: str) -> list[str]:
    """EXT-X-STREAM-INF tags with no URI line after them, by line. Raw lines: m3u8 lets the next STREAM-INF
    overwrite one still waiting for its URI, and forgets one at the end, leaving no trace in its output."""
    broken: list[int] = []
    pending: int | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#EXT-X-STREAM-INF"):
            if pending is not None:
                broken.append(pending)
            pending = lineno
        elif line and line[0] != "#":
            pending = None
    if pending is not None:
        broken.append(pending)
    return [f"the EXT-X-STREAM-INF on line {lineno} has no URI line after it" for lineno in broken]


def _master(data: dict[str, Any], text: str) -> MasterPlaylist:
    playlists: list[dict[str, Any]] = data["playlists"]
    broken = _broken_stream_infs(text) if text.count("#EXT-X-STREAM-INF") > len(playlists) else []
    variants: list[Variant] = []
    seen: set[str] = set()
    for entry in playlists:
        uri = str(entry.get("uri") or "")
        if not uri or uri in seen:
            continue
        seen.add(uri)
        info = entry.get("stream_info") or {}
        groups = tuple(str(info[name]) for name in ("audio", "video", "subtitles") if info.get(name))
        variants.append(Variant(uri, info.get("bandwidth"), str(info.get("resolution") or "") or None, groups))
    renditions: list[Rendition] = []
    for media in data["media"]:
        uri = str(media.get("uri") or "").strip()
        if uri:
            kind = str(media.get("type") or "").lower() or "media"
            renditions.append(Rendition(kind, uri, media.get("group_id"), media.get("name")))
    for iframe in data["iframe_playlists"]:
        uri = str(iframe.get("uri") or "").strip()
        info = iframe.get("iframe_stream_info") or {}
        if uri:
            resolution = str(info.get("resolution") or "") or None
            renditions.append(Rendition("iframe", uri, None, None, info.get("bandwidth"), resolution))
    if not variants and not broken:
        count = f"{len(renditions)} rendition" + ("s" if len(renditions) != 1 else "")
        extra = f"; it lists {count}, but a player needs a variant to start" if renditions else ""
        raise PlaylistError(f"the master playlist lists no variants (no EXT-X-STREAM-INF with a URI){extra}")
    others: list[Rendition] = []
    for rendition in renditions:
        if rendition.uri not in seen:
            seen.add(rendition.uri)
            others.append(rendition)
    return MasterPlaylist(tuple(variants), tuple(broken), tuple(others))
