"""The `hls` check type: is a live HLS stream really live, and does it show what viewers should see?

One run fetches the playlist (a master or a media playlist), then for a master the chosen variants and
their alternate renditions (EXT-X-MEDIA with a URI, I-frame playlists) concurrently; each media playlist is
validated (hls_playlist, in a worker thread when large), compared with the state saved by the previous
run of the same check and location (hls_state: stale_for, sequence_advanced, regressions, consistency,
LL-HLS parts), and its newest `segments` segments are downloaded and timed (hls_fetch; EXT-X-BYTERANGE
with `Range:`). An LL-HLS playlist that advertises CAN-BLOCK-RELOAD is asked for once more with a blocking
request (timed: `blocking_reload`): for the next part once the stream is known, where no answer within
3 x PART-TARGET is judged as a stall in the same run; for the next segment on a first run, a second look.
With `keys` every EXT-X-KEY URI is fetched once per change; with `content` the newest segment is decrypted if
need be and decoded in a worker thread (hls_content). Every playlist is judged on its own and the metrics
report the worst (hls_metrics), so one stale rendition is never hidden by others that advance.

On a first run with no saved state, freshness comes from a second look: `prober check` (no persistent
state), or a playlist without PROGRAM-DATE-TIME, samples the playlist again after one target duration
(and once more just past 1.5 target durations if nothing appeared), within the time the run has left,
and says so in the details. Under the daemon a first run with PROGRAM-DATE-TIME uses it instead.

Time comes from `ctx.clock` (wall-clock time and waiting; the Runner's, which tests replace with a fake
clock). The probe measures and reports; it never decides up or down (conditions do) and never touches
storage except through `ctx.state`. When nothing can be measured (the playlist is unreachable or
malformed) it raises ProbeError with the sentence the on-call engineer reads.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pydantic import Field

from prober.clock import sleep_until
from prober.config.conditions import MetricSpec
from prober.config.models import CheckBase, HttpUrl
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.hls.fetch import (
    FetchError,
    KeyResponse,
    PlaylistResponse,
    SegmentResponse,
    fetch_key,
    fetch_playlist,
    fetch_segment,
    new_session,
)
from prober.probes.hls.metrics import METRICS, VariantReport, summarize
from prober.probes.hls.playlist import (
    MasterPlaylist,
    MediaPlaylist,
    PlaylistError,
    Segment,
    Variant,
    parse_playlist,
)
from prober.probes.hls.state import Tracking, pdt_staleness, track, usable_state
from prober.probes.media.content import ContentOption, ContentSettings, UndecodableSegment, compare, decode_segment
from prober.probes.media.content import default_expect as content_expect
from prober.probes.media.pace import FRESH_FACTOR, is_fresh
from prober.probes.network import request_url
from prober.probes.registry import Export, SecretKind, register, standard_exports, url_target
from prober.redact import redact_url

__all__ = ["HlsCheck", "HlsProbe", "parse_off_loop"]

_STATE_VERSION = 1
_FORGET_AFTER = 86400.0
"""Variant state not refreshed for a day is dropped (a variant removed from the master)."""


class HlsCheck(CheckBase):
    type: Literal["hls"]
    url: HttpUrl
    variants: Literal["all", "first", "highest", "lowest"] = "all"
    renditions: Literal["all", "none"] = "all"
    max_playlists: int = Field(
        50,
        ge=1,
        le=1000,
        description="most variant and rendition playlists fetched per run of a master; the rest are skipped "
        "(variants first, then renditions) and named in details.notes",
    )
    segments: int = Field(1, ge=0, le=20, description="newest segments downloaded per variant")
    live: bool = True
    keys: bool = False
    content: ContentOption = Field(None, description="true, false or a block of content thresholds")
    headers: dict[str, str] = Field(default_factory=dict)
    verify_tls: bool = True

    @property
    def content_settings(self) -> ContentSettings | None:
        """The content-check thresholds, or None when content is off (`content: false`, or `segments: 0`)."""
        return None if self.segments <= 0 else self.content


class _VariantFailed(Exception):
    def __init__(self, sentence: str, status: int | None, *, timed_out: bool = False) -> None:
        super().__init__(sentence)
        self.status = status
        self.timed_out = timed_out


def _shown(uri: str) -> str:
    """A URI as results show it: secrets (tokens in the query, passwords) masked, relative URIs too."""
    if "://" in uri:
        return redact_url(uri)
    base = "http://h/"
    return redact_url(base + uri).removeprefix(base)


@dataclass(frozen=True, slots=True)
class _Look:
    """One fetch of a media playlist and the wall-clock time it was seen."""

    response: PlaylistResponse
    playlist: MediaPlaylist
    seen: float
    took: float = 0.0
    """Seconds the look took: download and parse (a huge playlist parses for a while)."""


def _choose(variants: tuple[Variant, ...], how: str) -> list[Variant]:
    if how == "all" or not variants:
        return list(variants)
    if how == "first":
        return [variants[0]]
    rated = [v for v in variants if v.bandwidth is not None] or list(variants)
    pick = max if how == "highest" else min
    return [pick(rated, key=lambda v: v.bandwidth or 0)]


_PARSE_INLINE = 16 * 1024
"""Playlists larger than this are parsed in a worker thread, so a huge one never holds the event loop (m3u8
reads about 1.4 MB a second here: 16 KiB is ~12 ms on the loop, about what handing it to a thread saves)."""
_PART_FACTOR = 3.0
"""LL-HLS: a new part must appear within 3 x PART-TARGET (RFC 8216bis 6.2.5.2 holds requests that long)."""
_PARSE_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _parse_gate() -> asyncio.Semaphore:
    """One large parse at a time per event loop. m3u8 holds about 50 bytes of dictionaries per byte of a
    playlist while it parses (a 4 MB playlist peaks at ~220 MB), and the GIL runs one parse at a time anyway:
    four variants of a huge master parsed one after another finish no later than parsed together, and
    use a quarter of the memory."""
    loop = asyncio.get_running_loop()
    gate = _PARSE_GATES.get(loop)
    if gate is None:
        gate = _PARSE_GATES[loop] = asyncio.Semaphore(1)
    return gate


async def parse_off_loop(body: bytes) -> MasterPlaylist | MediaPlaylist:
    """Parse a playlist; a large one in a worker thread (CPU in proportion to what the target sends), one at
    a time (see `_parse_gate`)."""
    if len(body) <= _PARSE_INLINE:
        return parse_playlist(body)
    async with _parse_gate():
        return await asyncio.to_thread(parse_playlist, body)


def _with_query(url: str, name: str, value: str) -> str:
    """`url` with one more query parameter (the LL-HLS delivery directives)."""
    parts = urlsplit(url)
    query = f"{parts.query}&{name}={value}" if parts.query else f"{name}={value}"
    return urlunsplit(parts._replace(query=query))


def _position(playlist: MediaPlaylist) -> tuple[int, int]:
    """Where an LL-HLS stream is: (segments so far, parts of the segment in progress)."""
    return playlist.end_sequence, playlist.parts_in_progress


def _merge(earlier: Tracking, later: Tracking) -> Tracking:
    """Two looks in one run: the later one continues from the earlier one's state."""
    advanced = earlier.advanced if earlier.advanced is None else bool(earlier.advanced or later.advanced)
    return Tracking(
        later.stale_for,
        advanced,
        earlier.regressed or later.regressed,
        earlier.inconsistencies + later.inconsistencies,
        earlier.notes + later.notes,
        later.state,
        later.part_stale_for if later.part_stale_for is not None else earlier.part_stale_for,
    )


