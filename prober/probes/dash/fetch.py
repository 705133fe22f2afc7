"""Fetching for the dash check: the MPD (capped), segments (timed, `Range:` aware), existence checks and
UTCTiming clocks, each within its own time budget.

The MPD is read no further than `MPD_LIMIT` bytes (a 50 MB answer costs 8 MiB and a sentence); a body
that does not look like XML stops after its first chunk. A segment is read to the end and counted (kept
only when the content check decodes it). Failures are returned (segments) or raised as `FetchError`
with a sentence (the MPD, a clock). Never parses an MPD and never judges.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import aiohttp

from prober.probes.dash.mpd import MPD_LIMIT, UtcTiming, parse_datetime
from prober.probes.media.transport import age_seconds, fetch_reason, stream_session

__all__ = [
    "USER_AGENT",
    "FetchError",
    "Fetched",
    "MpdResponse",
    "exists",
    "fetch_mpd",
    "fetch_segment",
    "new_session",
    "server_clock",
]

USER_AGENT = "prober-dash/0.1"
SEGMENT_LIMIT = 64 * 1024 * 1024
KEEP_LIMIT = 32 * 1024 * 1024
_CHUNK = 64 * 1024
_NOT_XML = 8 * 1024
_CLOCK_LIMIT = 1024
HTTP_SCHEMES = {
    "urn:mpeg:dash:utc:http-iso:2014",
    "urn:mpeg:dash:utc:http-xsdate:2014",
    "urn:mpeg:dash:utc:http-iso:2012",
    "urn:mpeg:dash:utc:http-xsdate:2012",
}
HEAD_SCHEMES = {"urn:mpeg:dash:utc:http-head:2014", "urn:mpeg:dash:utc:http-head:2012"}
DIRECT_SCHEMES = {"urn:mpeg:dash:utc:direct:2014", "urn:mpeg:dash:utc:direct:2012"}


class FetchError(Exception):
    """No usable answer; `str(self)` is the reason (connection refused, timed out, too large)."""


@dataclass(frozen=True, slots=True)
class MpdResponse:
    status: int
    url: str
    """The final URL after redirects: relative BaseURLs resolve against it."""
    body: bytes
    elapsed: float
    age: float | None


@dataclass(frozen=True, slots=True)
class Fetched:
    """One segment request: failures are values (status None: no complete answer)."""

    url: str
    status: int | None
    size: int
    elapsed: float
    error: str | None = None
    ranged: bool = False
    body: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and (self.status == 200 or (self.ranged and self.status == 206))


async def fetch_mpd(session: aiohttp.ClientSession, url: str, *, budget: float) -> MpdResponse:
    """GET the MPD within `budget` seconds, at most MPD_LIMIT bytes; FetchError when no answer came."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(budget), session.get(url) as response:
            body = bytearray()
            sniffed = False
            if response.status == 200:
                async for chunk in response.content.iter_chunked(_CHUNK):
                    body += chunk
                    if not sniffed and len(body) >= _NOT_XML:
                        sniffed = True  # once: a body that does not start like XML is not read further
                        if not bytes(body[:_NOT_XML]).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
                            break
                    if len(body) > MPD_LIMIT:
                        raise FetchError(
                            f"the MPD is larger than {MPD_LIMIT // (1024 * 1024)} MiB; stopped reading there"
                        )
            return MpdResponse(
                response.status,
                str(response.url),
                bytes(body),
                time.perf_counter() - started,
                age_seconds(response.headers.get("Age")),
            )
    except FetchError:
        raise
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise FetchError(fetch_reason(exc, budget)) from None


async def fetch_segment(
    session: aiohttp.ClientSession,
    url: str,
    *,
    budget: float,
    byte_range: tuple[int, int] | None = None,
    keep: bool = False,
) -> Fetched:
    """GET a segment (or its byte range) within `budget` seconds, counting its bytes."""
    started = time.perf_counter()
    headers = {"Range": f"bytes={byte_range[0]}-{byte_range[1]}"} if byte_range else None
    size = 0
    kept = bytearray()
    status: int | None = None
    try:
        async with asyncio.timeout(budget), session.get(url, headers=headers) as response:
            status = response.status
            wanted = byte_range[1] - byte_range[0] + 1 if byte_range else None
            skip = byte_range[0] if byte_range and status == 200 else 0  # a server that ignored Range
            if status in (200, 206):
                async for chunk in response.content.iter_chunked(_CHUNK):
                    if skip:
                        dropped = min(skip, len(chunk))
                        chunk, skip = chunk[dropped:], skip - dropped
                        if not chunk:
                            continue
                    if wanted is not None and size + len(chunk) > wanted:
                        chunk = chunk[: wanted - size]
                    size += len(chunk)
                    if keep and len(kept) < KEEP_LIMIT:
                        kept += chunk[: KEEP_LIMIT - len(kept)]
                    if size >= SEGMENT_LIMIT or (wanted is not None and size >= wanted):
                        break
        return Fetched(
            url,
            status,
            size,
            time.perf_counter() - started,
            None,
            byte_range is not None,
            bytes(kept) if keep else None,
        )
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Fetched(
            url, None, size, time.perf_counter() - started, fetch_reason(exc, budget), byte_range is not None
        )


async def exists(session: aiohttp.ClientSession, url: str, *, budget: float) -> bool | None:
    """HEAD: does the segment exist (2xx)? None when no answer came."""
    try:
        async with asyncio.timeout(budget), session.head(url, allow_redirects=True) as response:
            return 200 <= response.status < 300
    except (TimeoutError, aiohttp.ClientError, OSError):
        return None


async def server_clock(
    session: aiohttp.ClientSession,
    timing: UtcTiming,
    base: str,
    *,
    budget: float,
    received: float,
    clock: Callable[[], float],
) -> float:
    """Seconds the UTCTiming source's clock is ahead of the local one (`clock`: Unix seconds now, by the run's
    clock; `received`: when the MPD arrived, for the direct scheme). FetchError with the reason."""
    if timing.scheme in DIRECT_SCHEMES:
        try:
            return parse_datetime(timing.value) - received
        except (ValueError, OverflowError):
            raise FetchError(f"its direct value {timing.value[:40]!r} is not an xs:dateTime") from None
    url = urljoin(base, timing.value.split(" ", 1)[0])
    started = time.perf_counter()
    try:
        async with asyncio.timeout(budget):
            if timing.scheme in HEAD_SCHEMES:
                async with session.head(url) as response:
                    text = response.headers.get("Date", "")
                    status = response.status
            else:
                async with session.get(url) as response:
                    status = response.status
                    text = (await response.content.read(_CLOCK_LIMIT)).decode("utf-8", "replace").strip()
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise FetchError(fetch_reason(exc, budget)) from None
    took = time.perf_counter() - started
    if status != 200:
        raise FetchError(f"{url} returned HTTP {status}")
    try:
        head = timing.scheme in HEAD_SCHEMES
        server = parsedate_to_datetime(text).timestamp() if head else parse_datetime(text)
    except (ValueError, TypeError, OverflowError):
        raise FetchError(f"{url} answered {text[:40]!r}, which is not a date and time") from None
    return server - (clock() - took / 2)


def new_session(*, verify_tls: bool, headers: dict[str, str]) -> aiohttp.ClientSession:
    """The run's session, with the DASH probe's User-Agent."""
    return stream_session(verify_tls=verify_tls, headers=headers, user_agent=USER_AGENT)
