"""`GET /metrics`: the latest result of every check and location, and prober's own health, in the
Prometheus text format (or OpenMetrics when the scraper asks for it), built at scrape time.

Names follow blackbox_exporter where it has one, so its dashboards and alert rules carry over:
`probe_success`, `probe_duration_seconds`, `probe_http_status_code`, `probe_http_duration_seconds{phase}`,
`probe_http_redirects`, `probe_ssl_earliest_cert_expiry` (unix time: the tls check's `not_after`, or the
http check's start + `cert_days_remaining`), `probe_tls_version_info{version}`. Every other numeric or
boolean metric becomes `probe_<type>_<metric>` with its base unit as suffix (`_seconds`, `_bytes`; a metric in
days is exported in seconds, `probe_tls_cert_remaining_seconds`), so `promtool check metrics` passes;
websocket's prefix is `ws` (`probe_ws_open_latency_seconds`), and hls `stale_for` is
`probe_hls_stale_seconds`. Each probe declares these names next to its metrics (`exports`, see
`prober.probes.registry`); this module only reads the declarations, it knows no check type.
Ours besides: `probe_status` (0 up, 1 degraded, 2 down), `probe_last_run_timestamp_seconds`,
`probe_consecutive_down`, `probe_maintenance`; `prober_incident_open{check}`, `prober_schedule_lag_seconds`
(per check, latest), `prober_scheduler_lag_seconds` (a summary over all checks), `prober_scheduler_*`,
`prober_store_*`, `prober_notifications_failed_total{check,outcome}`.
Probe series carry the labels check, type and location.

A `ProbeCollector` turns one `MetricsSnapshot` into metric families; nothing is kept in global gauges,
so a check that disappears from the configuration disappears from /metrics. Only metric names a probe
declares are exported (an agent cannot create arbitrary series). It never exports strings other than the
TLS version, and never a URL, header or error text.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from prober.agent import PushStats
from prober.daemon.health import Runtime
from prober.probes import PROBES
from prober.probes.registry import Export, standard_name
from prober.scheduling.stats import LagSummary, SchedulerStats
from prober.store import CurrentState, WriterStats

__all__ = ["STATUS_VALUES", "MetricsSnapshot", "ProbeCollector", "family_name", "render"]

LABELS = ["check", "type", "location"]
STATUS_VALUES = {"up": 0, "degraded": 1, "down": 2}
FAILED_OUTCOMES = ("failed", "abandoned", "dropped")
_SAFE = re.compile(r"[^a-zA-Z0-9_]")


def family_name(check_type: str, metric: str, unit: str) -> str:
    """The exported name of a probe metric, as its probe declares it (`exports`), or the standard
    `probe_<type>_<metric><unit suffix>` for a metric no probe declares."""
    probe = PROBES.get(check_type)
    declared = probe.exports.get(metric, ()) if probe is not None else ()
    gauges = [export for export in declared if export.kind == "gauge" and not export.labels]
    if gauges:
        return gauges[0].name
    return _SAFE.sub("_", standard_name(check_type, metric, unit))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _exported_value(export: Export, raw: Any, metrics: dict[str, Any], started_at: datetime) -> float | None:
    """The sample value of one declared export, or None when the metric's value does not fit it."""
    if export.kind == "timestamp":
        return _parse_time(raw)
    if export.kind == "info":
        return 1.0 if isinstance(raw, str) and raw else None
    value = _number(raw)
    if value is None:
        return None
    if export.kind == "days_until":
        return started_at.timestamp() + value * 86400
    if export.minus:
        return max(0.0, value - sum(_number(metrics.get(name)) or 0.0 for name in export.minus))
    return value * export.scale


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(slots=True)
class MetricsSnapshot:
    """Everything one scrape exports, read once (the store in a worker thread, the scheduler in the loop)."""

    states: list[CurrentState]
    types: dict[str, str]
    """check → type, from the configuration (a check's state may predate a type change)."""
    location: str
    maintenance: set[str] = field(default_factory=set)
    open_incidents: list[str] = field(default_factory=list)
    scheduler: SchedulerStats | None = None
    failed_notifications: dict[tuple[str, str], int] = field(default_factory=dict)
    store_stats: WriterStats | None = None
    store_queued: int = 0
    push: dict[str, PushStats] | None = None
    """An agent's push counters by hub address (None on a hub)."""
    runtime: Runtime | None = None
    """The daemon's own health: event-loop lag, background-task restarts."""


