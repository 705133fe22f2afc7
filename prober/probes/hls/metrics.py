"""The hls check's metric names and how per-variant findings become one set of metrics (the worst).

`VariantReport` is what the probe found about one variant; `summarize` folds the reports into the
metrics of docs/checks/hls.md (each the worst over the variants checked) and the per-variant summaries kept in
the result's details. Pure: no I/O, no clock, no judging (conditions judge the metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prober.config.conditions import MetricSpec
from prober.probes.hls.fetch import SegmentResponse
from prober.probes.hls.playlist import MediaPlaylist
from prober.probes.media.content_metrics import black_sentence, frozen_sentence, silent_sentence
from prober.probes.media.summary import all_true, content_problem, round6, worst_status
from prober.probes.stats import percentile

__all__ = ["METRICS", "VariantReport", "percentile", "summarize"]


def _endlist_sentence(actual: Any, condition: str) -> str | None:
    if actual is True and condition == "false":
        return "the playlist has EXT-X-ENDLIST: the live stream has ended"
    return None


def _part_sentence(actual: Any, condition: str) -> str | None:
    if actual is False:
        return "no new LL-HLS part appeared within 3 x PART-TARGET: the low-latency stream has stalled"
    return None


def _no_video(actual: Any, condition: str) -> str | None:
    return "the newest segment has no decodable video" if actual is False else None


def _pts_gap(actual: Any, condition: str) -> str | None:
    if isinstance(actual, int | float):
        return (
            f"the timestamps jumped {actual:.3g}s between segments without an EXT-X-DISCONTINUITY tag "
            f"(expected {condition}): players may stall or skip"
        )
    return None


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("playlist_status", "HTTP status of the playlists (master and variants), the worst"),
        MetricSpec(
            "segment_status",
            "HTTP status of the downloaded segments, the worst (null: no answer)",
            explains=("segment_bytes", "segment_fetch", "realtime_ratio"),
        ),
        MetricSpec("target_duration", "EXT-X-TARGETDURATION, the largest", unit="s"),
        MetricSpec("segment_count", "segments listed, the fewest"),
        MetricSpec("media_sequence", "EXT-X-MEDIA-SEQUENCE, the lowest"),
        MetricSpec("window", "seconds of media listed, the shortest", unit="s"),
        MetricSpec("age_header", "the playlist's HTTP Age header, the largest; null if none", unit="s"),
        MetricSpec("stale_for", "seconds since a new segment last appeared, the longest", unit="s"),
        MetricSpec("fresh", "every variant gained a segment within 1.5 x its target duration (RFC 8216 6.2.1)"),
        MetricSpec("sequence_advanced", "a new segment appeared since the previous run in every variant"),
        MetricSpec("sequence_regressed", "a media or discontinuity sequence went backwards"),
        MetricSpec("consistent", "no sequence number changed URI/discontinuity/PDT, no EXTINF > target, ..."),
        MetricSpec("pdt_drift", "wall clock minus the end of the newest segment by PROGRAM-DATE-TIME", unit="s"),
        MetricSpec("pdt_drift_abs", "absolute pdt_drift, the largest (bounds drift in both directions)", unit="s"),
        MetricSpec("segment_fetch", "download time of the newest segment, the slowest", unit="s"),
        MetricSpec("segment_fetch_p50", "median segment download time", unit="s"),
        MetricSpec("segment_fetch_p95", "95th percentile segment download time", unit="s"),
        MetricSpec("segment_fetch_p99", "99th percentile segment download time", unit="s"),
        MetricSpec("realtime_ratio", "segment duration / download time, the lowest (< 1: slower than real time)"),
        MetricSpec("segment_bytes", "size of the downloaded segments, the smallest", unit="bytes"),
        MetricSpec(
            "endlist",
            "a playlist has EXT-X-ENDLIST",
            describe=_endlist_sentence,
            explains=("fresh", "stale_for", "sequence_advanced", "part_fresh", "part_stale_for"),
        ),
        MetricSpec("short_window", "a live sliding window lists less than 3 x the target duration (RFC 8216 6.2.2)"),
        MetricSpec("variants_total", "variants checked (plus unusable EXT-X-STREAM-INF entries)"),
        MetricSpec("variants_failed", "variants that could not be fetched, read, decrypted or decoded"),
        MetricSpec("renditions_total", "alternate renditions checked (EXT-X-MEDIA with a URI, I-frame playlists)"),
        MetricSpec("renditions_failed", "renditions that could not be fetched, read, decrypted or decoded"),
        MetricSpec("part_target", "LL-HLS EXT-X-PART-INF PART-TARGET, the largest; null if not LL-HLS", unit="s"),
        MetricSpec("part_stale_for", "LL-HLS: seconds since a new part last appeared, the longest", unit="s"),
        MetricSpec(
            "part_fresh",
            "LL-HLS: a new part appeared within 3 x PART-TARGET (null: not LL-HLS, or a first look)",
            describe=_part_sentence,
            explains=("fresh", "stale_for", "sequence_advanced"),
        ),
        MetricSpec(
            "blocking_reload",
            "LL-HLS: seconds the blocking playlist request was held: for the next part (_HLS_msn=N&_HLS_part=P), "
            "or the next segment (_HLS_msn=N) on a first run or without parts; the whole wait when no answer came",
            unit="s",
        ),
        MetricSpec("key_status", "HTTP status of the EXT-X-KEY URIs (keys: true), the worst"),
        MetricSpec("has_video", "content: the newest segment of every variant has decodable video", describe=_no_video),
        MetricSpec("has_audio", "content: some decoded segment has audio"),
        MetricSpec("decoded_duration", "content: decoded media duration of the newest segment, the shortest", unit="s"),
        MetricSpec("duration_mismatch", "content: |decoded duration - EXTINF|, the largest", unit="s"),
        MetricSpec("width", "content: decoded picture width, of the widest variant"),
        MetricSpec("height", "content: decoded picture height, of the widest variant"),
        MetricSpec("resolution_matches", "content: every decoded picture size equals the variant's RESOLUTION"),
        MetricSpec(
            "black_ratio",
            "content: share of decoded frames that are black, the largest",
            describe=black_sentence,
            explains=("frozen", "frozen_for"),
        ),
        MetricSpec("frozen", "content: a newest segment shows one unchanging picture"),
        MetricSpec(
            "frozen_for",
            "content: seconds the picture has not changed (across runs), the longest",
            unit="s",
            describe=frozen_sentence,
        ),
        MetricSpec("audio_level", "content: RMS audio level in dBFS, the quietest", unit="dBFS"),
        MetricSpec(
            "audio_silent",
            "content: some decoded audio is below the silence level (-60 dBFS)",
            describe=silent_sentence,
        ),
        MetricSpec(
            "pts_gap",
            "content: timestamp jump not announced by EXT-X-DISCONTINUITY, the largest",
            unit="s",
            describe=_pts_gap,
        ),
    )
}

_CONTENT_METRICS = (
    "has_video",
    "has_audio",
    "decoded_duration",
    "duration_mismatch",
    "width",
    "height",
    "resolution_matches",
    "black_ratio",
    "frozen",
    "frozen_for",
    "audio_level",
    "audio_silent",
    "pts_gap",
)
_KIND_LABELS = {
    "variant": "variant",
    "audio": "audio rendition",
    "video": "video rendition",
    "subtitles": "subtitles rendition",
    "closed-captions": "captions rendition",
    "iframe": "I-frame playlist",
}


@dataclass(slots=True)
class VariantReport:
    """What one run found about one variant (or about the single media playlist of a media URL)."""

    name: str
    bandwidth: int | None = None
    kind: str = "variant"
    """`variant`, or the rendition's kind: `audio`, `video`, `subtitles`, `iframe`."""
    prefixed: bool = True
    """Sentences name the variant (False for the single media playlist of a media URL)."""
    playlist_status: int | None = None
    error: str | None = None
    playlist: MediaPlaylist | None = None
    age: float | None = None
    stale_for: float | None = None
    fresh: bool | None = None
    advanced: bool | None = None
    regressed: bool = False
    pdt_drift: float | None = None
    short_window: bool = False
    inconsistencies: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    segments: list[SegmentResponse] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    """EXTINF of each downloaded segment, in the order of `segments`."""
    state: dict[str, Any] | None = None
    failures: list[str] = field(default_factory=list)
    """Why viewers cannot play it although its playlist was read: a key that fails, an undecodable segment."""
    part_stale_for: float | None = None
    part_fresh: bool | None = None
    blocking_reload: float | None = None
    key_statuses: list[int | None] = field(default_factory=list)
    content: dict[str, Any] | None = None
    """Content metrics of the newest segment (hls_content), when `content` is on and it was decoded."""

    @property
    def label(self) -> str:
        return f"{_KIND_LABELS.get(self.kind, self.kind + ' rendition')} {self.name}"

    @property
    def prefix(self) -> str:
        return f"{self.label}: " if self.prefixed else ""

    @property
    def failed(self) -> bool:
        return self.error is not None or bool(self.failures)

    def problem(self) -> str | None:
        """The first reason this variant is bad, for details.variants (None when it looks healthy)."""
        if self.error is not None:
            return self.error
        if self.failures:
            return self.failures[0]
        if self.fresh is False:
            limit = 1.5 * (self.playlist.target_duration if self.playlist else 0)
            shown = "unknown" if self.stale_for is None else f"{self.stale_for:.1f}s"
            return f"no new segment for {shown} (a live playlist must gain one within {limit:g}s)"
        if self.part_fresh is False:
            return f"no new LL-HLS part for {self.part_stale_for or 0:.1f}s"
        if self.inconsistencies:
            return self.inconsistencies[0]
        if self.regressed:
            return "a sequence number went backwards"
        return content_problem(self.content)