@dataclass(frozen=True, slots=True)
class _Held:
    """An LL-HLS blocking reload: the answer, or none within the wait (the server held the request)."""

    directive: str
    """What was asked for: the next `part` or the next `segment`."""
    waited: float
    """Seconds until the answer came, or until the wait ran out."""
    answer: _Look | None
    moment: float
    """Wall-clock Unix seconds when it ended."""
    late: bool = False
    """No answer within the wait, yet a plain reload right after showed a new part: the origin holds blocking
    requests too long (players wait as long), but the stream has not stalled; `answer` is that reload."""


@dataclass(frozen=True, slots=True)
class _Target:
    """One playlist to judge: a variant, a rendition, or the single media playlist of a media URL."""

    key: str
    url: str
    label: str
    kind: str = "variant"
    bandwidth: int | None = None
    resolution: str | None = None
    prefixed: bool = True


@dataclass(slots=True)
class _Run:
    """One run of one hls check: the session, the budgets and the previous state."""

    check: HlsCheck
    ctx: ProbeContext
    session: aiohttp.ClientSession
    previous: Mapping[str, Any]
    keys: dict[str, KeyResponse] = field(default_factory=dict)
    """Keys fetched in this run, by URL (one fetch per key even when several variants share it)."""

    @property
    def reserve(self) -> float:
        """Seconds kept back at the end of the run to report what was found."""
        return min(1.0, 0.2 * self.ctx.timeout)

    def budget(self) -> float:
        return max(0.05, self.ctx.remaining() - self.reserve)

    def now(self) -> float:
        """Wall-clock Unix seconds by the run's clock (PROGRAM-DATE-TIME is compared with it)."""
        return self.ctx.clock.now().timestamp()

    async def playlist(
        self, url: str, label: str, *, budget: float | None = None
    ) -> tuple[PlaylistResponse, MasterPlaylist | MediaPlaylist]:
        shown = redact_url(url)
        began = time.perf_counter()
        try:
            response = await fetch_playlist(self.session, url, budget=budget or self.budget())
        except FetchError as exc:
            self.ctx.timeline.add("playlist", began, time.perf_counter(), str(exc), **{"url.full": shown})
            raise _VariantFailed(f"cannot fetch {label} {shown}: {exc}", None, timed_out=exc.timed_out) from None
        failed = None if response.status == 200 else f"HTTP {response.status}"
        attributes = {"url.full": shown, "http.request.method": "GET", "http.response.status_code": response.status}
        self.ctx.timeline.add("playlist", began, began + response.elapsed, failed, **attributes)
        if response.status != 200:
            raise _VariantFailed(f"{label} {shown} returned HTTP {response.status}", response.status)
        try:
            parsed = await parse_off_loop(response.body)
        except PlaylistError as exc:
            raise _VariantFailed(f"{label} {shown} is not a valid HLS playlist: {exc}", response.status) from None
        return response, parsed

    async def media(
        self, url: str, label: str, *, budget: float | None = None
    ) -> tuple[PlaylistResponse, MediaPlaylist]:
        response, parsed = await self.playlist(url, label, budget=budget)
        if not isinstance(parsed, MediaPlaylist):
            raise _VariantFailed(f"{label} {redact_url(url)} is a master playlist where a media playlist belongs", 200)
        return response, parsed

    async def look(self, url: str, label: str, *, budget: float | None = None) -> _Look:
        started = time.perf_counter()
        response, playlist = await self.media(url, label, budget=budget)
        return _Look(response, playlist, self.now(), time.perf_counter() - started)

    async def variant(self, target: _Target, first: _Look | None) -> VariantReport:
        report = VariantReport(name=target.key, bandwidth=target.bandwidth, kind=target.kind, prefixed=target.prefixed)
        url, label = target.url, target.label
        previous = self.previous.get(target.key)
        tracking: Tracking | None = None
        try:
            look = first if first is not None else await self.look(url, label)
            report.playlist_status = look.response.status
            pdt_stale = pdt_staleness(look.playlist, look.seen)
            first_run = not usable_state(previous)
            tracking = track(previous, look.playlist, look.seen, first_stale=pdt_stale)
            live = self.check.live and not look.playlist.endlist
            seen_advance = bool(tracking.advanced)
            if live and look.playlist.can_block_reload:
                # The next part once the stream is known (a stall shows within 3 x PART-TARGET); on a first
                # run the next segment, which doubles as the second look that judges freshness.
                held = await self.blocking_reload(url, label, look, part=not first_run)
                if held is not None:
                    report.blocking_reload = held.waited
                    blocked = held.answer
                    if blocked is None:
                        # RFC 8216bis 6.2.5.2: the server holds the request until what was asked for exists, so
                        # no answer is itself a look: the playlist was still the one read before, at this moment.
                        later = track(tracking.state, look.playlist, held.moment, parts=held.directive == "part")
                        tracking = _merge(tracking, later)
                        tracking.notes.append(
                            f"the blocking reload for the next {held.directive} got no answer within "
                            f"{held.waited:.1f}s: nothing new appeared meanwhile"
                        )
                    else:
                        later = track(tracking.state, blocked.playlist, blocked.seen)
                        seen_advance = seen_advance or bool(later.advanced)
                        tracking = _merge(tracking, later)
                        if first_run and later.advanced:
                            tracking.notes.append(
                                f"first run: the blocking reload saw a new segment appear after "
                                f"{blocked.response.elapsed:.1f}s; freshness from that"
                            )
                        if held.late:
                            tracking.notes.append(
                                f"the origin did not answer the blocking reload for the next part within "
                                f"{held.waited:.1f}s (3 x PART-TARGET), yet a plain reload showed a new part: it "
                                "holds _HLS_part requests too long, and players wait as long"
                            )
                        look = blocked
            if not look.playlist.segments and self.check.segments > 0 and live:
                raise _VariantFailed(
                    f"{label} {redact_url(url)} lists no segments (EXT-X-TARGETDURATION but no EXTINF): "
                    "players have nothing to play",
                    look.response.status,
                )
            settings = self.check.content_settings if target.kind in ("variant", "audio", "video") else None
            report.segments, report.durations, wanted = await self.download(
                look.playlist, look.response.url, keep=settings is not None
            )
            if self.check.keys:
                await self.check_keys(report, look, previous)
            if settings is not None and wanted:
                await self.content(report, look, wanted[0], settings, previous, target.resolution)
            # A first run looks again unless the blocking reload already saw a new segment appear.
            sample = first_run and live and not seen_advance and (not self.ctx.persistent_state or pdt_stale is None)
            if sample:
                tracking, look = await self.resample(url, label, look, tracking)
        except _VariantFailed as failure:
            report.error = str(failure)
            report.playlist_status = failure.status
            if tracking is not None:  # the playlist was read: the next run compares with this one, not an older
                report.state = {**tracking.state, **(report.state or {})}
            return report
        self.describe(report, look, tracking)
        return report

    async def blocking_reload(self, url: str, label: str, look: _Look, *, part: bool) -> _Held | None:
        """LL-HLS: ask for the playlist holding the next part (`_HLS_msn=N&_HLS_part=P`, when `part` and the
        playlist has parts) or the next segment (`_HLS_msn=N+1`), and time the answer.

        None when there was no time to ask or the request failed in a way that says nothing about the stream
        (a refused connection, a 404); a `_Held` without an answer when the server held the request for the
        whole wait or answered 503 (RFC 8216bis 6.2.5.2: what was asked for did not appear).
        """
        playlist = look.playlist
        if part and playlist.part_target is not None:
            # A new part is due within the part target; 3 x PART-TARGET without one is a stall. The allowance
            # covers the round trip, so a healthy stream is never cut off just before its part arrives.
            allowance = min(0.5, max(0.1, 2 * look.response.elapsed))
            budget = min(self.budget(), _PART_FACTOR * playlist.part_target + allowance)
            if budget < playlist.part_target:
                return None
            directive = _with_query(url, "_HLS_msn", str(playlist.end_sequence))
            directive, asked = _with_query(directive, "_HLS_part", str(playlist.parts_in_progress)), "part"
        else:
            target = playlist.target_duration
            # A new segment is due within 1.5 x the target duration; at most half the run's time is spent
            # waiting for it, so the segments can still be downloaded when the server holds on too long.
            budget = min(0.5 * self.budget(), FRESH_FACTOR * target + 0.5)
            if budget < 0.25 * target:
                return None
            directive, asked = _with_query(url, "_HLS_msn", str(playlist.end_sequence)), "segment"
        started = time.perf_counter()
        try:
            answer = await self.look(directive, label, budget=budget)
        except _VariantFailed as failure:
            if not (failure.timed_out or failure.status == 503):
                return None  # the blocking request is a measure of its own; the plain playlist was read
            waited, moment = time.perf_counter() - started, self.now()
            if asked == "part":
                # Confirm with a plain reload before calling it a stall: an origin that holds part requests
                # until the whole segment is done (it ignores _HLS_part) has parts that the wait did not see.
                try:
                    plain = await self.look(url, label)
                except _VariantFailed:
                    return _Held(asked, waited, None, moment)
                if _position(plain.playlist) > _position(playlist):
                    return _Held(asked, waited, plain, plain.seen, late=True)
            return _Held(asked, waited, None, moment)
        return _Held(asked, answer.response.elapsed, answer, answer.seen)

    def describe(self, report: VariantReport, look: _Look, tracking: Tracking) -> None:
        playlist, age = look.playlist, look.response.age
        report.playlist = playlist
        report.age = age
        stale = tracking.stale_for
        if age is not None:
            stale = age if stale is None else max(stale, age)
            if age > FRESH_FACTOR * playlist.target_duration:
                tracking.notes.append(f"the playlist was served from a cache copy {age:g}s old (Age header)")
        report.stale_for = stale
        report.fresh = is_fresh(stale, playlist.target_duration)
        report.advanced = tracking.advanced
        report.regressed = tracking.regressed
        report.inconsistencies = list(dict.fromkeys(tracking.inconsistencies))
        report.notes = [*report.notes, *tracking.notes]
        report.state = {**tracking.state, **(report.state or {})}
        if playlist.part_target is not None and tracking.part_stale_for is not None:
            report.part_stale_for = tracking.part_stale_for
            report.part_fresh = tracking.part_stale_for <= _PART_FACTOR * playlist.part_target
        newest = playlist.newest
        if newest is not None and newest.pdt is not None:
            report.pdt_drift = look.seen - (newest.pdt + newest.duration)
            if playlist.naive_pdt:
                report.notes.append("PROGRAM-DATE-TIME has no time zone; read as UTC")
        sliding = not playlist.endlist and playlist.playlist_type is None and playlist.media_sequence > 0
        if sliding and playlist.window < 3 * playlist.target_duration:
            report.short_window = True
            report.notes.append(
                f"the live window lists {playlist.window:g}s of media, less than 3 x the target duration "
                f"({3 * playlist.target_duration}s) that RFC 8216 6.2.2 requires"
            )
        if self.check.segments > 0 and not report.segments:
            report.notes.append("no segment to download: the playlist lists none, or only EXT-X-GAP segments")
        ignored = [seg.uri for seg in report.segments if seg.ignored_range]
        if ignored:
            report.notes.append(
                f"the server ignored the Range header for {ignored[0]} (EXT-X-BYTERANGE) and sent the whole file; "
                "only the range was read, but players on this origin download far more than they need"
            )

    async def download(
        self, playlist: MediaPlaylist, base: str, *, keep: bool = False
    ) -> tuple[list[SegmentResponse], list[float], list[Segment]]:
        """Download the newest `segments` non-GAP segments, newest first; GAP segments are skipped."""
        if self.check.segments <= 0:
            return [], [], []
        wanted: list[Segment] = []
        for segment in reversed(playlist.segments):
            if len(wanted) >= self.check.segments:
                break
            if not segment.gap:
                wanted.append(segment)
        responses = []
        for index, segment in enumerate(wanted):
            byterange = (segment.byterange.length, segment.byterange.offset) if segment.byterange else None
            began = time.perf_counter()
            fetched = await fetch_segment(
                self.session,
                _shown(segment.uri),
                urljoin(base, segment.uri),
                budget=self.budget(),
                byterange=byterange,
                keep=keep and index == 0,
            )
            responses.append(fetched)
            self._record_segment(fetched, urljoin(base, segment.uri), began)
        return responses, [segment.duration for segment in wanted], wanted

    def _record_segment(self, fetched: SegmentResponse, url: str, began: float) -> None:
        attributes: dict[str, Any] = {"url.full": redact_url(url), "prober.bytes": fetched.size}
        if fetched.status is not None:
            attributes.update({"http.request.method": "GET", "http.response.status_code": fetched.status})
        self.ctx.timeline.add("segment", began, began + fetched.elapsed, fetched.error, **attributes)

    async def key(self, url: str) -> KeyResponse:
        known = self.keys.get(url)
        if known is None:
            known = self.keys[url] = await fetch_key(self.session, url, budget=self.budget())
        return known

    async def check_keys(self, report: VariantReport, look: _Look, previous: Any) -> None:
        """`keys: true`: every EXT-X-KEY URI listed, fetched once per change (the result is kept in the state)."""
        saved = previous.get("keys") if isinstance(previous, Mapping) else None
        saved = saved if isinstance(saved, Mapping) else {}
        results: dict[str, list[Any]] = {}
        for key in dict.fromkeys(seg.key for seg in look.playlist.segments if seg.key is not None and seg.key.uri):
            assert key is not None and key.uri is not None
            url = urljoin(look.response.url, key.uri)
            if not url.startswith(("http://", "https://")):
                continue  # skd://, data: … are the DRM system's business
            shown = _shown(key.uri)
            before = saved.get(shown)
            if isinstance(before, list) and len(before) == 3 and before[2] == key.method:
                status, size = before[0], before[1]
            else:
                answer = await self.key(url)
                status, size = answer.status, answer.size
                if answer.error is not None:
                    report.failures.append(
                        f"cannot fetch the decryption key {shown}: {answer.error}; players cannot decrypt the segments"
                    )
            results[shown] = [status, size, key.method]
            report.key_statuses.append(status)
            if status is not None and status != 200:
                report.failures.append(
                    f"the decryption key {shown} returned HTTP {status}: players cannot decrypt the segments"
                )
            elif status == 200 and key.method == "AES-128" and size != 16:
                report.failures.append(
                    f"the decryption key {shown} is {size} bytes, not the 16 AES-128 needs: players cannot "
                    "decrypt the segments"
                )
        # Keep only keys players can use: a failing key (an error, or the wrong size) is asked for again next run.
        usable = {k: v for k, v in results.items() if v[0] == 200 and (v[2] != "AES-128" or v[1] == 16)}
        report.state = {**(report.state or {}), "keys": usable}

    async def content(
        self,
        report: VariantReport,
        look: _Look,
        segment: Segment,
        settings: ContentSettings,
        previous: Any,
        resolution: str | None,
    ) -> None:
        """Decode the newest downloaded segment (in a worker thread) and judge what it shows."""
        newest = report.segments[0] if report.segments else None
        if newest is None or not newest.ok or not newest.body:
            return
        data = newest.body
        base = look.response.url
        if segment.key is not None:
            data_or_none = await self.decrypt(report, segment, data, base)
            if data_or_none is None:
                return
            data = data_or_none
        if segment.init is not None:
            init_range = segment.init.byterange
            init = await fetch_segment(
                self.session,
                _shown(segment.init.uri),
                urljoin(base, segment.init.uri),
                budget=self.budget(),
                byterange=(init_range.length, init_range.offset) if init_range else None,
                keep=True,
            )
            if not init.ok or not init.body:
                report.failures.append(
                    f"the initialization section {init.uri} (EXT-X-MAP) could not be downloaded: "
                    f"{init.error or f'HTTP {init.status}'}"
                )
                return
            data = init.body + data
        try:
            decoded = await asyncio.to_thread(decode_segment, data, max_frames=settings.max_frames)
        except UndecodableSegment as exc:
            report.failures.append(f"segment {newest.uri} could not be decoded: {exc}")
            return
        old = previous.get("content") if isinstance(previous, Mapping) else None
        findings = compare(
            decoded,
            old if isinstance(old, Mapping) else None,
            settings=settings,
            now=self.now(),
            sequence=segment.sequence,
            discontinuity=segment.discontinuity,
            extinf=segment.duration,
            between=_between(look.playlist, old, segment),
            resolution=resolution,
        )
        report.content = findings.metrics
        report.notes.extend(findings.notes)
        report.state = {**(report.state or {}), "content": findings.state}

    async def decrypt(self, report: VariantReport, segment: Segment, data: bytes, base: str) -> bytes | None:
        key = segment.key
        assert key is not None
        if key.method != "AES-128" or key.uri is None:
            report.notes.append(f"content not checked: segments are encrypted with {key.method}")
            return None
        answer = await self.key(urljoin(base, key.uri))
        if answer.status != 200 or answer.size != 16:
            if not self.check.keys:
                report.failures.append(
                    f"the decryption key {_shown(key.uri)} "
                    + (f"returned HTTP {answer.status}" if answer.status else f"could not be fetched: {answer.error}")
                    + ": players cannot decrypt the segments"
                )
            return None
        iv = key.iv or segment.sequence.to_bytes(16, "big")
        try:
            decryptor = Cipher(algorithms.AES(answer.body), modes.CBC(iv)).decryptor()
            plain = decryptor.update(data) + decryptor.finalize()
            unpadder = padding.PKCS7(128).unpadder()
            return unpadder.update(plain) + unpadder.finalize()
        except ValueError:
            report.failures.append(
                f"segment {_shown(segment.uri)} does not decrypt with its AES-128 key {_shown(key.uri)}: "
                "players cannot play it"
            )
            return None

    async def resample(self, url: str, label: str, first: _Look, earlier: Tracking) -> tuple[Tracking, _Look]:
        """First run: look again after one target duration, then just past 1.5, until a segment appears.

        Without time for a useful second look (less than a quarter of the target duration left), the
        newest PROGRAM-DATE-TIME decides, as on a daemon's first run. When nothing appeared, a
        PROGRAM-DATE-TIME older than the time spent looking says how stale the stream really is.
        """
        target = first.playlist.target_duration
        took = max(first.response.elapsed, first.took)
        limit = self.now() + max(0.0, self.ctx.remaining() - self.reserve - 2 * took)
        if limit - first.seen < 0.25 * target:
            basis = "the newest PROGRAM-DATE-TIME" if earlier.stale_for is not None else "nothing (freshness unknown)"
            earlier.notes.append(f"first run: no time left within the timeout to look twice; freshness from {basis}")
            return earlier, first
        reasons, regressed, latest, look = list(earlier.inconsistencies), earlier.regressed, earlier, first
        start = track(None, first.playlist, first.seen)
        latest = Tracking(None, None, False, [], [], start.state)
        for moment in (first.seen + target, first.seen + (FRESH_FACTOR + 0.1) * target):
            moment = min(moment, limit)
            await sleep_until(self.ctx.clock, moment)
            look = await self.look(url, label)
            latest = track(latest.state, look.playlist, look.seen)
            reasons += latest.inconsistencies
            regressed = regressed or latest.regressed
            if latest.advanced or moment >= limit:
                break
        looked = look.seen - first.seen
        seen = "a new segment appeared" if latest.advanced else "no new segment appeared"
        note = f"first run: looked at the playlist again after {looked:.1f}s to judge freshness; {seen}"
        stale = latest.stale_for
        by_pdt = pdt_staleness(look.playlist, look.seen)
        if not latest.advanced and by_pdt is not None and stale is not None and by_pdt > stale:
            stale = by_pdt
            note += f"; the newest PROGRAM-DATE-TIME says it ended {by_pdt:.1f}s ago"
        elif not latest.advanced and looked <= FRESH_FACTOR * target:
            note += " (the timeout did not allow waiting 1.5 x the target duration, so staleness is a lower bound)"
        notes = [*earlier.notes, *latest.notes, note]
        state = dict(latest.state)
        if stale is not None and not latest.advanced:
            state["last_change"] = look.seen - stale
        return Tracking(stale, None, regressed, reasons, notes, state, latest.part_stale_for), look