class _Families:
    """Gauge families by name, created on first use with the probe labels (plus extra ones)."""

    def __init__(self) -> None:
        self.items: dict[str, GaugeMetricFamily] = {}

    def add(
        self,
        name: str,
        doc: str,
        labels: list[str],
        value: float,
        extra: list[str] | None = None,
        extra_names: tuple[str, ...] = (),
    ) -> None:
        family = self.items.get(name)
        if family is None:
            names = [*LABELS, *extra_names]
            family = self.items[name] = GaugeMetricFamily(name, doc, labels=names)
        family.add_metric([*labels, *(extra or [])], value)


@functools.cache
def _exports_of(check_type: str) -> dict[str, list[tuple[Export, str]]]:
    """metric -> [(export, help)] for each metric the type's probe declares an export for. Per type, on first
    need: a hub of http checks never imports the browser or HLS probes (Playwright, PyAV) to be scraped."""
    probe = PROBES.get(check_type)
    if probe is None:
        return {}
    found: dict[str, list[tuple[Export, str]]] = {}
    for metric, exports in probe.exports.items():
        spec = probe.metrics.get(metric)
        doc = spec.description if spec is not None else metric
        if exports:
            found[metric] = [(export, export.help or doc) for export in exports]
    return found


class ProbeCollector(Collector):
    """Yields the metric families of one snapshot (a fresh collector per scrape)."""

    def __init__(self, snapshot: MetricsSnapshot) -> None:
        self.snapshot = snapshot

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        families = _Families()
        for state in snap.states:
            check_type = snap.types.get(state["check"], state["type"])
            labels = [state["check"], check_type, state["location"]]
            self._state(families, state, check_type, labels)
        yield from families.items.values()
        yield from self._own()

    def _state(self, families: _Families, state: CurrentState, check_type: str, labels: list[str]) -> None:
        snap = self.snapshot
        status = state["status"]
        families.add("probe_success", "1 if the latest run was not down (up or degraded), else 0", labels,
                     0.0 if status == "down" else 1.0)  # fmt: skip
        families.add("probe_status", "status of the latest run: 0 up, 1 degraded, 2 down", labels,
                     float(STATUS_VALUES.get(status, 2)))  # fmt: skip
        families.add("probe_duration_seconds", "how long the latest run took, retries included", labels,
                     state["duration_ms"] / 1000)  # fmt: skip
        families.add("probe_last_run_timestamp_seconds", "when the latest run started (unix time)", labels,
                     state["started_at"].timestamp())  # fmt: skip
        families.add("probe_consecutive_down", "down runs in a row up to the latest", labels,
                     float(state["consecutive_down"]))  # fmt: skip
        families.add("probe_maintenance", "1 while a maintenance window covers the check", labels,
                     1.0 if state["check"] in snap.maintenance else 0.0)  # fmt: skip
        metrics = state["metrics"]
        exports = _exports_of(check_type)
        for metric, raw in metrics.items():
            for export, doc in exports.get(metric, ()):
                value = _exported_value(export, raw, metrics, state["started_at"])
                if value is None:
                    continue
                extra = [label_value for _, label_value in export.labels]
                if export.info_label:
                    extra.append(str(raw))
                families.add(export.name, doc, labels, value, extra, export.label_names())

    def _own(self) -> Iterator[Metric]:
        snap = self.snapshot
        incidents = GaugeMetricFamily(
            "prober_incident_open", "1 for every check with an open incident", labels=["check"]
        )
        for check in sorted(set(snap.open_incidents)):
            incidents.add_metric([check], 1.0)
        yield incidents
        failed = CounterMetricFamily(
            "prober_notifications_failed",
            "notifications that were never delivered (outcome failed, abandoned or dropped), counted in the "
            "database as they are recorded",
            labels=["check", "outcome"],
        )
        for (check, outcome), count in sorted(snap.failed_notifications.items()):
            failed.add_metric([check, outcome], float(count))
        yield failed
        yield _ingest_rejected()
        yield _connections_refused()
        yield GaugeMetricFamily("prober_checks_configured", "checks in the configuration", value=len(snap.types))
        if snap.store_stats is not None:
            stats = snap.store_stats
            yield CounterMetricFamily("prober_store_results", "results committed", value=stats.results)
            yield CounterMetricFamily("prober_store_duplicates", "results ignored as already stored",
                                      value=stats.duplicates)  # fmt: skip
            yield CounterMetricFamily("prober_store_commits", "transactions committed", value=stats.commits)
            yield GaugeMetricFamily("prober_store_queued", "write operations waiting for the writer",
                                    value=snap.store_queued)  # fmt: skip
        if snap.scheduler is not None:
            yield from _scheduler_families(snap.scheduler, snap.types, snap.location)
        if snap.push is not None:
            yield from _push_families(snap.push)
        if snap.runtime is not None:
            yield from _runtime_families(snap.runtime)


