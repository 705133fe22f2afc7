"""The `hls` check type: is a live HLS stream really live? Segment freshness, sequences, PDT, downloads.

One run fetches the playlist (a master or a media playlist), then for a master the chosen variants
concurrently; each variant playlist is validated (hls_playlist), compared with the state saved by the
previous run of the same check and location (hls_state: stale_for, sequence_advanced, regressions,
consistency), and its newest `segments` segments are downloaded and timed (hls_fetch). Every variant
is judged on its own and the metrics report the worst (hls_metrics), so one stale variant is never
hidden by others that advance.

On a first run with no saved state, freshness comes from a second look: `prober check` (no persistent
state), or a playlist without PROGRAM-DATE-TIME, samples the playlist again after one target duration
(and once more just past 1.5 target durations if nothing appeared), within the time the run has left,
and says so in the details. Under the daemon a first run with PROGRAM-DATE-TIME uses it instead.

Time comes from the module-level `clock` (wall seconds and sleeping), which tests replace with a fake
clock. The probe measures and reports; it never decides up or down (conditions do) and never touches
storage except through `ctx.state`. When nothing can be measured (the playlist is unreachable or
malformed) it raises ProbeError with the sentence the on-call engineer reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol
from urllib.parse import urljoin

import aiohttp
from pydantic import Field, field_validator

from prober.conditions import MetricSpec
from prober.config_models import CheckBase
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.hls_fetch import (
    FetchError,
    PlaylistResponse,
    SegmentResponse,
    fetch_playlist,
    fetch_segment,
    new_session,
)
from prober.probes.hls_metrics import METRICS, VariantReport, summarize
from prober.probes.hls_playlist import MasterPlaylist, MediaPlaylist, PlaylistError, Variant, parse_playlist
from prober.probes.hls_state import FRESH_FACTOR, Tracking, is_fresh, pdt_staleness, track, usable_state
from prober.probes.registry import Export, SecretKind, register, standard_exports, url_target
from prober.redact import redact_url

__all__ = ["Clock", "HlsCheck", "HlsProbe", "SystemClock", "clock"]

_STATE_VERSION = 1
_FORGET_AFTER = 86400.0
"""Variant state not refreshed for a day is dropped (a variant removed from the master)."""


class Clock(Protocol):
    """Wall-clock time and sleeping, replaceable in tests."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


clock: Clock = SystemClock()


class HlsCheck(CheckBase):
    type: Literal["hls"]
    url: str
    variants: Literal["all", "first", "highest", "lowest"] = "all"
    segments: int = Field(1, ge=0, le=20, description="newest segments downloaded per variant")
    live: bool = True
    headers: dict[str, str] = Field(default_factory=dict)
    verify_tls: bool = True

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL of a playlist, got {value!r}")
        return value


class _VariantFailed(Exception):
    def __init__(self, sentence: str, status: int | None) -> None:
        super().__init__(sentence)
        self.status = status


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


def _choose(variants: tuple[Variant, ...], how: str) -> list[Variant]:
    if how == "all" or not variants:
        return list(variants)
    if how == "first":
        return [variants[0]]
    rated = [v for v in variants if v.bandwidth is not None] or list(variants)
    pick = max if how == "highest" else min
    return [pick(rated, key=lambda v: v.bandwidth or 0)]