def _segment_status(segment: SegmentResponse) -> int | None:
    """A 206 answering a Range request is the success a 200 is for a whole file: reported as 200."""
    return 200 if segment.ok else segment.status


def _variant_summary(report: VariantReport) -> dict[str, Any]:
    summary: dict[str, Any] = {"variant": report.name, "playlist_status": report.playlist_status}
    if report.kind != "variant":
        summary["kind"] = report.kind
    if report.bandwidth is not None:
        summary["bandwidth"] = report.bandwidth
    problem = report.problem()
    if problem is not None:
        summary["failed"] = problem
    if report.error is not None:
        summary["error"] = report.error
        return summary
    playlist = report.playlist
    assert playlist is not None
    summary.update(
        media_sequence=playlist.media_sequence,
        discontinuity_sequence=playlist.discontinuity_sequence,
        target_duration=playlist.target_duration,
        segment_count=len(playlist.segments),
        window=round6(playlist.window),
        stale_for=round6(report.stale_for),
        fresh=report.fresh,
        sequence_advanced=report.advanced,
        pdt_drift=round6(report.pdt_drift),
        age_header=report.age,
        endlist=playlist.endlist,
        segments=[
            {"uri": seg.uri, "status": seg.status, "bytes": seg.size, "fetch": round6(seg.elapsed)}
            | ({"error": seg.error} if seg.error else {})
            | ({"range": True} if seg.ranged else {})
            for seg in report.segments
        ],
    )
    if playlist.low_latency:
        summary.update(
            part_target=playlist.part_target,
            part_stale_for=round6(report.part_stale_for),
            blocking_reload=round6(report.blocking_reload),
        )
    if report.content is not None:
        summary["content"] = report.content
    return summary