def _runtime_families(runtime: Runtime) -> Iterator[Metric]:
    lag = runtime.loop_lag
    yield HistogramMetricFamily(
        "prober_event_loop_lag_seconds",
        "how much later than asked the event loop woke a timer: how long something held the loop",
        buckets=lag.cumulative(),
        sum_value=lag.total,
    )
    restarts = CounterMetricFamily(
        "prober_task_restarts", "background tasks restarted after an unexpected error", labels=["task"]
    )
    for task, count in sorted(runtime.task_restarts.items()):
        restarts.add_metric([task], float(count))
    yield restarts
    if runtime.otel_dropped is not None:
        dropped = CounterMetricFamily(
            "prober_otel_dropped",
            "OpenTelemetry spans and metric data points dropped: the export queue was full or the collector "
            "did not take them",
            labels=["signal"],
        )
        for signal, count in sorted(runtime.otel_dropped().items()):
            dropped.add_metric([signal], float(count))
        yield dropped


def _push_families(push: dict[str, PushStats]) -> Iterator[Metric]:
    for name, doc, field_name in (
        ("prober_push_results", "results the hub confirmed", "sent"),
        ("prober_push_duplicates", "confirmed results the hub already had", "duplicates"),
        ("prober_push_batches", "batches the hub confirmed", "batches"),
        ("prober_push_failures", "push attempts that failed (the batch is retried)", "failed_attempts"),
        ("prober_push_rejected", "results the hub refused by name, set aside and never sent again", "rejected"),
    ):
        family = CounterMetricFamily(name, f"{doc}, by hub", labels=["hub"])
        for hub, stats in sorted(push.items()):
            family.add_metric([hub], float(getattr(stats, field_name)))
        yield family


def _connections_refused() -> Metric:
    from prober.api.connections import REFUSED

    family = CounterMetricFamily(
        "prober_api_connections_refused",
        "API connections refused or closed before being served, by reason (limit, descriptors, evicted, "
        "header_timeout)",
        labels=["reason"],
    )
    for reason, count in sorted(REFUSED.items()):
        family.add_metric([reason], float(count))
    return family


def _ingest_rejected() -> Metric:
    from prober.api.ingest import REJECTED

    family = CounterMetricFamily(
        "prober_ingest_rejected", "ingest batches refused by this hub, by reason", labels=["reason"]
    )
    for reason, count in sorted(REJECTED.items()):
        family.add_metric([reason], float(count))
    return family


def _scheduler_families(stats: SchedulerStats, types: dict[str, str], location: str) -> Iterator[Metric]:
    lag = GaugeMetricFamily(
        "prober_schedule_lag_seconds", "how late the latest run of the check started", labels=LABELS
    )
    for name, check in sorted(stats.checks.items()):
        if check.last_lag is not None:
            lag.add_metric([name, types.get(name, check.type), location], check.last_lag)
    yield lag
    yield _lag_summary(stats.lag)
    if stats.lag.max is not None:
        yield GaugeMetricFamily(
            "prober_scheduler_lag_max_seconds", "the longest start lag of any run since the daemon started",
            value=stats.lag.max,
        )  # fmt: skip
    for name, doc, value in (
        ("prober_scheduler_runs", "runs started", stats.runs),
        ("prober_scheduler_errors", "runs that raised", stats.errors),
        ("prober_scheduler_skipped", "slots skipped because the previous run was still going", stats.skipped),
        ("prober_scheduler_missed", "slots that went by during a stall and were not replayed", stats.missed),
    ):
        yield CounterMetricFamily(name, doc, value=value)
    yield GaugeMetricFamily("prober_scheduler_in_flight", "runs in progress", value=stats.in_flight)
    yield GaugeMetricFamily("prober_scheduler_waiting", "runs due and waiting for a slot", value=stats.waiting)


def _lag_summary(lag: LagSummary) -> Metric:
    """How late runs start, as a summary: quantiles over the recent runs of all checks, count and sum over
    all runs since the daemon started (as a client library's summary keeps them)."""
    name = "prober_scheduler_lag_seconds"
    family = Metric(name, "how late runs of all checks started (quantiles over the recent runs)", "summary")
    for quantile, value in (("0.5", lag.p50), ("0.99", lag.p99)):
        family.add_sample(name, {"quantile": quantile}, math.nan if value is None else value)
    family.add_sample(name + "_count", {}, float(lag.count))
    family.add_sample(name + "_sum", {}, lag.total)
    return family


def render(snapshot: MetricsSnapshot, accept: str) -> tuple[bytes, str]:
    """The exposition of one snapshot in the format the Accept header asks for: (body, content type)."""
    from prometheus_client.exposition import choose_encoder

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProbeCollector(snapshot))
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
