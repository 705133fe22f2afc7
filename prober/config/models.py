"""Pydantic models of the check-definition YAML (docs/configuration.md) that are shared by every check type.

Each probe module declares its own model by subclassing CheckBase; everything here is common:
scheduling, timeouts, retries, locations, alert policy, notifiers, maintenance windows, retention.
Models forbid unknown keys so a typo is an error, never a silently ignored setting.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit  # at the top: a function-level import of it costs 18 µs per URL validated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)

from prober.config.durations import format_duration, parse_duration
from prober.config.schedules import Schedule, parse_schedule

__all__ = [
    "AlertPolicy",
    "Announcement",
    "CheckBase",
    "Duration",
    "HeartbeatConfig",
    "HttpUrl",
    "IngestConfig",
    "MaintenanceWindow",
    "NotifierConfig",
    "RetentionConfig",
    "ScheduleField",
    "StatusPageConfig",
    "StrictModel",
    "TelemetryConfig",
]

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

MAX_TIMEOUT = 3600.0
MAX_WINDOW = 30 * 86400.0
MAX_REPEAT = 30 * 86400.0

Duration = Annotated[float, BeforeValidator(parse_duration)]


def http_url(value: str) -> str:
    """The one check for the `url` of http, hls and browser checks: http(s), a host, a valid port.

    A bad port or host would otherwise fail only at run time, in a library's own error text, which may
    quote the whole URL, password included; here the URL is quoted with its credentials masked.
    """
    from prober.redact import redact_url

    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {redact_url(value)!r}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ValueError(f"invalid URL {redact_url(value)!r}: {exc}") from None
    if not parts.hostname:
        raise ValueError(f"the URL {redact_url(value)!r} has no host")
    if _SPACE.search(value):
        raise ValueError(f"the URL {redact_url(value)!r} contains white space; encode it as %20")
    return value


_SPACE = re.compile(r"\s")


HttpUrl = Annotated[str, AfterValidator(http_url)]
"""An http:// or https:// URL with a host and a valid port (see http_url)."""


def plain_host(value: str) -> str:
    """A host name or IP address with no port and no URL around it; brackets around IPv6 are dropped."""
    value = value.strip()
    if not value:
        raise ValueError("host must not be empty; give a host name or IP address like example.com")
    if "/" in value:
        raise ValueError(f"host is a host name or IP address like example.com, not a URL; got {value!r}")
    if ":" in value and not _is_ip(value.strip("[]")):
        raise ValueError(f"host must not carry a port; write it in `port`; got {value!r}")
    return value.strip("[]")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def readable_ca_file(value: str | None) -> str | None:
    """A PEM bundle that exists and that OpenSSL can load (`~` expanded); checked at load time, not per run."""
    if value is None:
        return None
    path = os.path.expanduser(value)
    if not os.path.isfile(path):
        raise ValueError(f"ca_file {value!r} does not exist or is not a file")
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"ca_file {value!r} holds no usable PEM certificates: {exc}") from None
    return path


PlainHost = Annotated[str, AfterValidator(plain_host)]
"""The `host` of a check that connects to host and port (tls, tcp, grpc, icmp)."""
CaFile = Annotated[str | None, AfterValidator(readable_ca_file)]
"""A `ca_file`: trusted CAs used instead of the system trust store."""
"""Seconds, written in YAML as `250ms`, `10s`, `5m`, `2h`, `14d` or a number."""


def _schedule(value: Any) -> Schedule:
    if isinstance(value, Schedule):
        return value
    return parse_schedule(value)


