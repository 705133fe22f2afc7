"""One check's page data (`GET /api/v1/checks/NAME`, drawn by `/checks/NAME`): the check's part of the status
feed (status, reason, locations, uptime, open incident) plus what only its own page shows:

- `chart`: per UTC hour of the last 30 days, result and down counts and latency p50/p95 estimated from
  the hourly rollups' histogram (summed over locations), and the raw results of the last RAW_HOURS hours
  as points, so a page can draw 24 h, 7 d and 30 d from one answer;
- `days`: daily uptime for the last 90 days (the bars); `locations`: per-location status with uptime
  over 24 h and 30 d;
- `headline`: the latest values of the metrics that matter for the check's type (HEADLINE);
- `screenshot`: the newest screenshot of a browser check, if one is kept; `failures`: recent down
  results with their errors; `incidents`: the check's incidents with their durations; the announcements
  about it (and those about the whole page).

Everything is read with a handful of indexed single-check queries (store/check_queries.py): about 20 ms
for a check with 30 days of one-minute results, most of it the 720 hourly rows. It only reads; every
string that came from a probe passes through the configuration's Scrubber, and artifact paths are cut
to their file names.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import accumulate
from pathlib import Path, PurePath
from typing import Any

from prober.api.feed import FEED_VERSION, incident_json
from prober.api.secrets import Scrubber
from prober.probes import PROBES
from prober.results import format_timestamp
from prober.store import ReadOnlyStore
from prober.store.check_queries import HourRow
from prober.store.rollups import BUCKET_BOUNDS, hour_floor

__all__ = ["ARTIFACT_NAME", "CHART_DAYS", "HEADLINE", "RAW_HOURS", "CheckPage", "artifact_path", "headline_of"]

CHART_DAYS = 30
RAW_HOURS = 6
MAX_RAW_POINTS = 1500
BAR_DAYS = 90
MAX_FAILURES = 20
MAX_INCIDENTS = 20
MAX_KEPT_HOURS = 200_000
ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.png$")

PAGE_UNITS = frozenset({"s", "days", "ratio", "time", "ago"})

HEADLINE: dict[str, tuple[tuple[str, str, str], ...]] = {
    "http": (
        ("latency", "Latency", "s"),
        ("status", "HTTP status", ""),
        ("ttfb", "Time to first byte", "s"),
        ("cert_days_remaining", "Certificate days left", "days"),
    ),
    "tls": (
        ("days_remaining", "Days remaining", "days"),
        ("not_after", "Expires", "time"),
        ("tls_version", "Protocol", ""),
        ("handshake", "Handshake", "s"),
    ),
    "hls": (
        ("stale_for", "Stale for", "s"),
        ("pdt_drift", "PDT drift", "s"),
        ("segment_fetch_p95", "Segment fetch p95", "s"),
        ("segment_fetch", "Segment fetch", "s"),
        ("variants_failed", "Variants failed", ""),
    ),
    "flv": (
        ("first_keyframe", "First keyframe", "s"),
        ("timestamp_rate", "Timestamp pace", ""),
        ("stalled_for", "Stalled for", "s"),
        ("video_fps", "Frames per second", ""),
    ),
    "rtmp": (
        ("first_keyframe", "First keyframe", "s"),
        ("timestamp_rate", "Timestamp pace", ""),
        ("stalled_for", "Stalled for", "s"),
        ("video_fps", "Frames per second", ""),
    ),
    "websocket": (
        ("success_rate", "Success rate", "ratio"),
        ("open_latency_p95", "Open latency p95", "s"),
        ("open_latency", "Open latency", "s"),
    ),
    "heartbeat": (
        ("last_ping", "Last ping", "ago"),
        ("overdue", "Overdue by", "s"),
        ("last_duration", "Last run took", "s"),
        ("exit_code", "Exit code", ""),
    ),
    "browser": (
        ("lcp", "Largest contentful paint", "s"),
        ("cls", "Cumulative layout shift", ""),
        ("load", "Load", "s"),
        ("page_errors", "Page errors", ""),
    ),
    "tcp": (
        ("connect", "Connect", "s"),
        ("response", "Response", "s"),
        ("banner", "Banner", ""),
        ("cert_days_remaining", "Certificate days left", "days"),
    ),
    "dns": (
        ("rcode", "Response code", ""),
        ("latency", "Lookup time", "s"),
        ("answer_count", "Answers", ""),
        ("ttl_min", "Lowest TTL", "s"),
    ),
    "icmp": (
        ("rtt_avg", "Round trip", "s"),
        ("loss", "Packet loss", "ratio"),
        ("resolved_ip", "Address", ""),
    ),
    "grpc": (
        ("serving_status", "Serving status", ""),
        ("latency", "Latency", "s"),
        ("status_code", "gRPC status code", ""),
    ),
}
"""Per check type, the metrics its page shows first: (metric, label, unit). Units: s (seconds), days,
ratio (0..1), time (ISO 8601), ago (ISO 8601, shown as "3h ago"), or none. Optional: a type without an entry
shows its registry `headline` (headline_of), so a new check type needs no line here."""


def headline_of(kind: str) -> tuple[tuple[str, str, str], ...]:
    """The page's headline metrics of a check type: HEADLINE's, else the probe's own `headline` with each
    metric's unit (`s` and `days` read as on the page; other units are shown as plain values)."""
    if kind in HEADLINE:
        return HEADLINE[kind]
    probe = PROBES.get(kind)
    if probe is None:
        return ()
    return tuple(
        (
            metric,
            metric.replace("_", " ").capitalize(),
            unit if (unit := probe.metrics[metric].unit) in PAGE_UNITS else "",
        )
        for metric in probe.headline
        if metric in probe.metrics
    )