def _between(playlist: MediaPlaylist, old: Any, segment: Segment) -> float | None:
    """EXTINF total of the segments between the previous run's decoded segment and `segment`, if all listed."""
    if not isinstance(old, Mapping) or not isinstance(old.get("sequence"), int):
        return None
    before = int(old["sequence"])
    if segment.sequence <= before:
        return 0.0
    first = before + 1 - playlist.media_sequence
    last = segment.sequence - playlist.media_sequence
    if first < 0 or last > len(playlist.segments):
        return None
    middle = playlist.segments[first:last]
    if any(item.discontinuity_before for item in (*middle, segment)):
        return None
    return sum(item.duration for item in middle)


def _fresh_iframes(reports: list[VariantReport]) -> None:
    """I-frame playlists gain entries as their variant's segments complete: judged by the variants' pace."""
    pace = max(
        (r.playlist.target_duration for r in reports if r.kind == "variant" and r.playlist is not None), default=0
    )
    for report in reports:
        if report.kind == "iframe" and report.playlist is not None and report.stale_for is not None:
            report.fresh = is_fresh(report.stale_for, max(pace, report.playlist.target_duration))


def _targets(check: HlsCheck, master: MasterPlaylist, base: str) -> tuple[list[_Target], str | None]:
    """The playlists one run fetches, at most `max_playlists` of them (a master listing 80,000 variants must
    not cost 80,000 requests and the loop's time), and a note naming what was left out."""
    targets = _all_targets(check, master, base)
    if len(targets) <= check.max_playlists:
        return targets, None
    kept = targets[: check.max_playlists]
    note = (
        f"the master lists {len(targets)} variant and rendition playlists; only the first {len(kept)} were checked "
        f"(max_playlists: {check.max_playlists})"
    )
    return kept, note