ScheduleField = Annotated[Schedule, BeforeValidator(_schedule), PlainSerializer(lambda s: s.text)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


RESERVED_LABELS = frozenset({"alertname", "check", "group", "type"})
"""Labels of an Alertmanager alert that prober sets itself (prober.notify.alertmanager); `alert.labels` may not."""
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def check_label_name(name: str) -> str:
    """A name `alert.labels` may use: a Prometheus label name, not one prober sets, not `__` reserved."""
    if not _LABEL_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid label name: use letters, digits and '_', not starting with a digit")
    if name.startswith("__"):
        raise ValueError(f"label names starting with '__' are reserved by Prometheus, got {name!r}")
    if name in RESERVED_LABELS:
        raise ValueError(f"the label {name!r} is set by prober itself ({', '.join(sorted(RESERVED_LABELS))})")
    return name


class AlertPolicy(StrictModel):
    after: int = Field(2, ge=1, description="consecutive down runs at a location before it counts as down")
    recover_after: int = Field(1, ge=1, description="consecutive non-down runs before a location recovers")
    quorum: int = Field(1, ge=1, description="locations that must be down to open an incident")
    repeat: Duration = Field(0.0, le=MAX_REPEAT, description="re-notify this often while open; 0 = never")
    notify: list[str] = Field(default_factory=list, description="notifier names")
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="extra labels of the check's Alertmanager alert (e.g. severity, team), for routing",
    )

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            check_label_name(name)
        return value


