"""One Result -> OpenTelemetry metric instruments, named and united as `/metrics` exports them.

Every numeric metric a probe declares an export for (`exports` in `prober.probes.registry`) is a gauge with
the same name as its Prometheus family (`probe_http_duration_seconds{phase="connect"}`), observed at each
export from the latest value, the family's fixed
labels as attributes, and its unit in UCUM (`s`, `By`, `d`; a collector's Prometheus exporter turns them back
into `_seconds`, `_bytes`, `_days` without doubling a suffix the name has). Besides: `probe_success`,
`probe_status`, `probe_duration_seconds` (gauges) and `prober_check_runs` (a counter per status, whose
temporality follows OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE). Attributes: check, type, location.

Values are computed exactly as `/metrics` computes them (`prober.api.metrics` decides, this only records).
It never records text (an info metric such as the TLS version is left out) and keeps no result.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.metrics import CallbackOptions, Counter, Meter, Observation

from prober.api.metrics import STATUS_VALUES, _exported_value, _exports_of
from prober.results import Result

__all__ = ["UCUM", "Instruments"]

UCUM = {"seconds": "s", "bytes": "By", "days": "d", "": ""}
"""Prometheus unit (an export's suffix) -> the OTel (UCUM) unit."""

_Key = tuple[tuple[str, str], ...]


class Instruments:
    """Observable gauges read at each export from the latest value per series (a dict write per value on the
    loop, so a result costs microseconds however often checks run); the run counter is synchronous."""

    def __init__(self, meter: Meter) -> None:
        self._meter = meter
        self._latest: dict[str, dict[_Key, float]] = {}
        self._gauge("probe_success", "", "1 if the latest run was not down (up or degraded), else 0")
        self._gauge("probe_status", "", "status of the latest run: 0 up, 1 degraded, 2 down")
        self._gauge("probe_duration_seconds", "s", "how long the latest run took, retries included")
        self.runs: Counter = meter.create_counter("prober_check_runs", unit="", description="check runs, by status")

    def _gauge(self, name: str, unit: str, description: str) -> dict[_Key, float]:
        series = self._latest.get(name)
        if series is None:
            series = self._latest[name] = {}

            def observe(options: CallbackOptions, series: dict[_Key, float] = series) -> Iterable[Observation]:
                return [Observation(value, dict(key)) for key, value in list(series.items())]

            self._meter.create_observable_gauge(name, callbacks=[observe], unit=unit, description=description)
        return series

    def record(self, result: Result) -> None:
        labels: _Key = (("check", result.check), ("type", result.type), ("location", result.location))
        self._latest["probe_success"][labels] = 0 if result.status == "down" else 1
        self._latest["probe_status"][labels] = STATUS_VALUES.get(result.status, 2)
        self._latest["probe_duration_seconds"][labels] = result.duration_ms / 1000
        self.runs.add(1, {**dict(labels), "status": result.status})
        exports = _exports_of(result.type)
        for metric, raw in result.metrics.items():
            for export, doc in exports.get(metric, ()):
                if export.kind == "info":
                    continue
                value = _exported_value(export, raw, result.metrics, result.started_at)
                if value is None:
                    continue
                series = self._latest.get(export.name)
                if series is None:
                    series = self._gauge(export.name, UCUM.get(export.unit, export.unit), doc)
                series[labels + export.labels if export.labels else labels] = value