def summarize(
    reports: Sequence[VariantReport],
    *,
    master_status: int | None,
    broken: Sequence[str],
    segments_wanted: int,
    content_wanted: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics (worst over the variants) and details for one run."""
    variants = [report for report in reports if report.kind == "variant"]
    renditions = [report for report in reports if report.kind != "variant"]
    ok = [report for report in reports if report.error is None and report.playlist is not None]
    playlists = [report.playlist for report in ok if report.playlist is not None]
    statuses = [report.playlist_status for report in reports]
    if master_status is not None:
        statuses.insert(0, master_status)
    drifts = [report.pdt_drift for report in ok if report.pdt_drift is not None]
    ages = [report.age for report in ok if report.age is not None]
    stale = [report.stale_for for report in ok if report.stale_for is not None]
    metrics: dict[str, Any] = {
        "playlist_status": worst_status(statuses),
        "target_duration": max((p.target_duration for p in playlists), default=None),
        "segment_count": min((len(p.segments) for p in playlists), default=None),
        "media_sequence": min((p.media_sequence for p in playlists), default=None),
        "window": round6(min((p.window for p in playlists), default=None)),
        "age_header": max(ages) if ages else None,
        "stale_for": round6(max(stale) if stale else None),
        "fresh": all_true([report.fresh for report in ok]),
        "sequence_advanced": all_true([report.advanced for report in ok]),
        "sequence_regressed": any(report.regressed for report in ok),
        "consistent": not any(report.inconsistencies for report in ok),
        "pdt_drift": round6(max(drifts, key=abs) if drifts else None),
        "pdt_drift_abs": round6(max(abs(d) for d in drifts) if drifts else None),
        "endlist": any(p.endlist for p in playlists),
        "short_window": any(report.short_window for report in ok),
        "variants_total": len(variants) + len(broken),
        "variants_failed": sum(1 for report in variants if report.failed) + len(broken),
        "renditions_total": len(renditions),
        "renditions_failed": sum(1 for report in renditions if report.failed),
    }
    low_latency = [report for report in ok if report.playlist is not None and report.playlist.low_latency]
    if low_latency:
        part_stale = [r.part_stale_for for r in low_latency if r.part_stale_for is not None]
        reloads = [r.blocking_reload for r in low_latency if r.blocking_reload is not None]
        metrics.update(
            part_target=max(r.playlist.part_target or 0.0 for r in low_latency if r.playlist is not None),
            part_stale_for=round6(max(part_stale) if part_stale else None),
            blocking_reload=round6(max(reloads) if reloads else None),
        )
    metrics["part_fresh"] = all_true([report.part_fresh for report in low_latency])
    keys = [status for report in ok for status in report.key_statuses]
    if keys:
        metrics["key_status"] = worst_status(keys)
    contents = [report for report in ok if report.content is not None]
    if content_wanted:
        metrics.update(_content_metrics(contents))
    if segments_wanted > 0:
        fetched = [seg for report in ok for seg in report.segments]
        good = [seg for seg in fetched if seg.ok]
        times = [seg.elapsed for seg in good]
        newest = [report.segments[0].elapsed for report in ok if report.segments]
        ratios = [
            duration / seg.elapsed
            for report in ok
            for seg, duration in zip(report.segments, report.durations, strict=True)
            if seg.ok and seg.size > 0 and seg.elapsed > 0
        ]
        metrics.update(
            segment_status=worst_status([_segment_status(seg) for seg in fetched]),
            segment_fetch=round6(max(newest) if newest else None),
            segment_fetch_p50=round6(percentile(times, 0.50)),
            segment_fetch_p95=round6(percentile(times, 0.95)),
            segment_fetch_p99=round6(percentile(times, 0.99)),
            realtime_ratio=round6(min(ratios) if ratios else None),
            segment_bytes=min((seg.size for seg in fetched if seg.ok), default=None),
        )
    details: dict[str, Any] = {
        "inconsistencies": [report.prefix + reason for report in ok for reason in report.inconsistencies],
        "variants": [_variant_summary(report) for report in reports],
    }
    errors = [report.error for report in reports if report.error] + list(broken)
    errors += [report.prefix + failure for report in ok for failure in report.failures]
    errors += [
        report.prefix + f"segment {seg.uri}: {seg.error or f'HTTP {seg.status}'}"
        for report in ok
        for seg in report.segments
        if not seg.ok
    ]
    errors += [
        report.prefix + f"segment {seg.uri} is empty (0 bytes)"
        for report in ok
        for seg in report.segments
        if seg.ok and seg.size == 0
    ]
    if errors:
        details["errors"] = errors
    notes = [report.prefix + note for report in ok for note in report.notes]
    if notes:
        details["notes"] = notes
    return metrics, details


def _content_metrics(reports: Sequence[VariantReport]) -> dict[str, Any]:
    """The worst of each content metric over the decoded segments (video ones from variants only)."""
    found = [report.content or {} for report in reports]
    pictures = [report.content or {} for report in reports if report.kind == "variant"]

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
        "black_ratio": max(values("black_ratio"), default=None),
        "frozen": any(values("frozen")) if values("frozen") else None,
        "frozen_for": max(values("frozen_for"), default=None),
        "audio_level": min(values("audio_level"), default=None),
        "audio_silent": any(audio) if audio else None,
        "pts_gap": max(values("pts_gap"), default=None),
    }
    assert set(metrics) == set(_CONTENT_METRICS)
    return metrics