@dataclass(slots=True)
class _Run:
    """One run of one hls check: the session, the budgets and the previous state."""

    check: HlsCheck
    ctx: ProbeContext
    session: aiohttp.ClientSession
    previous: Mapping[str, Any]

    @property
    def reserve(self) -> float:
        """Seconds kept back at the end of the run to report what was found."""
        return min(1.0, 0.2 * self.ctx.timeout)

    def budget(self) -> float:
        return max(0.05, self.ctx.remaining() - self.reserve)

    async def playlist(self, url: str, label: str) -> tuple[PlaylistResponse, MasterPlaylist | MediaPlaylist]:
        shown = redact_url(url)
        try:
            response = await fetch_playlist(self.session, url, budget=self.budget())
        except FetchError as exc:
            raise _VariantFailed(f"cannot fetch {label} {shown}: {exc}", None) from None
        if response.status != 200:
            raise _VariantFailed(f"{label} {shown} returned HTTP {response.status}", response.status)
        try:
            parsed = parse_playlist(response.body)
        except PlaylistError as exc:
            raise _VariantFailed(f"{label} {shown} is not a valid HLS playlist: {exc}", response.status) from None
        return response, parsed

    async def media(self, url: str, label: str) -> tuple[PlaylistResponse, MediaPlaylist]:
        response, parsed = await self.playlist(url, label)
        if not isinstance(parsed, MediaPlaylist):
            raise _VariantFailed(f"{label} {redact_url(url)} is a master playlist where a media playlist belongs", 200)
        return response, parsed

    async def look(self, url: str, label: str) -> _Look:
        response, playlist = await self.media(url, label)
        return _Look(response, playlist, clock.now())

    async def variant(
        self, key: str, url: str, label: str, bandwidth: int | None, first: _Look | None
    ) -> VariantReport:
        report = VariantReport(name=key, bandwidth=bandwidth)
        try:
            look = first if first is not None else await self.look(url, label)
            report.playlist_status = look.response.status
            previous = self.previous.get(key)
            pdt_stale = pdt_staleness(look.playlist, look.seen)
            sample = (
                not usable_state(previous)
                and self.check.live
                and not look.playlist.endlist
                and (not self.ctx.persistent_state or pdt_stale is None)
            )
            tracking = track(previous, look.playlist, look.seen, first_stale=pdt_stale)
            report.segments, report.durations = await self.download(look.playlist, look.response.url)
            if sample:
                tracking, look = await self.resample(url, label, look, pdt_stale)
        except _VariantFailed as failure:
            report.error = str(failure)
            report.playlist_status = failure.status
            return report
        self.describe(report, look, tracking)
        return report

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
        report.notes = tracking.notes
        report.state = tracking.state
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

    async def download(self, playlist: MediaPlaylist, base: str) -> tuple[list[SegmentResponse], list[float]]:
        """Download the newest `segments` non-GAP segments, newest first; GAP segments are skipped."""
        if self.check.segments <= 0:
            return [], []
        wanted = [segment for segment in playlist.segments if not segment.gap][-self.check.segments :]
        wanted.reverse()
        responses = [
            await fetch_segment(self.session, _shown(segment.uri), urljoin(base, segment.uri), budget=self.budget())
            for segment in wanted
        ]
        return responses, [segment.duration for segment in wanted]

    async def resample(self, url: str, label: str, first: _Look, pdt_stale: float | None) -> tuple[Tracking, _Look]:
        """First run: look again after one target duration, then just past 1.5, until a segment appears.

        Without time for a useful second look (less than a quarter of the target duration left), the
        newest PROGRAM-DATE-TIME decides, as on a daemon's first run.
        """
        target = first.playlist.target_duration
        limit = clock.now() + max(0.0, self.ctx.remaining() - self.reserve - 2 * first.response.elapsed)
        if limit - first.seen < 0.25 * target:
            tracking = track(None, first.playlist, first.seen, first_stale=pdt_stale)
            basis = "the newest PROGRAM-DATE-TIME" if pdt_stale is not None else "nothing (freshness unknown)"
            tracking.notes.append(f"first run: no time left within the timeout to look twice; freshness from {basis}")
            return tracking, first
        earlier = track(None, first.playlist, first.seen)
        reasons, regressed, latest, look = list(earlier.inconsistencies), False, earlier, first
        for moment in (first.seen + target, first.seen + (FRESH_FACTOR + 0.1) * target):
            moment = min(moment, limit)
            delay = moment - clock.now()
            if delay > 0:
                await clock.sleep(delay)
            look = await self.look(url, label)
            latest = track(latest.state, look.playlist, look.seen)
            reasons += latest.inconsistencies
            regressed = regressed or latest.regressed
            if latest.advanced or moment >= limit:
                break
        looked = look.seen - first.seen
        seen = "a new segment appeared" if latest.advanced else "no new segment appeared"
        note = f"first run: looked at the playlist again after {looked:.1f}s to judge freshness; {seen}"
        if not latest.advanced and looked <= FRESH_FACTOR * target:
            note += " (the timeout did not allow waiting 1.5 x the target duration, so staleness is a lower bound)"
        notes = [*latest.notes, note]
        return Tracking(latest.stale_for, None, regressed, reasons, notes, latest.state), look


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
        },
    )
    headline: ClassVar[tuple[str, ...]] = ("stale_for",)
    secrets: ClassVar[Mapping[str, SecretKind]] = {"url": "url", "headers": "headers"}
    target = url_target

    def default_expect(self, check: HlsCheck) -> Mapping[str, Any]:
        expect: dict[str, Any] = {"playlist_status": 200}
        if check.segments > 0:
            expect.update(segment_status=200, segment_bytes="> 0")
        if check.live:
            expect.update(fresh=True, endlist=False)
        expect.update(variants_failed=0, sequence_regressed=False, consistent=True)
        return expect

    async def run(self, check: HlsCheck, ctx: ProbeContext) -> Observation:
        saved = await ctx.state.load() or {}
        previous = saved.get("variants") if saved.get("version") == _STATE_VERSION else None
        previous = previous if isinstance(previous, dict) else {}
        async with new_session(verify_tls=check.verify_tls, headers=check.headers) as session:
            run = _Run(check, ctx, session, previous)
            try:
                top, parsed = await run.playlist(check.url, "the playlist")
            except _VariantFailed as failure:
                metrics = {"playlist_status": failure.status, "variants_total": 1, "variants_failed": 1}
                raise ProbeError(str(failure), metrics=metrics) from None
            if isinstance(parsed, MasterPlaylist):
                chosen = _choose(parsed.variants, check.variants)
                jobs = [
                    run.variant(_shown(v.uri), urljoin(top.url, v.uri), "variant", v.bandwidth, None) for v in chosen
                ]
                master_status: int | None = top.status
                broken: tuple[str, ...] = parsed.broken
            else:
                first = _Look(top, parsed, clock.now())
                jobs = [run.variant(_shown(check.url), check.url, "the playlist", None, first)]
                master_status, broken = None, ()
            outcomes = await asyncio.gather(*jobs, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # a bug, not a finding: the runner reports it; every sibling has finished
        reports = [outcome for outcome in outcomes if isinstance(outcome, VariantReport)]
        metrics, details = summarize(
            reports, master_status=master_status, broken=broken, segments_wanted=check.segments
        )
        if reports and all(report.error for report in reports):
            reason = reports[0].error or "every variant failed"
            message = reason if len(reports) == 1 else f"all {len(reports)} variants failed; {reason}"
            raise ProbeError(message, metrics=metrics, details=details)
        await self._save(ctx, previous, reports)
        return Observation(metrics=metrics, details=details)

    async def _save(self, ctx: ProbeContext, previous: Mapping[str, Any], reports: list[VariantReport]) -> None:
        now = clock.now()
        variants = {
            key: value
            for key, value in previous.items()
            if isinstance(value, Mapping) and now - float(value.get("seen_at", 0) or 0) < _FORGET_AFTER
        }
        for report in reports:
            if report.state is not None:
                variants[report.name] = report.state
        await ctx.state.save({"version": _STATE_VERSION, "variants": variants})