def _all_targets(check: HlsCheck, master: MasterPlaylist, base: str) -> list[_Target]:
    chosen = _choose(master.variants, check.variants)
    targets = [
        _Target(_shown(v.uri), urljoin(base, v.uri), "variant", "variant", v.bandwidth, v.resolution) for v in chosen
    ]
    if check.renditions == "none":
        return targets
    groups = {group for variant in chosen for group in variant.groups}
    iframes = [r for r in master.renditions if r.kind == "iframe"]
    iframe_variants = _choose(tuple(Variant(r.uri, r.bandwidth, r.resolution) for r in iframes), check.variants)
    picked = {v.uri for v in iframe_variants}
    for rendition in master.renditions:
        if rendition.kind == "iframe":
            if rendition.uri not in picked:
                continue
        elif check.variants != "all" and rendition.group not in groups:
            continue
        words = {"iframe": "I-frame playlist", "subtitles": "subtitles rendition"}
        label = words.get(rendition.kind, f"{rendition.kind} rendition")
        if rendition.name:
            label += f" {rendition.name!r}"
        targets.append(
            _Target(
                _shown(rendition.uri),
                urljoin(base, rendition.uri),
                label,
                rendition.kind,
                rendition.bandwidth,
                rendition.resolution,
            )
        )
    return targets


