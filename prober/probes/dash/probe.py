"""The `dash` check type: is an MPEG-DASH stream live, on time, and showing what viewers should see?

One run fetches the MPD (`dash.fetch`, capped), parses it (`dash.mpd`, hostile XML refused), reads the
UTCTiming clock it names, picks the Representations to judge (every AdaptationSet's, by
`representations`, at most `max_representations`; the current Period of a live MPD, every Period of a
static one) and judges each concurrently: the segments it announces (`dash.segments`), the newest one
downloaded and timed (with its initialization segment), its end placed on the wall clock
(availabilityStartTime + Period@start + timeline: `live_edge_drift`), compared with the previous run's
state (`dash.state`: freshness, a timeline going backwards, segment numbers changing meaning) and, with
`content`, decoded in a worker thread and judged by the shared media judging (`prober.probes.media`).

A `$Number$` template without timeline announces segments by the clock alone, so the newest one due is
asked for; when it is missing, the newest that exists is found with a bounded search (HEAD requests),
and that one is the live edge. On a first run with no saved state the MPD is looked at again after one
segment duration (and just past 1.5) to see a new segment appear, within the time the run has left.

Measures only: when nothing can be measured (the MPD unreachable or unusable) it raises ProbeError with
the sentence; everything else is a metric for the conditions to judge. Never touches storage except
through `ctx.state`.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import aiohttp
from pydantic import Field

from prober.clock import sleep_until
from prober.config.conditions import MetricSpec
from prober.config.models import CheckBase, Duration, HttpUrl
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.dash.fetch import (
    DIRECT_SCHEMES,
    HEAD_SCHEMES,
    HTTP_SCHEMES,
    Fetched,
    FetchError,
    MpdResponse,
    exists,
    fetch_mpd,
    fetch_segment,
    new_session,
    server_clock,
)
from prober.probes.dash.metrics import METRICS, RepresentationReport, summarize
from prober.probes.dash.mpd import Mpd, MpdError, Period, Representation, parse_mpd
from prober.probes.dash.segments import Announced, Segment, SidxError, announce, from_index, numbered, segment_grace
from prober.probes.dash.state import Look, Tracking, track, usable_state
from prober.probes.media.content import ContentOption, ContentSettings, UndecodableSegment, compare, decode_segment
from prober.probes.media.content import default_expect as content_expect
from prober.probes.media.pace import FRESH_FACTOR, is_fresh
from prober.probes.network import request_url
from prober.probes.registry import Export, SecretKind, register, standard_exports, url_target
from prober.redact import redact_url

__all__ = ["DashCheck", "DashProbe"]

_STATE_VERSION = 1
_FORGET_AFTER = 86400.0
_PARSE_INLINE = 64 * 1024
"""MPDs larger than this are parsed in a worker thread, so a huge one never holds the event loop."""
_SEARCH_REQUESTS = 16
"""HEAD requests at most spent finding the newest segment that exists behind a missing one."""
_CONTENT_TYPES = ("video", "audio")
_ORDER = {"video": 0, "audio": 1, "text": 2}


class DashCheck(CheckBase):
    type: Literal["dash"]
    url: HttpUrl
    representations: Literal["all", "first", "highest", "lowest"] = Field(
        "all", description="which Representations of each AdaptationSet are judged (highest/lowest: by @bandwidth)"
    )
    max_representations: int = Field(
        20,
        ge=1,
        le=500,
        description="most Representations judged per run; the rest are skipped (video first, then audio, text) "
        "and named in details.notes",
    )
    segments: int = Field(1, ge=0, le=10, description="newest segments downloaded per Representation")
    live: bool = Field(True, description='the MPD must be live (type="dynamic"); false for VOD')
    content: ContentOption = Field(None, description="true, false or a block of content thresholds")
    max_live_edge_drift: Duration = Field(
        30.0, gt=0, description="down when the live edge is further than this behind (or ahead of) the wall clock"
    )
    utc_timing: bool = Field(
        True, description="read the clock the MPD names in UTCTiming (else the local clock is the wall clock)"
    )
    headers: dict[str, str] = Field(default_factory=dict)
    verify_tls: bool = True

    @property
    def content_settings(self) -> ContentSettings | None:
        return None if self.segments <= 0 else self.content


@dataclass(slots=True)
class _MpdLook:
    response: MpdResponse
    mpd: Mpd
    seen: float
    """Unix seconds by the run's clock when the MPD arrived."""
    offset: float = 0.0
    """The UTCTiming clock minus the run's clock."""

    @property
    def now(self) -> float:
        """The wall clock the MPD is judged against (the run's clock corrected by UTCTiming)."""
        return self.seen + self.offset