def _percentiles(buckets: tuple[int, ...], low: float, high: float) -> tuple[float | None, float | None]:
    """p50 and p95 from an hour's histogram, as rollups.estimate_percentiles computes them (linear inside
    the bucket holding the rank, edges narrowed to the observed min and max), with the bucket found by
    bisecting the cumulative counts: the chart needs 720 of these per answer."""
    cumulative = list(accumulate(buckets))
    total = cumulative[-1] if cumulative else 0
    if not total:
        return None, None
    found: list[float] = []
    for percentile in (50, 95):
        rank = percentile / 100 * total
        index = min(bisect_left(cumulative, rank), len(buckets) - 1)
        below = cumulative[index - 1] if index else 0
        lower = max(BUCKET_BOUNDS[index - 1] if index else 0.0, low)
        upper = min(BUCKET_BOUNDS[index], high)
        count = buckets[index] or 1
        found.append(min(max(lower + (upper - lower) * (rank - below) / count, low), high))
    return found[0], found[1]


def _ts(moment: datetime | None) -> str | None:
    return None if moment is None else format_timestamp(moment)


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def _headline_value(value: Any, unit: str, scrub: Scrubber) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return round(float(value), 6) if isinstance(value, float) else value
    if isinstance(value, str):
        return scrub.text(value)[:200]
    return None


def artifact_path(directory: Path | None, name: str) -> Path | None:
    """The file `name` in the artifacts directory, when the name is a plain PNG file name and it exists."""
    if directory is None or not ARTIFACT_NAME.match(name):
        return None
    path = directory / name
    return path if path.is_file() else None


