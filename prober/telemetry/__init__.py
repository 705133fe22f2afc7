"""OpenTelemetry export of what prober measures: one span per check run (its phases as child spans) and every
numeric probe metric as an OTel instrument, sent over OTLP/HTTP (protobuf) to a collector.

    settings = telemetry_settings(config.telemetry, os.environ)    # None: telemetry is off
    exporter = start_exporter(settings, location="eu", instance_id="...")   # needs prober[otel]
    exporter.submit(result)      # from the event loop: O(1), never waits for the network
    exporter.dropped             # {"spans": n, "metrics": n}: what could not be queued or delivered
    exporter.shutdown()          # flush what is queued, in a worker thread

This package imports OpenTelemetry only in `start_exporter`; without the `otel` extra that call raises
`TelemetryUnavailable` with the one sentence to act on. It never blocks probing (a bounded queue drained by
a thread; drops are counted, never waited for), never exports a secret (every string passes the same
redaction wall as results and logs), and never exports a result it did not measure itself (an agent
exports its own runs; a hub does not re-export what agents push).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prober.telemetry.settings import TelemetrySettings, TelemetryUnavailable, telemetry_settings

if TYPE_CHECKING:  # importing it at run time would import OpenTelemetry
    from prober.telemetry.exporter import Exporter

__all__ = ["TelemetrySettings", "TelemetryUnavailable", "start_exporter", "telemetry_settings"]


def start_exporter(settings: TelemetrySettings, *, location: str, instance_id: str) -> Exporter:
    """Build and start the exporter (imports OpenTelemetry; raises TelemetryUnavailable without it)."""
    try:
        from prober.telemetry.exporter import Exporter
    except ImportError as exc:
        raise TelemetryUnavailable(
            "telemetry is configured (a `telemetry:` block or OTEL_EXPORTER_OTLP_* variables) but OpenTelemetry "
            f"is not installed ({exc.name} is missing): install it with `pip install 'prober[otel]'`"
        ) from None
    return Exporter(settings, location=location, instance_id=instance_id)
