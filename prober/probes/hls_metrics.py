"""The hls check's metric names and how per-variant findings become one set of metrics (the worst).

`VariantReport` is what the probe found about one variant; `summarize` folds the reports into the
metrics of SPEC.md §2 (each the worst over the variants checked) and the per-variant summaries kept in
the result's details. Pure: no I/O, no clock, no judging (conditions judge the metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prober.conditions import MetricSpec
from prober.probes.hls_fetch import SegmentResponse
from prober.probes.hls_playlist import MediaPlaylist
from prober.stats import percentile

__all__ = ["METRICS", "VariantReport", "percentile", "summarize"]

METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("playlist_status", "HTTP status of the playlists (master and variants), the worst"),
        MetricSpec("segment_status", "HTTP status of the downloaded segments, the worst (null: no answer)"),
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
        MetricSpec("endlist", "a playlist has EXT-X-ENDLIST"),
        MetricSpec("short_window", "a live sliding window lists less than 3 x the target duration (RFC 8216 6.2.2)"),
        MetricSpec("variants_total", "variants checked (plus unusable EXT-X-STREAM-INF entries)"),
        MetricSpec("variants_failed", "variants whose playlist could not be fetched or read"),
    )
}


@dataclass(slots=True)
class VariantReport:
    """What one run found about one variant (or about the single media playlist of a media URL)."""

    name: str
    bandwidth: int | None = None
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


def _worst_status(values: Sequence[int | None]) -> int | None:
    """200 is fine; any other code is worse, no answer (None) is worst of all."""
    if not values:
        return None
    return max(values, key=lambda status: (2, 0) if status is None else (int(status != 200), status))


def _all_true(values: Sequence[bool | None]) -> bool | None:
    known = [value for value in values if value is not None]
    if not known:
        return None
    return all(known)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _variant_summary(report: VariantReport) -> dict[str, Any]:
    summary: dict[str, Any] = {"variant": report.name, "playlist_status": report.playlist_status}
    if report.bandwidth is not None:
        summary["bandwidth"] = report.bandwidth
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
        window=_round(playlist.window),
        stale_for=_round(report.stale_for),
        fresh=report.fresh,
        sequence_advanced=report.advanced,
        pdt_drift=_round(report.pdt_drift),
        age_header=report.age,
        endlist=playlist.endlist,
        segments=[
            {"uri": seg.uri, "status": seg.status, "bytes": seg.size, "fetch": _round(seg.elapsed)}
            | ({"error": seg.error} if seg.error else {})
            for seg in report.segments
        ],
    )
    return summary


def summarize(
    reports: Sequence[VariantReport], *, master_status: int | None, broken: Sequence[str], segments_wanted: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics (worst over the variants) and details for one run."""
    ok = [report for report in reports if report.error is None and report.playlist is not None]
    playlists = [report.playlist for report in ok if report.playlist is not None]
    statuses = [report.playlist_status for report in reports]
    if master_status is not None:
        statuses.insert(0, master_status)
    drifts = [report.pdt_drift for report in ok if report.pdt_drift is not None]
    ages = [report.age for report in ok if report.age is not None]
    stale = [report.stale_for for report in ok if report.stale_for is not None]
    metrics: dict[str, Any] = {
        "playlist_status": _worst_status(statuses),
        "target_duration": max((p.target_duration for p in playlists), default=None),
        "segment_count": min((len(p.segments) for p in playlists), default=None),
        "media_sequence": min((p.media_sequence for p in playlists), default=None),
        "window": _round(min((p.window for p in playlists), default=None)),
        "age_header": max(ages) if ages else None,
        "stale_for": _round(max(stale) if stale else None),
        "fresh": _all_true([report.fresh for report in ok]),
        "sequence_advanced": _all_true([report.advanced for report in ok]),
        "sequence_regressed": any(report.regressed for report in ok),
        "consistent": not any(report.inconsistencies for report in ok),
        "pdt_drift": _round(max(drifts, key=abs) if drifts else None),
        "pdt_drift_abs": _round(max(abs(d) for d in drifts) if drifts else None),
        "endlist": any(p.endlist for p in playlists),
        "short_window": any(report.short_window for report in ok),
        "variants_total": len(reports) + len(broken),
        "variants_failed": len(reports) - len(ok) + len(broken),
    }
    if segments_wanted > 0:
        fetched = [seg for report in ok for seg in report.segments]
        good = [seg for seg in fetched if seg.status == 200 and seg.error is None]
        times = [seg.elapsed for seg in good]
        newest = [report.segments[0].elapsed for report in ok if report.segments]
        ratios = [
            duration / seg.elapsed
            for report in ok
            for seg, duration in zip(report.segments, report.durations, strict=True)
            if seg.status == 200 and seg.error is None and seg.size > 0 and seg.elapsed > 0
        ]
        metrics.update(
            segment_status=_worst_status([seg.status for seg in fetched]),
            segment_fetch=_round(max(newest) if newest else None),
            segment_fetch_p50=_round(percentile(times, 0.50)),
            segment_fetch_p95=_round(percentile(times, 0.95)),
            segment_fetch_p99=_round(percentile(times, 0.99)),
            realtime_ratio=_round(min(ratios) if ratios else None),
            segment_bytes=min((seg.size for seg in fetched if seg.status == 200), default=None),
        )
    prefix = len(reports) > 1 or master_status is not None
    details: dict[str, Any] = {
        "inconsistencies": [
            (f"variant {report.name}: " if prefix else "") + reason
            for report in ok
            for reason in report.inconsistencies
        ],
        "variants": [_variant_summary(report) for report in reports],
    }
    errors = [report.error for report in reports if report.error] + list(broken)
    errors += [
        (f"variant {report.name}: " if prefix else "") + f"segment {seg.uri}: {seg.error or f'HTTP {seg.status}'}"
        for report in ok
        for seg in report.segments
        if seg.error or seg.status != 200
    ]
    errors += [
        (f"variant {report.name}: " if prefix else "") + f"segment {seg.uri} is empty (0 bytes)"
        for report in ok
        for seg in report.segments
        if seg.status == 200 and seg.size == 0
    ]
    if errors:
        details["errors"] = errors
    notes = [(f"variant {report.name}: " if prefix else "") + note for report in ok for note in report.notes]
    if notes:
        details["notes"] = notes
    return metrics, details
