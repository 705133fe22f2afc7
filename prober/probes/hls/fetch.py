"""Fetching HLS playlists and segments with aiohttp: capped bodies, time budgets, download timings.

A playlist body is read in chunks and no further than 4 MiB; a body that does not start like a playlist
(`#EXTM3U`) stops being read after its first chunk, so a 10 MB garbage or HTML response costs a few KiB.
A segment is read to the end and thrown away chunk by chunk (counted; kept only when the content check
asks for the newest one, up to `KEEP_LIMIT`). A segment with EXT-X-BYTERANGE is asked for with `Range:`;
206, or 200 with exactly the range, is success, and a server that ignores Range (200 with the whole file)
is read only for the range's length (from its offset when the bytes are kept for the content check) and
flagged (`ignored_range`). Every request has its
own budget (the time the run has left), so a hanging server becomes a sentence for that one playlist or
segment instead of a timeout of the whole run. gzip is undone by aiohttp; the final URL after redirects
is returned so relative URIs resolve against it.

It never parses playlists (hls_playlist does) and never judges what it fetched.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from prober.probes.media.transport import age_seconds, fetch_reason, stream_session

__all__ = [
    "PLAYLIST_LIMIT",
    "SEGMENT_LIMIT",
    "FetchError",
    "KeyResponse",
    "PlaylistResponse",
    "SegmentResponse",
    "fetch_key",
    "fetch_playlist",
    "fetch_segment",
    "new_session",
]

PLAYLIST_LIMIT = 4 * 1024 * 1024
SEGMENT_LIMIT = 64 * 1024 * 1024
KEEP_LIMIT = 32 * 1024 * 1024
"""A segment kept for the content check is at most this large (the rest is counted, not kept)."""
_KEY_LIMIT = 4096
_NOT_A_PLAYLIST_LIMIT = 8 * 1024
_CHUNK = 64 * 1024
USER_AGENT = "prober-hls/0.1"


class FetchError(Exception):
    """A request that got no usable answer; `str(self)` is the reason (connection refused, timed out)."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.timed_out = timed_out
        """No answer within the budget: for an LL-HLS blocking reload, evidence that nothing new appeared."""


@dataclass(frozen=True, slots=True)
class PlaylistResponse:
    status: int
    url: str
    """The final URL after redirects: relative URIs in the body resolve against it."""
    body: bytes
    """Read only when the status is 200."""
    age: float | None
    """The HTTP `Age` header in seconds (a CDN copy's age), None when absent or unreadable."""
    elapsed: float


@dataclass(frozen=True, slots=True)
class SegmentResponse:
    uri: str
    status: int | None
    """None when no complete answer came (network error, timeout while downloading)."""
    size: int
    elapsed: float
    error: str | None
    ranged: bool = False
    """Asked for with a Range header (EXT-X-BYTERANGE)."""
    ignored_range: bool = False
    """The server answered a Range request with 200 and more than the range (the whole file)."""
    body: bytes | None = None
    """The bytes, when asked to keep them (the content check's newest segment)."""

    @property
    def ok(self) -> bool:
        """The segment arrived: 200, or 206 to a Range request."""
        return self.error is None and (self.status == 200 or (self.ranged and self.status == 206))


@dataclass(frozen=True, slots=True)
class KeyResponse:
    status: int | None
    size: int
    body: bytes
    error: str | None


async def _read_playlist_body(response: aiohttp.ClientResponse) -> bytes:
    buffer = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        buffer += chunk
        if len(buffer) >= 7 and not buffer.startswith(b"#EXTM3U") and len(buffer) >= _NOT_A_PLAYLIST_LIMIT:
            break  # not a playlist: enough to say what it is, stop reading
        if len(buffer) > PLAYLIST_LIMIT:
            raise FetchError(f"the playlist is larger than {PLAYLIST_LIMIT // (1024 * 1024)} MiB; stopped reading")
    if len(buffer) >= 7 and not buffer.startswith(b"#EXTM3U"):
        del buffer[_NOT_A_PLAYLIST_LIMIT:]
    return bytes(buffer)


async def fetch_playlist(session: aiohttp.ClientSession, url: str, *, budget: float) -> PlaylistResponse:
    """GET a playlist within `budget` seconds; raise FetchError when no answer came."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(budget), session.get(url) as response:
            body = await _read_playlist_body(response) if response.status == 200 else b""
            return PlaylistResponse(
                status=response.status,
                url=str(response.url),
                body=body,
                age=age_seconds(response.headers.get("Age")),
                elapsed=time.perf_counter() - started,
            )
    except FetchError:
        raise
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise FetchError(fetch_reason(exc, budget), timed_out=isinstance(exc, TimeoutError)) from None


async def fetch_segment(
    session: aiohttp.ClientSession,
    uri: str,
    url: str,
    *,
    budget: float,
    byterange: tuple[int, int] | None = None,
    keep: bool = False,
) -> SegmentResponse:
    """GET a segment within `budget` seconds, counting its bytes; failures are returned, not raised.

    `byterange` is (length, offset): only those bytes are asked for and read. `keep` returns the bytes.
    """
    started = time.perf_counter()
    status: int | None = None
    size = 0
    ignored = False
    kept = bytearray()
    headers = None
    if byterange is not None:
        length, offset = byterange
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
    try:
        async with asyncio.timeout(budget), session.get(url, headers=headers) as response:
            status = response.status
            wanted: int | None = None
            skip = 0
            if byterange is not None and status == 200:
                whole = response.content_length
                length, offset = byterange
                if whole is None or whole != length:
                    # The whole resource came: read no more than the range's length. Only the content check,
                    # which needs the right bytes, reads up to the range's offset first.
                    ignored = True
                    skip, wanted = (offset if keep else 0), length
            elif byterange is not None and status == 206:
                wanted = byterange[0]
            if status in (200, 206):
                async for chunk in response.content.iter_chunked(_CHUNK):
                    if skip:
                        dropped = min(skip, len(chunk))
                        chunk, skip = chunk[dropped:], skip - dropped
                        if not chunk:
                            continue
                    if wanted is not None and size + len(chunk) >= wanted:
                        chunk = chunk[: wanted - size]
                    size += len(chunk)
                    if keep and len(kept) < KEEP_LIMIT:
                        kept += chunk[: KEEP_LIMIT - len(kept)]
                    if size >= SEGMENT_LIMIT or (wanted is not None and size >= wanted):
                        break
        body = bytes(kept) if keep else None
        return SegmentResponse(
            uri, status, size, time.perf_counter() - started, None, byterange is not None, ignored, body
        )
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return SegmentResponse(
            uri, None, size, time.perf_counter() - started, fetch_reason(exc, budget), byterange is not None, ignored
        )


async def fetch_key(session: aiohttp.ClientSession, url: str, *, budget: float) -> KeyResponse:
    """GET a decryption key (EXT-X-KEY URI) within `budget` seconds; failures are returned, not raised."""
    try:
        async with asyncio.timeout(budget), session.get(url) as response:
            body = b""
            if response.status == 200:
                body = await response.content.read(_KEY_LIMIT + 1)
            return KeyResponse(response.status, len(body), body[:_KEY_LIMIT], None)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return KeyResponse(None, 0, b"", fetch_reason(exc, budget))


def new_session(*, verify_tls: bool, headers: dict[str, str]) -> aiohttp.ClientSession:
    """The run's session, with the HLS probe's User-Agent."""
    return stream_session(verify_tls=verify_tls, headers=headers, user_agent=USER_AGENT)
