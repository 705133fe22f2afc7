"""Whether telemetry is on and where it goes: the top-level `telemetry:` block merged with the standard
`OTEL_*` variables (the block wins where it says something). Plain data; imports no OpenTelemetry and
opens no socket.

Telemetry is on when the configuration has a `telemetry:` block, or when OTEL_EXPORTER_OTLP_ENDPOINT (or a
per-signal OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / _METRICS_ENDPOINT) is set. OTEL_SDK_DISABLED=true turns it
off whatever the block says; OTEL_TRACES_EXPORTER=none and OTEL_METRICS_EXPORTER=none turn one signal off.
Whatever the exporter's own library reads from the environment (timeouts, compression, certificates,
OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE) applies as documented by OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from prober.config.models import TelemetryConfig

__all__ = ["TelemetrySettings", "TelemetryUnavailable", "telemetry_settings"]

_ENDPOINT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)


class TelemetryUnavailable(RuntimeError):
    """Telemetry is configured but cannot start (OpenTelemetry is not installed); `str()` says what to do."""


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """What the exporter needs. None fields: the OpenTelemetry library's own default (its OTEL_* variables)."""

    traces: bool = True
    metrics: bool = True
    traces_endpoint: str | None = None
    metrics_endpoint: str | None = None
    headers: Mapping[str, str] | None = field(default=None, repr=False)  # an API key: never in a log line
    metrics_interval: float | None = None
    max_queue: int = 2048
    """Spans waiting for export at most; more are dropped (and counted), never waited for."""
    batch_size: int = 512
    schedule_delay: float = 2.0
    """Seconds the export thread waits for a batch to fill before sending what it has."""


def _off(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() == "none"


def telemetry_settings(block: TelemetryConfig | None, env: Mapping[str, str]) -> TelemetrySettings | None:
    """The settings, or None when telemetry is off (no block, no endpoint variable, or disabled)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if block is None and not any(env.get(name) for name in _ENDPOINT_VARIABLES):
        return None
    block = block or TelemetryConfig()
    traces = block.traces and not _off(env, "OTEL_TRACES_EXPORTER")
    metrics = block.metrics and not _off(env, "OTEL_METRICS_EXPORTER")
    if not traces and not metrics:
        return None
    base = block.endpoint.rstrip("/") if block.endpoint else None
    interval = block.metrics_interval
    if interval is None:
        raw = env.get("OTEL_METRIC_EXPORT_INTERVAL", "").strip()
        interval = float(raw) / 1000 if raw.isdigit() and int(raw) > 0 else None
    return TelemetrySettings(
        traces=traces,
        metrics=metrics,
        traces_endpoint=f"{base}/v1/traces" if base else None,
        metrics_endpoint=f"{base}/v1/metrics" if base else None,
        headers=dict(block.headers) or None,
        metrics_interval=interval,
    )