@dataclass(frozen=True, slots=True)
class _Target:
    key: str
    period: Period
    representation: Representation


@dataclass(slots=True)
class _Judged:
    """What the first look established about one Representation, kept for a second look."""

    target: _Target
    report: RepresentationReport
    announced: Announced | None = None
    edge_segment: Segment | None = None
    looked_at: float = 0.0


def _period_key(period: Period) -> str:
    return period.id if period.id is not None else f"#{period.index}"


def _shown(url: str) -> str:
    return redact_url(url)


def _choose(representations: list[Representation], how: str) -> list[Representation]:
    if how == "all" or len(representations) <= 1:
        return representations
    if how == "first":
        return representations[:1]
    rated = [r for r in representations if r.bandwidth is not None] or representations
    pick = max if how == "highest" else min
    return [pick(rated, key=lambda r: r.bandwidth or 0)]


def _current_periods(mpd: Mpd, now: float) -> list[Period]:
    if not mpd.dynamic:
        return list(mpd.periods)
    elapsed = now - (mpd.availability_start_time or now)
    started = [period for period in mpd.periods if period.start <= elapsed] or [mpd.periods[0]]
    return [started[-1]]


def _targets(check: DashCheck, mpd: Mpd, now: float) -> tuple[list[_Target], str | None]:
    targets: list[_Target] = []
    for period in _current_periods(mpd, now):
        sets: dict[int, list[Representation]] = {}
        for rep in period.representations:
            sets.setdefault(rep.adaptation, []).append(rep)
        chosen = [rep for reps in sets.values() for rep in _choose(reps, check.representations)]
        chosen.sort(key=lambda rep: _ORDER.get(rep.content_type, 3))
        for rep in chosen:
            prefix = "" if mpd.dynamic else f"{_period_key(period)}/"
            targets.append(_Target(f"{prefix}{rep.adaptation}/{rep.id}", period, rep))
    if len(targets) <= check.max_representations:
        return targets, None
    kept = targets[: check.max_representations]
    note = (
        f"the MPD lists {len(targets)} Representations to judge; only the first {len(kept)} were "
        f"(max_representations: {check.max_representations})"
    )
    return kept, note


def _edge(mpd: Mpd, period: Period, segment: Segment) -> float:
    """Where `segment` ends: on the wall clock for a live MPD, in presentation seconds for a static one."""
    base = mpd.availability_start_time if mpd.dynamic and mpd.availability_start_time is not None else 0.0
    return base + period.start + segment.end