class CheckBase(StrictModel):
    """Keys every check has, whatever its type."""

    name: str = Field(description="unique across all files: lowercase letters, digits, '_', '.', '-'")
    type: str = Field(description="the check type (a section below)")
    group: str | None = Field(None, description="heading the check is listed under on the status page")
    description: str | None = Field(None, description="free text shown on the check's page")
    schedule: ScheduleField = Field(
        default_factory=lambda: parse_schedule("every 1m"),
        description="'every <duration>' (spread by name) or a cron expression (5 fields, or 6 with seconds; H allowed)",
    )
    timeout: Duration = Field(10.0, description="the whole run, retries included; at most 1h")
    retries: int = Field(0, ge=0, le=10, description="extra attempts inside one run before it counts as down")
    locations: list[str] = Field(default_factory=lambda: ["default"], description="where the check runs")
    alert: AlertPolicy = Field(default_factory=AlertPolicy, description="when incidents open and who is told")
    expect: dict[str, Any] = Field(default_factory=dict, description="metric -> condition; a failure is down")
    warn: dict[str, Any] = Field(default_factory=dict, description="metric -> condition; a failure is degraded")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is not a valid check name: use lowercase letters, digits, '_', '.', '-', "
                "starting with a letter or digit"
            )
        return value

    @field_validator("timeout")
    @classmethod
    def _positive_timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("timeout must be greater than 0")
        if value > MAX_TIMEOUT:
            raise ValueError(f"timeout must be at most 1h, got {format_duration(value)}")
        return value

    @field_validator("locations")
    @classmethod
    def _some_locations(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one location is needed")
        return value


class NotifierConfig(StrictModel):
    urls: list[str] = Field(default_factory=list, description="Apprise URLs")
    alertmanager: list[HttpUrl] = Field(
        default_factory=list,
        description="every peer of one Alertmanager cluster (http(s)://host:9093); incidents are posted to each",
    )

    @model_validator(mode="after")
    def _some_target(self) -> NotifierConfig:
        if not self.urls and not self.alertmanager:
            raise ValueError(
                "a notifier needs `urls` (Apprise URLs), `alertmanager` (Alertmanager peers) or both; it has neither"
            )
        return self


class MaintenanceWindow(StrictModel):
    name: str = Field(description="shown on the status page")
    schedule: ScheduleField = Field(description="when a window starts (cron)")
    duration: Duration = Field(description="how long each window lasts; at most 30d")
    checks: list[str] = Field(default_factory=lambda: ["*"], description="name globs of the checks it covers")

    @field_validator("duration")
    @classmethod
    def _sane_window(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("a maintenance window must last longer than 0s")
        if value > MAX_WINDOW:
            raise ValueError(f"a maintenance window must last at most 30d, got {format_duration(value)}")
        return value


class RetentionConfig(StrictModel):
    raw: Duration = Field(14 * 86400.0, description="how long raw results (and screenshots) are kept")
    rollup: Duration = Field(400 * 86400.0, description="how long hourly and daily rollups and incidents are kept")


class StatusPageConfig(StrictModel):
    title: str = Field("Status", min_length=1, max_length=200, description="heading of the status page and feed")
    url: HttpUrl | None = Field(
        None, description="the page's public address (behind the load balancer): Alertmanager alerts link to it"
    )


class TelemetryConfig(StrictModel):
    """Top-level `telemetry:`: where OpenTelemetry traces and metrics go (OTLP/HTTP, protobuf)."""

    endpoint: str | None = Field(
        None,
        description="the collector's OTLP/HTTP base URL (`/v1/traces` and `/v1/metrics` are added); "
        "default: OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="sent with every export (an API key); default: OTEL_EXPORTER_OTLP_HEADERS"
    )
    traces: bool = Field(True, description="export one span per check run, with its phases as child spans")
    metrics: bool = Field(True, description="export every numeric probe metric as an OTel instrument")
    metrics_interval: Duration | None = Field(
        None, description="how often metrics are sent; default: OTEL_METRIC_EXPORT_INTERVAL, else 60s"
    )

    @field_validator("endpoint")
    @classmethod
    def _web_endpoint(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @field_validator("metrics_interval")
    @classmethod
    def _sane_interval(cls, value: float | None) -> float | None:
        if value is not None and not 1.0 <= value <= 86400.0:
            raise ValueError(f"metrics_interval must be between 1s and 1d, got {format_duration(value)}")
        return value


class HeartbeatConfig(StrictModel):
    """Top-level `heartbeat:`: a ping sent out while the daemon is healthy (a dead man's switch)."""

    url: str = Field(
        description="an https:// URL (healthchecks.io, Cronitor...) or an Apprise URL, pinged while healthy"
    )
    every: Duration = Field(60.0, description="time between pings; at least 1s, at most 1d")

    @field_validator("url")
    @classmethod
    def _has_scheme(cls, value: str) -> str:
        from prober.redact import redact_url

        if "://" not in value or not value.split("://", 1)[0].replace("+", "").isalnum():
            raise ValueError(
                f"expected an https:// URL or an Apprise URL like json://host/path, got {redact_url(value)!r}"
            )
        if value.startswith(("http://", "https://")):
            http_url(value)
        return value

    @field_validator("every")
    @classmethod
    def _sane_every(cls, value: float) -> float:
        if not 1.0 <= value <= 86400.0:
            raise ValueError(f"every must be between 1s and 1d, got {format_duration(value)}")
        return value


class IngestConfig(StrictModel):
    tokens: dict[str, str] = Field(default_factory=dict, description="location -> bearer token")


def _moment(value: Any) -> Any:
    """A time for an announcement: a YAML timestamp or ISO 8601 text; a time without a zone is UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected an ISO 8601 time like 2026-12-06T03:00:00Z, got {value!r}") from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


Moment = Annotated[datetime, BeforeValidator(_moment)]


class Announcement(StrictModel):
    """A message from the operators to the status page's audience (top-level `announcements:`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    title: str = Field(min_length=1, max_length=200)
    message: str = Field("", max_length=5000)
    severity: Literal["info", "maintenance", "outage"] = "info"
    checks: list[str] = Field(default_factory=list, description="name globs of the checks it is about; [] = all")
    starts: Moment | None = Field(None, alias="from", description="shown from this time on (default: now)")
    until: Moment | None = Field(None, description="shown until this time (default: until removed)")

    @field_validator("until")
    @classmethod
    def _after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        starts = info.data.get("starts")
        if value is not None and isinstance(starts, datetime) and value <= starts:
            raise ValueError(f"'until' must be later than 'from' ({starts.isoformat()})")
        return value
