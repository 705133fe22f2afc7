"""The running OpenTelemetry export: spans through a bounded queue and a thread, metrics through the SDK's
periodic reader, both over OTLP/HTTP (protobuf) with drops counted in `dropped` (`prober_otel_dropped_total`).

`submit(result, target)` is called on the event loop once per result the process measured itself: it
records the metric instruments (a few microseconds) and queues the run for its spans (the thread builds,
encodes and sends them). Nothing here waits for the collector on the loop; `shutdown` (called in a worker
thread) flushes what is left within a few seconds. The resource says who measured: `service.name=prober`,
`service.instance.id`, `prober.location` (plus OTEL_RESOURCE_ATTRIBUTES).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

import prober
from prober.redact import LOG_SECRETS
from prober.results import Result
from prober.telemetry.instruments import Instruments
from prober.telemetry.queue import SpanQueue
from prober.telemetry.settings import TelemetrySettings
from prober.telemetry.spans import result_spans

__all__ = ["Exporter"]

log = logging.getLogger("prober.telemetry")


def _points(data: MetricsData) -> int:
    return sum(
        len(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    )


class _CountingMetricExporter(OTLPMetricExporter):
    """The OTLP metric exporter, counting the data points of every export that failed."""

    def __init__(self, on_drop: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_drop = on_drop

    def export(self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: Any) -> Any:
        try:
            result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception:
            log.debug("exporting metrics raised", exc_info=True)
            result = MetricExportResult.FAILURE
        if result != MetricExportResult.SUCCESS:
            self._on_drop(_points(metrics_data))
        return result


class Exporter:
    def __init__(self, settings: TelemetrySettings, *, location: str, instance_id: str) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._dropped = {"spans": 0, "metrics": 0}
        if settings.headers:
            LOG_SECRETS.add_secrets(value for value in settings.headers.values() if value)
        self.resource = Resource.create(
            {
                "service.name": "prober",
                "service.version": prober.__version__,
                "service.instance.id": instance_id,
                "prober.location": location,
            }
        )
        self.scope = InstrumentationScope("prober", prober.__version__)
        headers = dict(settings.headers) if settings.headers else None
        self.spans: SpanQueue | None = None
        if settings.traces:
            self._span_exporter = OTLPSpanExporter(endpoint=settings.traces_endpoint, headers=headers)
            self.spans = SpanQueue(
                self._export_runs,
                max_queue=settings.max_queue,
                batch_size=settings.batch_size,
                schedule_delay=settings.schedule_delay,
                on_drop=lambda count: self._drop("spans", count),
            )
        self.instruments: Instruments | None = None
        self._meters: MeterProvider | None = None
        if settings.metrics:
            metric_exporter = _CountingMetricExporter(
                lambda count: self._drop("metrics", count), endpoint=settings.metrics_endpoint, headers=headers
            )
            interval = None if settings.metrics_interval is None else settings.metrics_interval * 1000
            reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=interval)
            self._meters = MeterProvider(resource=self.resource, metric_readers=[reader])
            self.instruments = Instruments(self._meters.get_meter("prober", prober.__version__))

    @property
    def dropped(self) -> dict[str, int]:
        """Spans and metric data points that could not be queued or delivered, since the start."""
        with self._lock:
            return dict(self._dropped)

    def _drop(self, signal: str, count: int) -> None:
        with self._lock:
            self._dropped[signal] += count

    def submit(self, result: Result, target: str | None) -> None:
        """Record one result the process measured (on the loop; never waits)."""
        if self.instruments is not None:
            try:
                self.instruments.record(result)
            except Exception:  # a metric the SDK refuses must never cost the result
                log.debug("recording metrics raised", exc_info=True)
        if self.spans is not None and result.trace is not None:
            phases = len(result.timeline.phases) if result.timeline is not None else 0
            self.spans.put((result, target), 1 + phases)

    def _export_runs(self, runs: Sequence[tuple[Result, str | None]]) -> bool:
        spans = [span for result, target in runs for span in result_spans(result, target, self.resource, self.scope)]
        return self._span_exporter.export(spans) == SpanExportResult.SUCCESS

    def flush(self) -> None:
        """Send everything now (blocking: call it in a worker thread)."""
        if self.spans is not None:
            self.spans.flush()
        if self._meters is not None:
            self._meters.force_flush()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush and stop (blocking: call it in a worker thread)."""
        if self.spans is not None:
            self.spans.shutdown(timeout)
            self._span_exporter.shutdown()  # type: ignore[no-untyped-call]
        if self._meters is not None:
            self._meters.shutdown(timeout_millis=timeout * 1000)