class CheckPage:
    """Builds the answer of `GET /api/v1/checks/NAME` (blocking: call `build` in a worker thread)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self._percentiles: OrderedDict[tuple[str, str], tuple[int, float, float | None, float | None]] = OrderedDict()
        """(check, hour) → (count, latency_sum, p50, p95): past hours do not change, so their estimates are
        kept (recomputed when a late result changes the hour's count or sum)."""
        self._lock = threading.Lock()

    def build(
        self,
        store: ReadOnlyStore,
        feed: dict[str, Any],
        check: dict[str, Any],
        scrub: Scrubber,
        *,
        raw_retention: float,
    ) -> dict[str, Any]:
        now = self.clock()
        name = check["name"]
        return {
            "version": FEED_VERSION,
            "generated_at": _ts(now),
            "title": feed["title"],
            "check": check,
            "chart": self._chart(store, name, now),
            "days": self._days(store, name, now),
            "locations": self._locations(store, name, check, now),
            "headline": self._headline(store, name, check["type"], scrub),
            "screenshot": self._screenshot(store, name, check["type"], now, raw_retention),
            "failures": [
                {
                    "id": item.id,
                    "started_at": _ts(item.started_at),
                    "location": item.location,
                    "duration_ms": round(item.duration_ms, 3),
                    "error": scrub.optional(item.error),
                }
                for item in store.failed_results(name, now - timedelta(seconds=raw_retention), MAX_FAILURES)
            ],
            "incidents": [incident_json(item, scrub, now) for item in store.incidents(MAX_INCIDENTS, check=name)],
            "announcements": [
                item for item in feed.get("announcements", []) if not item["checks"] or name in item["affected"]
            ],
        }

    def _hour_percentiles(self, name: str, row: HourRow) -> tuple[float | None, float | None]:
        key = (name, row.hour)
        known = self._percentiles.get(key)
        if known is not None and known[0] == row.count and known[1] == row.latency_sum:
            return known[2], known[3]
        p50, p95 = _percentiles(row.buckets, row.latency_min, row.latency_max)
        self._percentiles[key] = (row.count, row.latency_sum, _round(p50), _round(p95))
        if len(self._percentiles) > MAX_KEPT_HOURS:
            self._percentiles.popitem(last=False)
        return _round(p50), _round(p95)

    def _chart(self, store: ReadOnlyStore, name: str, now: datetime) -> dict[str, Any]:
        first_hour = hour_floor(now) - timedelta(days=CHART_DAYS) + timedelta(hours=1)
        hours = []
        kept = self._percentiles

        def unknown(hour: str, count: int, latency_sum: float) -> bool:
            known = kept.get((name, hour))
            return known is None or known[0] != count or known[1] != latency_sum

        # the histogram columns are read only for hours whose estimates are not kept (held under the lock,
        # so no other request evicts one between the question and the answer)
        with self._lock:
            rows = store.hourly_rows(name, first_hour, buckets_for=unknown)
            estimates = [self._hour_percentiles(name, row) for row in rows]
        for row, (p50, p95) in zip(rows, estimates, strict=True):
            hours.append(
                {
                    "t": row.hour,
                    "count": row.count,
                    "down": row.down,
                    "degraded": row.degraded,
                    "p50": p50,
                    "p95": p95,
                    "max": _round(row.latency_max),
                }
            )
        raw_since = now - timedelta(hours=RAW_HOURS)
        points = [
            {"t": point.started_at, "latency": round(point.latency, 6), "status": point.status,
             "location": point.location}
            for point in store.raw_points(name, raw_since, MAX_RAW_POINTS)
        ]  # fmt: skip
        return {
            "from": _ts(first_hour),
            "hours": hours,
            "raw_from": _ts(raw_since),
            "raw": points,
        }

    @staticmethod
    def _days(store: ReadOnlyStore, name: str, now: datetime) -> list[dict[str, Any]]:
        today = now.date()
        first = today - timedelta(days=BAR_DAYS - 1)
        values = store.daily_uptime(name, first)
        days = [first + timedelta(days=offset) for offset in range(BAR_DAYS)]
        return [{"day": day.isoformat(), "uptime": _round(values.get(day), 3)} for day in days]

    @staticmethod
    def _locations(store: ReadOnlyStore, name: str, check: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
        day = store.location_uptime(name, now - timedelta(days=1))
        month = store.location_uptime(name, now - timedelta(days=CHART_DAYS))

        def percent(counts: tuple[int, int] | None) -> float | None:
            if not counts or not counts[0]:
                return None
            return round(100.0 * (counts[0] - counts[1]) / counts[0], 4)

        return [
            {
                **item,
                "uptime_24h": percent(day.get(item["location"])),
                "uptime_30d": percent(month.get(item["location"])),
            }
            for item in check["locations"]
        ]

    @staticmethod
    def _headline(store: ReadOnlyStore, name: str, kind: str, scrub: Scrubber) -> list[dict[str, Any]]:
        states = store.current(name)
        found = []
        for metric, label, unit in headline_of(kind):
            values = [
                {"location": state["location"], "value": _headline_value(state["metrics"].get(metric), unit, scrub)}
                for state in states
                if state["metrics"].get(metric) is not None
            ]
            if values:
                found.append({"metric": metric, "label": label, "unit": unit, "values": values})
        return found

    @staticmethod
    def _screenshot(
        store: ReadOnlyStore, name: str, kind: str, now: datetime, raw_retention: float
    ) -> dict[str, Any] | None:
        if kind != "browser":
            return None
        newest = store.newest_artifacts(name, now - timedelta(seconds=raw_retention))
        if newest is None:
            return None
        at, paths = newest
        files = [PurePath(path).name for path in paths if ARTIFACT_NAME.match(PurePath(path).name)]
        if not files:
            return None
        return {"at": _ts(at), "file": files[0], "url": f"api/v1/checks/{name}/artifacts/{files[0]}"}