@dataclass(slots=True)
class _Run:
    check: DashCheck
    ctx: ProbeContext
    session: aiohttp.ClientSession
    previous: Mapping[str, Any]
    url: str
    notes: list[str] = field(default_factory=list)

    @property
    def reserve(self) -> float:
        return min(1.0, 0.2 * self.ctx.timeout)

    def budget(self) -> float:
        return max(0.05, self.ctx.remaining() - self.reserve)

    def clock(self) -> float:
        return self.ctx.clock.now().timestamp()

    async def look(self) -> _MpdLook:
        shown = _shown(self.url)
        began = time.perf_counter()
        try:
            response = await fetch_mpd(self.session, self.url, budget=self.budget())
        except FetchError as exc:
            self.ctx.timeline.add("mpd", began, time.perf_counter(), str(exc), **{"url.full": shown})
            raise ProbeError(f"cannot fetch the MPD {shown}: {exc}", metrics={"mpd_status": None}) from None
        seen = self.clock()
        failed = None if response.status == 200 else f"HTTP {response.status}"
        self.ctx.timeline.add("mpd", began, began + response.elapsed, failed, **{"url.full": shown})
        metrics: dict[str, Any] = {"mpd_status": response.status, "mpd_fetch": round(response.elapsed, 6)}
        if response.status != 200:
            raise ProbeError(f"the MPD {shown} returned HTTP {response.status}", metrics=metrics)
        try:
            if len(response.body) <= _PARSE_INLINE:
                mpd = parse_mpd(response.body, response.url)
            else:
                mpd = await asyncio.to_thread(parse_mpd, response.body, response.url)
        except MpdError as exc:
            raise ProbeError(f"the MPD {shown} is not a usable MPD: {exc}", metrics=metrics) from None
        return _MpdLook(response, mpd, seen)

    async def utc_offset(self, look: _MpdLook) -> float | None:
        """The first UTCTiming source that answers: its clock minus the run's clock (None: local clock)."""
        if not self.check.utc_timing:
            return None
        known = HTTP_SCHEMES | HEAD_SCHEMES | DIRECT_SCHEMES
        for timing in look.mpd.utc_timing:
            if timing.scheme not in known:
                self.notes.append(
                    f"UTCTiming {timing.scheme!r} is not read (http-iso, http-xsdate, http-head and direct are)"
                )
                continue
            try:
                return await server_clock(
                    self.session,
                    timing,
                    look.response.url,
                    budget=min(2.0, 0.25 * self.budget()),
                    received=look.seen,
                    clock=self.clock,
                )
            except FetchError as exc:
                self.notes.append(f"the UTCTiming clock {_shown(timing.value)!r} could not be read: {exc}")
        if look.mpd.utc_timing:
            self.notes.append("no UTCTiming clock could be read: the local clock is the wall clock")
        return None

    async def download(self, announced: Announced, keep: bool) -> tuple[list[Fetched], list[float]]:
        wanted = list(reversed(announced.segments))[: self.check.segments]
        fetched: list[Fetched] = []
        for index, segment in enumerate(wanted):
            began = time.perf_counter()
            answer = await fetch_segment(
                self.session, segment.url, budget=self.budget(), byte_range=segment.byte_range, keep=keep and index == 0
            )
            attributes: dict[str, Any] = {"url.full": _shown(segment.url), "prober.bytes": answer.size}
            if answer.status is not None:
                attributes["http.response.status_code"] = answer.status
            self.ctx.timeline.add("segment", began, began + answer.elapsed, answer.error, **attributes)
            fetched.append(replace(answer, url=_shown(answer.url)))
        return fetched, [segment.seconds for segment in wanted]

    async def newest_existing(self, representation: Representation, due: Segment) -> Segment | None:
        """The newest segment that exists behind a missing `due` one (`$Number$` without timeline): back in
        doubling steps until one exists, then halving between, at most `_SEARCH_REQUESTS` requests."""
        addressing = representation.addressing
        assert addressing is not None
        first = addressing.start_number
        missing, found, step, asked = due.number, None, 1, 0
        while asked < _SEARCH_REQUESTS and missing > first:
            number = max(first, due.number - step)
            asked += 1
            answer = await exists(self.session, numbered(representation, number).url, budget=min(2.0, self.budget()))
            if answer is None:
                return None
            if answer:
                found = number
                break
            missing, step = number, step * 2
        if found is None:
            return None
        while asked < _SEARCH_REQUESTS and missing - found > 1:
            middle = (found + missing) // 2
            asked += 1
            answer = await exists(self.session, numbered(representation, middle).url, budget=min(2.0, self.budget()))
            if answer is None:
                break
            if answer:
                found = middle
            else:
                missing = middle
        return numbered(representation, found)

    async def judge(self, target: _Target, look: _MpdLook) -> _Judged:
        rep, period, mpd = target.representation, target.period, look.mpd
        report = RepresentationReport(target.key, rep.id, rep.content_type, rep.bandwidth)
        judged = _Judged(target, report, looked_at=look.seen)
        announced = announce(mpd, period, rep, look.now)
        judged.announced = announced
        if announced.index is not None:
            url, byte_range = announced.index
            index = await fetch_segment(self.session, url, budget=self.budget(), byte_range=byte_range, keep=True)
            if not index.ok or index.body is None:
                report.error = (
                    f"its segment index (sidx, bytes {byte_range[0]}-{byte_range[1]} of {_shown(url)}) could not be "
                    f"read: {index.error or f'HTTP {index.status}'}"
                )
                return judged
            try:
                from_index(announced, rep, index.body)
            except SidxError as exc:
                report.error = f"its segment index (sidx) in {_shown(url)} is unreadable: {exc}"
                return judged
        if announced.newest is None:
            report.error = nothing_announced(mpd, period, rep, announced, look.now)
            return judged
        report.inconsistencies.extend(announced.problems)
        report.total = announced.total
        settings = self.check.content_settings if rep.content_type in _CONTENT_TYPES else None
        if self.check.segments > 0:
            report.segments, report.durations = await self.download(announced, keep=settings is not None)
        edge_segment: Segment | None = announced.newest
        if announced.clock_based and report.segments and report.segments[0].status == 404:
            edge_segment = await self.newest_existing(rep, announced.newest)
            if edge_segment is None:
                report.notes.append("no segment of it could be found behind the missing newest one")
            else:
                report.notes.append(
                    f"the newest segment the MPD announces ({announced.newest.number}) does not exist; "
                    f"the newest that does is {edge_segment.number}"
                )
        judged.edge_segment = edge_segment
        report.newest = announced.newest
        if mpd.dynamic and mpd.availability_start_time is not None and edge_segment is not None:
            report.drift = look.now - _edge(mpd, period, edge_segment)
        if self.check.segments > 0 and announced.init_url is not None:
            await self.fetch_init(report, announced, keep=settings is not None)
        if settings is not None and report.segments and report.segments[0].ok:
            await self.content(report, target, announced.newest, settings)
        self.follow(judged, look)
        return judged

    async def fetch_init(self, report: RepresentationReport, announced: Announced, *, keep: bool) -> None:
        assert announced.init_url is not None
        began = time.perf_counter()
        init = await fetch_segment(
            self.session, announced.init_url, budget=self.budget(), byte_range=announced.init_range, keep=keep
        )
        self.ctx.timeline.add("init", began, began + init.elapsed, init.error, **{"url.full": _shown(init.url)})
        report.init = replace(init, url=_shown(init.url))
        if not init.ok:
            report.failures.append(
                f"its initialization segment {_shown(init.url)} "
                + (f"returned HTTP {init.status}" if init.status else f"could not be downloaded: {init.error}")
                + ": players cannot start it"
            )

    async def content(
        self, report: RepresentationReport, target: _Target, segment: Segment, settings: ContentSettings
    ) -> None:
        newest = report.segments[0]
        if newest.body is None:
            return
        data = newest.body
        if report.init is not None:
            if not report.init.ok or report.init.body is None:
                return
            data = report.init.body + data
        try:
            decoded = await asyncio.to_thread(decode_segment, data, max_frames=settings.max_frames)
        except UndecodableSegment as exc:
            report.failures.append(f"segment {newest.url} could not be decoded: {exc}")
            return
        previous = self.previous.get(target.key)
        old = previous.get("content") if isinstance(previous, Mapping) else None
        old = old if isinstance(old, Mapping) else None
        period = target.period
        between: float | None = None
        if (
            old is not None
            and old.get("period") == _period_key(period)
            and isinstance(old.get("end"), int | float)
            and isinstance(old.get("sequence"), int)
            and segment.number > old["sequence"]
        ):
            between = segment.start - float(old["end"])
        rep = target.representation
        resolution = f"{rep.width}x{rep.height}" if rep.width and rep.height and rep.content_type == "video" else None
        found = compare(
            decoded,
            old,
            settings=settings,
            now=self.clock(),
            sequence=segment.number,
            discontinuity=period.index,
            extinf=segment.seconds,
            between=between,
            resolution=resolution,
        )
        report.content = found.metrics
        report.notes.extend(found.notes)
        state = {**found.state, "period": _period_key(period), "end": segment.end}
        report.state = {**(report.state or {}), "content": state}

    def follow(self, judged: _Judged, look: _MpdLook, *, earlier: Tracking | None = None) -> None:
        """Freshness and consistency of one look against the saved state (or the run's first look)."""
        report, target, segment = judged.report, judged.target, judged.edge_segment
        if segment is None or judged.announced is None:
            return
        mpd = look.mpd
        seen = Look(
            _period_key(target.period),
            segment,
            _edge(mpd, target.period, segment),
            mpd.availability_start_time,
            judged.announced.segments,
        )
        previous = earlier.state if earlier is not None else self.previous.get(target.key)
        tracking = track(previous if isinstance(previous, Mapping) else None, seen, look.seen)
        report.advanced = tracking.advanced
        report.regressed = report.regressed or tracking.regressed
        report.inconsistencies = list(dict.fromkeys([*report.inconsistencies, *tracking.inconsistencies]))
        if mpd.dynamic:
            report.stale_for = tracking.stale_for
            report.fresh = is_fresh(tracking.stale_for, segment.seconds)
        report.state = {**(report.state or {}), **tracking.state}

    async def second_look(self, judged: list[_Judged], first: _MpdLook) -> None:
        """Look at the MPD again after one segment duration, then just past 1.5, until every Representation
        waiting shows a new segment, within the time the run has left.

        Waiting are the Representations of a first run (nothing saved to compare with) and those of a
        clock-driven template whose newest announced segment does not exist: a new segment since the last run
        says nothing about now (an encoder that died a second after that run still "advanced"), so whether the
        segment after the newest that exists appears is what tells a late origin from a dead encoder.
        """
        waiting = [item for item in judged if _needs_second_look(item)]
        if not waiting:
            return
        first_run = any(item.report.advanced is None for item in waiting)
        why = "first run" if first_run else "the newest segment the MPD announces is missing"
        duration = max(item.edge_segment.seconds for item in waiting if item.edge_segment is not None)
        limit = self.clock() + max(0.0, self.ctx.remaining() - self.reserve - 1.0)
        if duration <= 0 or limit - first.seen < 0.25 * duration:
            outcome = "freshness unknown" if first_run else "freshness judged against the previous run only"
            self.notes.append(f"{why}: no time left within the timeout to look at the MPD twice; {outcome}")
            return
        for item in waiting:
            item.report.advanced = None  # judged anew against this run's first look
        states = {id(item): dict(item.report.state or {}) for item in waiting}
        looked = first
        for moment in (first.seen + duration, first.seen + (FRESH_FACTOR + 0.1) * duration):
            moment = min(moment, limit)
            await sleep_until(self.ctx.clock, moment)
            try:
                looked = await self.look()
            except ProbeError as exc:
                self.notes.append(f"{why}: the second look at the MPD failed: {exc}")
                return
            looked.offset = first.offset
            pending = [item for item in waiting if not item.report.advanced]
            for item in pending:
                await self.relook(item, looked, states[id(item)])
            if all(item.report.advanced for item in waiting) or moment >= limit:
                break
        for item in waiting:
            report = item.report
            if not report.advanced and item.edge_segment is not None and looked.mpd.dynamic:
                # Nothing new: at least the time spent looking (or since the last change the saved state knows);
                # the live edge says how long ago it really ended.
                stale = looked.seen - first.seen
                behind = looked.now - _edge(looked.mpd, item.target.period, item.edge_segment)
                report.stale_for = max(stale, behind, report.stale_for or 0.0)
                report.fresh = is_fresh(report.stale_for, item.edge_segment.seconds)
                report.state = {**(report.state or {}), "last_change": looked.seen - report.stale_for}
        spent = looked.seen - first.seen
        seen = "a new segment appeared" if all(item.report.advanced for item in waiting) else "no new segment appeared"
        self.notes.append(f"{why}: looked at the MPD again after {spent:.1f}s to judge freshness; {seen}")

    async def relook(self, item: _Judged, look: _MpdLook, first_state: dict[str, Any]) -> None:
        target = item.target
        periods = {_period_key(p): p for p in look.mpd.periods}
        period = periods.get(_period_key(target.period)) or look.mpd.periods[-1]
        match = [r for r in period.representations if r.id == target.representation.id]
        if not match:
            return
        rep = match[0]
        announced = announce(look.mpd, period, rep, look.now)
        if announced.index is not None or announced.newest is None:
            return
        edge = announced.newest
        if announced.clock_based:
            # The next segment after the newest that existed: does it exist now?
            known = item.edge_segment
            assert known is not None
            following = numbered(rep, known.number + 1)
            if following.number > edge.number or not await exists(self.session, following.url, budget=self.budget()):
                edge = known
            else:
                edge = following
        judged = _Judged(_Target(target.key, period, rep), item.report, announced, edge, look.seen)
        self.follow(judged, look, earlier=Tracking(None, None, False, [], first_state))
        if item.report.advanced:
            item.edge_segment = edge


