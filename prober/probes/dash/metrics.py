"""The dash check's metrics, and how per-Representation findings become one set of metrics (the worst).

`RepresentationReport` is what one run found about one Representation; `summarize` folds the reports
into the metrics of docs/checks/dash.md (each the worst over the Representations judged, as the hls check
does over its variants) and the per-Representation summaries kept in the result's details. The content
metrics and their sentences are the ones every stream type shares (`prober.probes.media.content_metrics`).
Pure: no I/O, no clock, no judging (conditions judge the metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prober.config.conditions import MetricSpec
from prober.config.durations import format_duration
from prober.probes.dash.fetch import Fetched
from prober.probes.dash.segments import Segment
from prober.probes.media.content_metrics import CONTENT_METRIC_NAMES, content_metric_specs
from prober.probes.media.pace import FRESH_FACTOR, realtime_ratio
from prober.probes.media.summary import all_true, content_problem, round6, worst_status
from prober.probes.stats import percentile

__all__ = ["METRICS", "RepresentationReport", "summarize"]


def _seconds(value: float) -> str:
    return format_duration(abs(value)) if abs(value) >= 1 else f"{abs(value):.2f}s"


def _behind(actual: Any, condition: str) -> str | None:
    if not isinstance(actual, int | float):
        return None
    if actual >= 0:
        return f"the DASH live edge is {abs(actual):.0f} s behind the wall clock (expected {condition})"
    return f"the DASH live edge is {abs(actual):.0f} s ahead of the wall clock (expected {condition})"


def _ahead(actual: Any, condition: str) -> str | None:
    if isinstance(actual, int | float):
        return (
            f"the DASH live edge is {actual:.0f} s ahead of the wall clock (expected {condition}): players ask for "
            "segments that do not exist yet"
        )
    return None


def _stale(actual: Any, condition: str) -> str | None:
    if actual is False:
        return (
            f"no new DASH segment appeared within {FRESH_FACTOR:g} x the segment duration: the live stream has stalled"
        )
    return None


def _refreshed(actual: Any, condition: str) -> str | None:
    if actual is False:
        return "the MPD was not refreshed within its minimumUpdatePeriod: players keep a stale timeline"
    return None


def _regressed(actual: Any, condition: str) -> str | None:
    return "the DASH timeline went backwards since the previous run" if actual is True else None


def _segment(actual: Any, condition: str) -> str | None:
    if actual is None:
        return "a segment the MPD announces could not be downloaded (no answer): players stall on it"
    if isinstance(actual, int) and actual != 200:
        return f"a segment the MPD announces returned HTTP {actual}: players stall on it"
    return None


def _static(actual: Any, condition: str) -> str | None:
    if actual is False and condition == "true":
        return 'the MPD is static (type="static"): the live stream has ended'
    return None


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("mpd_status", "HTTP status of the MPD"),
        MetricSpec("mpd_fetch", "download time of the MPD", unit="s"),
        MetricSpec(
            "dynamic",
            'the MPD is live (type="dynamic")',
            describe=_static,
            explains=("fresh", "stale_for", "advanced", "live_edge_drift"),
        ),
        MetricSpec("periods", "Periods in the MPD"),
        MetricSpec("representations_total", "Representations judged (video, audio, text)"),
        MetricSpec("representations_failed", "Representations judged that viewers cannot play"),
        MetricSpec("minimum_update_period", "MPD@minimumUpdatePeriod", unit="s"),
        MetricSpec(
            "mpd_age", "seconds since the MPD was published (publishTime, else since its body changed)", unit="s"
        ),
        MetricSpec(
            "mpd_refreshed", "the MPD was refreshed within minimumUpdatePeriod + one segment", describe=_refreshed
        ),
        MetricSpec("segment_duration", "duration of the newest segment, the longest", unit="s"),
        MetricSpec("stale_for", "seconds since a new segment last appeared, the longest", unit="s"),
        MetricSpec(
            "fresh",
            "every Representation gained a segment within 1.5 x its segment duration",
            describe=_stale,
            # A stalled $Number$ template keeps announcing segments by the clock: the missing one is the stall.
            explains=("segment_status", "segment_bytes", "realtime_ratio", "stale_for", "advanced"),
        ),
        MetricSpec("advanced", "a new segment appeared since the previous run in every Representation"),
        MetricSpec(
            "timeline_regressed", "a timeline went backwards (its newest segment is older)", describe=_regressed
        ),
        MetricSpec("consistent", "no segment number changed its time, no availabilityStartTime moved, ..."),
        MetricSpec(
            "live_edge_drift",
            "wall clock minus the end of the newest segment by availabilityStartTime + timeline (> 0: behind), "
            "the largest",
            unit="s",
            describe=_behind,
            explains=("segment_status", "segment_bytes", "realtime_ratio"),
        ),
        MetricSpec(
            "live_edge_ahead",
            "seconds the live edge is ahead of the wall clock (0 when behind), the largest",
            unit="s",
            describe=_ahead,
            explains=("segment_status", "segment_bytes", "realtime_ratio", "fresh", "stale_for"),
        ),
        MetricSpec("clock_offset", "the MPD's UTCTiming clock minus the local clock", unit="s"),
        MetricSpec(
            "segment_status",
            "HTTP status of the downloaded segments, the worst (null: no answer)",
            describe=_segment,
            explains=("segment_bytes", "segment_fetch", "realtime_ratio"),
        ),
        MetricSpec("init_status", "HTTP status of the initialization segments, the worst (null: no answer)"),
        MetricSpec("segment_fetch", "download time of the newest segment, the slowest", unit="s"),
        MetricSpec("segment_fetch_p95", "95th percentile segment download time", unit="s"),
        MetricSpec("realtime_ratio", "segment duration / download time, the lowest (< 1: slower than real time)"),
        MetricSpec("segment_bytes", "size of the downloaded segments, the smallest", unit="bytes"),
        *content_metric_specs("the newest segment").values(),
        MetricSpec("duration_mismatch", "content: |decoded duration - the timeline's duration|, the largest", unit="s"),
        MetricSpec("resolution_matches", "content: every decoded picture size equals the Representation's"),
    )
}

_KIND_WORDS = {"video": "video", "audio": "audio", "text": "text"}


@dataclass(slots=True)
class RepresentationReport:
    """What one run found about one Representation."""

    key: str
    """`<period id>/<AdaptationSet index>/<Representation id>`: where its state is kept."""
    id: str
    content_type: str
    bandwidth: int | None = None
    error: str | None = None
    """It could not be judged at all (no segment announced, its index unreadable)."""
    failures: list[str] = field(default_factory=list)
    """Why viewers cannot play it although it was read: a missing init segment, an undecodable segment."""
    newest: Segment | None = None
    total: int = 0
    stale_for: float | None = None
    fresh: bool | None = None
    advanced: bool | None = None
    regressed: bool = False
    drift: float | None = None
    inconsistencies: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    segments: list[Fetched] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    init: Fetched | None = None
    content: dict[str, Any] | None = None
    state: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        kind = _KIND_WORDS.get(self.content_type, self.content_type)
        return f"{kind} representation {self.id}"

    @property
    def failed(self) -> bool:
        """It cannot be played although the MPD lists it (a missing segment alone is segment_status's)."""
        return self.error is not None or bool(self.failures)

    def problem(self) -> str | None:
        if self.error is not None:
            return self.error
        if self.failures:
            return self.failures[0]
        if self.fresh is False and self.newest is not None:
            shown = "unknown" if self.stale_for is None else _seconds(self.stale_for)
            limit = FRESH_FACTOR * self.newest.seconds
            return f"no new segment for {shown} (a live stream must gain one within {limit:g}s)"
        for seg in self.segments:
            if not seg.ok:
                return f"segment {seg.url}: {seg.error or f'HTTP {seg.status}'}"
        if self.inconsistencies:
            return self.inconsistencies[0]
        return content_problem(self.content)


def _status(fetched: Fetched) -> int | None:
    return 200 if fetched.ok else fetched.status


def _summary(report: RepresentationReport) -> dict[str, Any]:
    summary: dict[str, Any] = {"representation": report.id, "type": report.content_type}
    if report.bandwidth is not None:
        summary["bandwidth"] = report.bandwidth
    problem = report.problem()
    if problem is not None:
        summary["failed"] = problem
    if report.error is not None:
        return summary
    newest = report.newest
    summary.update(
        segments_announced=report.total,
        newest_segment=None if newest is None else {"number": newest.number, "time": newest.time, "url": newest.url},
        stale_for=round6(report.stale_for),
        fresh=report.fresh,
        advanced=report.advanced,
        live_edge_drift=round6(report.drift),
        downloads=[
            {"url": seg.url, "status": seg.status, "bytes": seg.size, "fetch": round6(seg.elapsed)}
            | ({"error": seg.error} if seg.error else {})
            for seg in report.segments
        ],
    )
    if report.content is not None:
        summary["content"] = report.content
    return summary


def summarize(
    reports: Sequence[RepresentationReport], *, segments_wanted: int, content_wanted: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics (the worst over the Representations) and details for one run; the MPD-level metrics are the
    probe's to add."""
    ok = [report for report in reports if report.error is None]
    stale = [r.stale_for for r in ok if r.stale_for is not None]
    drifts = [r.drift for r in ok if r.drift is not None]
    durations = [r.newest.seconds for r in ok if r.newest is not None and r.newest.seconds > 0]
    metrics: dict[str, Any] = {
        "representations_total": len(reports),
        "representations_failed": sum(1 for report in reports if report.failed),
        "segment_duration": round6(max(durations) if durations else None),
        "stale_for": round6(max(stale) if stale else None),
        "fresh": all_true([r.fresh for r in ok]),
        "advanced": all_true([r.advanced for r in ok]),
        "timeline_regressed": any(r.regressed for r in ok),
        "consistent": not any(r.inconsistencies for r in ok),
        "live_edge_drift": round6(max(drifts) if drifts else None),
        "live_edge_ahead": round6(max(0.0, -min(drifts)) if drifts else None),
    }
    if segments_wanted > 0:
        fetched = [seg for r in ok for seg in r.segments]
        inits = [r.init for r in ok if r.init is not None]
        ratios = [
            ratio
            for r in ok
            for seg, seconds in zip(r.segments, r.durations, strict=True)
            if seg.ok and seg.size > 0 and (ratio := realtime_ratio(seconds, seg.elapsed)) is not None
        ]
        newest = [r.segments[0].elapsed for r in ok if r.segments]
        metrics.update(
            segment_status=worst_status([_status(seg) for seg in fetched]),
            init_status=worst_status([_status(init) for init in inits]),
            segment_fetch=round6(max(newest) if newest else None),
            segment_fetch_p95=round6(percentile([seg.elapsed for seg in fetched if seg.ok], 0.95)),
            realtime_ratio=round6(min(ratios) if ratios else None),
            segment_bytes=min((seg.size for seg in fetched if seg.ok), default=None),
        )
    if content_wanted:
        metrics.update(_content_metrics(ok))
    details: dict[str, Any] = {"representations": [_summary(report) for report in reports]}
    inconsistencies = [f"{r.label}: {reason}" for r in ok for reason in r.inconsistencies]
    if inconsistencies:
        details["inconsistencies"] = inconsistencies
    errors = [f"{r.label}: {r.error}" for r in reports if r.error]
    errors += [f"{r.label}: {failure}" for r in ok for failure in r.failures]
    errors += [
        f"{r.label}: segment {seg.url}: {seg.error or f'HTTP {seg.status}'}"
        for r in ok
        for seg in r.segments
        if not seg.ok
    ]
    if errors:
        details["errors"] = errors
    notes = [f"{r.label}: {note}" for r in reports for note in r.notes]
    if notes:
        details["notes"] = notes
    return metrics, details


def _content_metrics(reports: Sequence[RepresentationReport]) -> dict[str, Any]:
    """The worst of each content metric over the decoded segments (pictures from video Representations)."""
    found = [r.content or {} for r in reports if r.content is not None]
    pictures = [r.content or {} for r in reports if r.content is not None and r.content_type == "video"]

    def values(name: str, among: Sequence[dict[str, Any]] = found) -> list[Any]:
        return [item[name] for item in among if item.get(name) is not None]

    widest = max(pictures, key=lambda item: item.get("width") or 0, default={})
    audio = values("audio_silent")
    metrics: dict[str, Any] = {
        "has_video": all_true(values("has_video", pictures)) if pictures else None,
        "has_audio": any(values("has_audio")) if found else None,
        "decoded_duration": min(values("decoded_duration"), default=None),
        "duration_mismatch": max(values("duration_mismatch"), default=None),
        "width": widest.get("width"),
        "height": widest.get("height"),
        "resolution_matches": all_true(values("resolution_matches", pictures)),
        "black_ratio": max(values("black_ratio", pictures), default=None),
        "frozen": any(values("frozen", pictures)) if values("frozen", pictures) else None,
        "frozen_for": max(values("frozen_for", pictures), default=None),
        "audio_level": min(values("audio_level"), default=None),
        "audio_silent": any(audio) if audio else None,
        "pts_gap": max(values("pts_gap"), default=None),
    }
    assert set(CONTENT_METRIC_NAMES) <= set(metrics)
    return metrics