@register("hls")
class HlsProbe:
    type_name: ClassVar[str]
    Config = HlsCheck
    metrics: ClassVar[Mapping[str, MetricSpec]] = METRICS

    exports: ClassVar[Mapping[str, tuple[Export, ...]]] = standard_exports(
        "hls",
        metrics,
        rename={
            "playlist_status": "probe_hls_playlist_status_code",
            "segment_status": "probe_hls_segment_status_code",
            "stale_for": "probe_hls_stale_seconds",
            "part_stale_for": "probe_hls_part_stale_seconds",
            "frozen_for": "probe_hls_frozen_seconds",
            "key_status": "probe_hls_key_status_code",
            "audio_level": "probe_hls_audio_level_dbfs",
            # Gauges named without the suffixes Prometheus reserves for counters and summaries (_total, _count).
            "segment_count": "probe_hls_segments",
            "variants_total": "probe_hls_variants",
            "renditions_total": "probe_hls_renditions",
        },
    )
    headline: ClassVar[tuple[str, ...]] = ("stale_for",)
    secrets: ClassVar[Mapping[str, SecretKind]] = {"url": "url", "headers": "headers"}
    target = url_target

    def default_expect(self, check: HlsCheck) -> Mapping[str, Any]:
        expect: dict[str, Any] = {"playlist_status": 200}
        if check.live:
            expect.update(endlist=False)
        if check.segments > 0:
            expect.update(segment_status=200, segment_bytes="> 0")
        if check.live:
            expect.update(fresh=True, part_fresh="!= false")
        expect.update(variants_failed=0, renditions_failed=0, sequence_regressed=False, consistent=True)
        if check.keys:
            expect.update(key_status=200)
        settings = check.content_settings
        if settings is not None:
            expect.update(content_expect(settings))
        return expect

    async def run(self, check: HlsCheck, ctx: ProbeContext) -> Observation:
        saved = await ctx.state.load() or {}
        previous = saved.get("variants") if saved.get("version") == _STATE_VERSION else None
        previous = previous if isinstance(previous, dict) else {}
        async with new_session(verify_tls=check.verify_tls, headers=check.headers) as session:
            run = _Run(check, ctx, session, previous)
            started = time.perf_counter()
            try:
                top, parsed = await run.playlist(request_url(check.url, check.headers), "the playlist")
            except _VariantFailed as failure:
                metrics = {"playlist_status": failure.status, "variants_total": 1, "variants_failed": 1}
                raise ProbeError(str(failure), metrics=metrics) from None
            if isinstance(parsed, MasterPlaylist):
                targets, skipped = _targets(check, parsed, top.url)
                jobs = [run.variant(target, None) for target in targets]
                master_status: int | None = top.status
                broken: tuple[str, ...] = parsed.broken
            else:
                first = _Look(top, parsed, run.now(), time.perf_counter() - started)
                alone = _Target(_shown(check.url), check.url, "the playlist", prefixed=False)
                jobs = [run.variant(alone, first)]
                master_status, broken, skipped = None, (), None
            outcomes = await asyncio.gather(*jobs, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # a bug, not a finding: the runner reports it; every sibling has finished
        reports = [outcome for outcome in outcomes if isinstance(outcome, VariantReport)]
        _fresh_iframes(reports)
        metrics, details = summarize(
            reports,
            master_status=master_status,
            broken=broken,
            segments_wanted=check.segments,
            content_wanted=check.content_settings is not None,
        )
        if skipped:
            details["notes"] = [skipped, *details.get("notes", ())]
        variants = [report for report in reports if report.kind == "variant"]
        # Saved whatever is judged below: a run that read a playlist is what the next run compares with, so a
        # stream that dies on an undecodable segment still shows stale_for growing, not the last good run's view.
        await self._save(ctx, previous, reports)
        if variants and all(report.failed for report in variants):
            reason = variants[0].error or (variants[0].prefix + variants[0].failures[0])
            message = reason if len(variants) == 1 else f"all {len(variants)} variants failed; {reason}"
            raise ProbeError(message, metrics=metrics, details=details)
        if check.live and variants and all(r.playlist is not None and r.playlist.endlist for r in variants):
            ended = "the playlist has" if len(variants) == 1 else f"all {len(variants)} variants have"
            raise ProbeError(
                f"{ended} EXT-X-ENDLIST: the live stream has ended (for a VOD or event stream set live: false)",
                metrics=metrics,
                details=details,
            )
        return Observation(metrics=metrics, details=details)

    async def _save(self, ctx: ProbeContext, previous: Mapping[str, Any], reports: list[VariantReport]) -> None:
        now = ctx.clock.now().timestamp()
        variants = {
            key: value
            for key, value in previous.items()
            if isinstance(value, Mapping) and now - float(value.get("seen_at", 0) or 0) < _FORGET_AFTER
        }
        for report in reports:
            if report.state is not None:
                variants[report.name] = report.state
        await ctx.state.save({"version": _STATE_VERSION, "variants": variants})