def _needs_second_look(item: _Judged) -> bool:
    """A first look at this Representation, or a clock-driven one whose newest announced segment is missing."""
    if item.edge_segment is None:
        return False
    if item.report.advanced is None:
        return True
    announced = item.announced
    return announced is not None and announced.clock_based and item.edge_segment is not announced.newest


def _mpd_age(look: _MpdLook, saved: Mapping[str, Any]) -> tuple[float | None, dict[str, Any]]:
    """Seconds since the MPD was published (publishTime), else since its body last changed across runs."""
    digest = hashlib.sha256(look.response.body).hexdigest()[:16]
    changed = saved.get("changed") if saved.get("digest") == digest else None
    changed = float(changed) if isinstance(changed, int | float) else look.seen
    state = {"digest": digest, "changed": changed}
    if look.mpd.publish_time is not None:
        return max(0.0, look.now - look.mpd.publish_time), state
    if saved.get("digest") is None:
        return None, state
    return max(0.0, look.seen - changed), state


@register("dash")
class DashProbe:
    type_name: ClassVar[str]
    Config = DashCheck
    metrics: ClassVar[Mapping[str, MetricSpec]] = METRICS
    exports: ClassVar[Mapping[str, tuple[Export, ...]]] = standard_exports(
        "dash",
        metrics,
        rename={
            "mpd_status": "probe_dash_mpd_status_code",
            "segment_status": "probe_dash_segment_status_code",
            "init_status": "probe_dash_init_status_code",
            "stale_for": "probe_dash_stale_seconds",
            "frozen_for": "probe_dash_frozen_seconds",
            "audio_level": "probe_dash_audio_level_dbfs",
            "representations_total": "probe_dash_representations",
        },
    )
    headline: ClassVar[tuple[str, ...]] = ("stale_for", "live_edge_drift")
    secrets: ClassVar[Mapping[str, SecretKind]] = {"url": "url", "headers": "headers"}
    target = url_target

    def default_expect(self, check: DashCheck) -> Mapping[str, Any]:
        expect: dict[str, Any] = {"mpd_status": 200}
        if check.live:
            expect.update(dynamic=True, fresh=True, mpd_refreshed="!= false")
            drift = f"{check.max_live_edge_drift:g}s"
            expect.update(live_edge_drift=f"<= {drift}", live_edge_ahead=f"<= {drift}")
        if check.segments > 0:
            expect.update(segment_status=200, segment_bytes="> 0")
        expect.update(representations_failed=0, timeline_regressed=False, consistent=True)
        settings = check.content_settings
        if settings is not None:
            expect.update(content_expect(settings))
        return expect

    async def run(self, check: DashCheck, ctx: ProbeContext) -> Observation:
        saved = await ctx.state.load() or {}
        usable = saved.get("version") == _STATE_VERSION
        previous = saved.get("representations") if usable else None
        previous = previous if isinstance(previous, dict) else {}
        saved_mpd: dict[str, Any] = saved["mpd"] if usable and isinstance(saved.get("mpd"), dict) else {}
        url = request_url(check.url, check.headers)
        async with new_session(verify_tls=check.verify_tls, headers=check.headers) as session:
            run = _Run(check, ctx, session, previous, url)
            look = await run.look()
            mpd = look.mpd
            offset = await run.utc_offset(look)
            look.offset = offset or 0.0
            base_metrics: dict[str, Any] = {
                "mpd_status": look.response.status,
                "mpd_fetch": round(look.response.elapsed, 6),
                "dynamic": mpd.dynamic,
                "periods": len(mpd.periods),
                "minimum_update_period": mpd.minimum_update_period,
                "clock_offset": None if offset is None else round(offset, 3),
            }
            if check.live and not mpd.dynamic:
                raise ProbeError(
                    f'the MPD {_shown(check.url)} is static (type="static"): the live stream has ended '
                    "(for a VOD set live: false)",
                    metrics=base_metrics,
                )
            targets, skipped = _targets(check, mpd, look.now)
            if not targets:
                raise ProbeError(f"the MPD {_shown(check.url)} lists no Representation to play", metrics=base_metrics)
            outcomes = await asyncio.gather(*(run.judge(target, look) for target in targets), return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome  # a bug, not a finding: the runner reports it; every sibling has finished
            judged = [outcome for outcome in outcomes if isinstance(outcome, _Judged)]
            if mpd.dynamic:
                await run.second_look(judged, look)
        reports = [item.report for item in judged]
        metrics, details = summarize(
            reports, segments_wanted=check.segments, content_wanted=check.content_settings is not None
        )
        age, mpd_state = _mpd_age(look, saved_mpd)
        refreshed: bool | None = None
        timed = any(
            (t.representation.addressing is not None and t.representation.addressing.kind != "template")
            or (t.representation.addressing is not None and t.representation.addressing.timeline is not None)
            for t in targets
        )
        if mpd.dynamic and timed and mpd.minimum_update_period is not None and age is not None:
            allowance = mpd.minimum_update_period + (metrics.get("segment_duration") or 0.0) + 1.0
            refreshed = age <= allowance
        metrics = {
            **base_metrics,
            "mpd_age": None if age is None else round(age, 3),
            "mpd_refreshed": refreshed,
        } | metrics
        notes = [*((skipped and [skipped]) or []), *mpd.problems, *run.notes, *details.get("notes", [])]
        if notes:
            details["notes"] = notes
        await self._save(ctx, previous, reports, mpd_state)
        failed = [report for report in reports if report.failed]
        if reports and len(failed) == len(reports):
            first = failed[0]
            reason = f"{first.label}: {first.problem()}"
            message = reason if len(reports) == 1 else f"all {len(reports)} Representations failed; {reason}"
            raise ProbeError(message, metrics=metrics, details=details)
        return Observation(metrics=metrics, details=details)

    async def _save(
        self,
        ctx: ProbeContext,
        previous: Mapping[str, Any],
        reports: list[RepresentationReport],
        mpd_state: dict[str, Any],
    ) -> None:
        now = ctx.clock.now().timestamp()
        kept = {
            key: value
            for key, value in previous.items()
            if isinstance(value, Mapping) and now - float(value.get("seen_at", 0) or 0) < _FORGET_AFTER
        }
        for report in reports:
            if report.state is not None and (usable_state(report.state) or "content" in report.state):
                kept[report.key] = {**(kept.get(report.key) or {}), **report.state}
        await ctx.state.save({"version": _STATE_VERSION, "representations": kept, "mpd": mpd_state})


def nothing_announced(mpd: Mpd, period: Period, rep: Representation, announced: Announced, now: float) -> str:
    """Why a Representation has no segment to fetch, with the time its first one is due when that is the reason.

    A live `$Number$` stream that started less than one segment (plus the origin's grace) ago announces none:
    saying when the first is due tells a just-started encoder from a broken MPD.
    """
    if announced.problems:
        return f"it announces no segment: {announced.problems[0]}"
    if mpd.dynamic and mpd.availability_start_time is not None:
        start = mpd.availability_start_time + period.start
        if start > now:
            return (
                f"the MPD announces no segment yet: its availabilityStartTime + Period@start is {start - now:.0f} s in "
                "the future"
            )
        addressing = rep.addressing
        if addressing is not None and addressing.timeline is None and addressing.duration:
            seconds = addressing.duration / addressing.timescale
            due = start + seconds + segment_grace(seconds)
            if due > now:
                return (
                    f"the MPD announces no segment yet: the stream began {now - start:.1f} s ago and its first "
                    f"{seconds:g} s segment is due in {due - now:.1f} s"
                )
    return "it announces no segment"
