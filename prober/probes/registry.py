"""The registry of check types and the contract every registered probe declares.

A check type is one module whose probe class carries `@register("name")`. Next to its `Config` model and
its `metrics`, the class declares everything the rest of prober needs to know about it, so nothing else
keeps a list of types or of their fields:

* `exports`   metric name -> how it appears in `/metrics` (`Export`: Prometheus name, unit, kind); an
              empty tuple for a metric that is never exported (text such as `issuer`). Read by
              `prober.api.metrics`.
* `headline`  the metrics shown in `prober check`'s table when a run has no error. Read by `prober.cli.render`.
* `target`    `target(check)`: what the check probes, for display, with credentials masked. Read by the
              API (feed, status page).
* `secrets`   field path -> `SecretKind`: where the check definition keeps secrets (`url`, `headers`,
              `steps.value`). Read by `prober.redact.check_secrets`, which the runner, the log filter,
              the notifier and the API use to mask them.

A type that does not probe but is fed by an inbound source (a heartbeat: the job calls prober) also
declares the `PassiveProbe` members: `inbound` (the source: "ping", i.e. `/ping/<token>`), `inbound_token(check)`
(the secret a sender presents) and `run_schedule(check)` (when its `run` measures what arrived; the check's own
`schedule` then says when events are due). `passive(probe)` and `run_schedule(spec)` read them; nothing else
special-cases such a type.

`register` is typed: mypy rejects a class that lacks any of it or whose `run` has the wrong signature.
`tests/test_contract.py` checks the same at run time for every registered type. This module imports no
probe, so there is no import cycle.

Probe modules are imported on first use: `prober.probes` only `declare`s each type's module, and `PROBES`
imports a module the first time its type is looked up (`PROBES["http"]`, `.values()`). Listing the type
names (`in`, `sorted(PROBES)`) imports nothing, so `prober validate` of http checks never loads
Playwright, PyAV or websockets, and `prober --help` loads no probe at all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from prober.config.conditions import MetricSpec
from prober.config.schedules import Schedule
from prober.probes.base import CheckT, Observation, ProbeContext
from prober.redact import redact_url

__all__ = [
    "CERT_EXPIRY_HELP",
    "PROBES",
    "Export",
    "ExportKind",
    "InboundKind",
    "PassiveProbe",
    "RegisteredProbe",
    "SecretKind",
    "declare",
    "get_probe",
    "host_port_target",
    "passive",
    "register",
    "standard_exports",
    "standard_name",
    "url_target",
]

ExportKind = Literal["gauge", "timestamp", "days_until", "info"]
"""gauge: the number (a bool is 0/1); timestamp: an ISO 8601 time as unix seconds; days_until: a number of
days from the run's start, as unix seconds; info: a text value carried in the label `info_label`, value 1."""

SecretKind = Literal["url", "headers", "value", "text"]
"""url: the URL's password, secret query values and secret-looking path parts (and the whole URL);
headers: the whole value of a header named like a secret (Authorization, Cookie, X-Api-Key), and any
secret-looking word of the others; value: every string inside, whole (a Socket.IO auth payload, a form
value); text: the secret-looking words inside (a request body, a message sent)."""

UNIT_SUFFIX = {"s": "seconds", "bytes": "bytes", "days": "seconds"}
"""MetricSpec unit -> Prometheus unit (the name's suffix): base units only (`promtool check metrics`), so a
metric in days is exported in seconds (`SCALE`), named without the word `days`."""
SCALE = {"days": 86400.0}
"""MetricSpec unit -> the factor that turns its values into the Prometheus unit's."""
CERT_EXPIRY_HELP = "when the earliest certificate expires (unix time; blackbox_exporter's name)"
"""The HELP of `probe_ssl_earliest_cert_expiry`, which several types feed (one family, one text)."""


@dataclass(frozen=True, slots=True)
class Export:
    """One Prometheus series family fed by one probe metric."""

    name: str
    unit: str = ""
    """The Prometheus unit (`seconds`, `bytes`, `days`) or empty for counts, codes and 0/1 flags."""
    kind: ExportKind = "gauge"
    labels: tuple[tuple[str, str], ...] = ()
    """Fixed extra labels (`(("phase", "connect"),)`): several metrics share one family."""
    info_label: str | None = None
    """For kind info: the label that carries the value (`version`)."""
    minus: tuple[str, ...] = ()
    """Metrics subtracted from the value (clamped at 0): http `processing` = ttfb - dns - connect - tls."""
    scale: float = 1.0
    """The value is multiplied by this (days exported as seconds: 86400)."""
    help: str = ""
    """The family's HELP when the metric's description does not fit it: a family fed by several metrics
    (`probe_http_duration_seconds{phase}`) or types, or a value exported in another unit."""

    def label_names(self) -> tuple[str, ...]:
        names = tuple(name for name, _ in self.labels)
        return (*names, self.info_label) if self.info_label else names


class RegisteredProbe(Protocol[CheckT]):
    """What `register` accepts: the `Probe` protocol of `prober.probes.base` plus the declarations above."""

    type_name: ClassVar[str]
    Config: type[CheckT]
    metrics: ClassVar[Mapping[str, MetricSpec]]
    exports: ClassVar[Mapping[str, tuple[Export, ...]]]
    headline: ClassVar[tuple[str, ...]]
    secrets: ClassVar[Mapping[str, SecretKind]]

    def default_expect(self, check: CheckT) -> Mapping[str, Any]: ...

    def target(self, check: CheckT) -> str: ...

    async def run(self, check: CheckT, ctx: ProbeContext) -> Observation: ...


InboundKind = Literal["ping"]
"""ping: `GET|POST /ping/<token>[/start|/fail|/<exit-code>]` on the daemon's listener (prober.api.ping)."""


class PassiveProbe(Protocol):
    """The extra declarations of a check type fed by an inbound source instead of probing (heartbeat)."""

    inbound: ClassVar[InboundKind]

    def inbound_token(self, check: Any) -> str:
        """The secret a sender presents (in the ping URL); one of the check's declared `secrets`."""
        ...

    def run_schedule(self, check: Any) -> Schedule:
        """When the scheduler runs `run` (to measure how late events are); not the check's `schedule`."""
        ...


def passive(probe: object, kind: InboundKind | None = None) -> PassiveProbe | None:
    """The probe as a PassiveProbe when it declares an inbound source (of `kind`, if given), else None."""
    inbound = getattr(probe, "inbound", None)
    if inbound is None or (kind is not None and inbound != kind):
        return None
    return probe  # type: ignore[return-value]


class _Registry(Mapping[str, "RegisteredProbe[Any]"]):
    """Type name -> the one probe instance; a declared type's module is imported when first looked up."""

    def __init__(self) -> None:
        self._modules: dict[str, str] = {}
        self._probes: dict[str, RegisteredProbe[Any]] = {}

    def declare(self, type_name: str, module: str) -> None:
        self._modules[type_name] = module

    def add(self, type_name: str, probe: RegisteredProbe[Any]) -> None:
        if type_name in self._probes:
            raise RuntimeError(f"check type {type_name!r} is registered twice")
        self._probes[type_name] = probe

    def __getitem__(self, type_name: str) -> RegisteredProbe[Any]:
        probe = self._probes.get(type_name)
        if probe is not None:
            return probe
        module = self._modules.get(type_name)
        if module is None:
            raise KeyError(type_name)
        importlib.import_module(module)  # its @register files the probe
        try:
            return self._probes[type_name]
        except KeyError:
            raise RuntimeError(f"{module} was imported but registers no check type {type_name!r}") from None

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._probes or type_name in self._modules

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._modules), **dict.fromkeys(self._probes)})

    def __len__(self) -> int:
        return len(self._modules.keys() | self._probes.keys())

    def loaded(self) -> tuple[str, ...]:
        """The types whose module has been imported (tests check that a command imports no more)."""
        return tuple(self._probes)

    def pop(self, type_name: str, default: Any = None) -> Any:
        """Forget a type registered at run time (tests register throwaway probes)."""
        self._modules.pop(type_name, None)
        return self._probes.pop(type_name, default)


PROBES = _Registry()
"""Every check type. A Mapping: `PROBES[name]` imports the type's module on first use."""


def declare(type_name: str, module: str) -> None:
    """Name a check type and the module whose `@register(type_name)` defines it, without importing it."""
    PROBES.declare(type_name, module)


ProbeClass = TypeVar("ProbeClass", bound=type[RegisteredProbe[Any]])


def register(type_name: str) -> Callable[[ProbeClass], ProbeClass]:
    """Class decorator: instantiate the probe once and file it under its type name (the class is returned
    unchanged, with `type_name` set)."""

    def decorate(cls: ProbeClass) -> ProbeClass:
        cls.type_name = type_name
        PROBES.add(type_name, cls())
        return cls

    return decorate


def get_probe(type_name: str) -> RegisteredProbe[Any]:
    try:
        return PROBES[type_name]
    except KeyError:
        raise KeyError(f"unknown check type {type_name!r}; valid types: {', '.join(sorted(PROBES))}") from None


def standard_name(prefix: str, metric: str, unit: str) -> str:
    """`probe_<prefix>_<metric>` plus the unit as suffix, unless the name already says it (`segment_bytes`
    is in bytes); a unit exported as another (days as seconds) leaves the name (`cert_days_remaining` ->
    `probe_http_cert_remaining_seconds`)."""
    if unit in SCALE:
        metric = "_".join(word for word in metric.split("_") if word != unit) or metric
    base = "probe_" + "".join(c if c.isalnum() or c == "_" else "_" for c in f"{prefix}_{metric}")
    suffix = UNIT_SUFFIX.get(unit, "")
    if not suffix or suffix in metric.split("_") or base.endswith("_" + suffix):
        return base
    return f"{base}_{suffix}"


def standard_exports(
    prefix: str,
    metrics: Mapping[str, MetricSpec],
    *,
    text: Iterable[str] = (),
    rename: Mapping[str, str] | None = None,
    extra: Mapping[str, tuple[Export, ...]] | None = None,
) -> dict[str, tuple[Export, ...]]:
    """The usual exports of a probe: every value or flag metric as a gauge named by `standard_name`
    (or `rename[metric]`), except the `text` metrics, which are not exported; `extra` adds families."""
    renamed = rename or {}
    skipped = set(text)
    exports: dict[str, tuple[Export, ...]] = {}
    for name, spec in metrics.items():
        if spec.kind not in ("value", "flag"):
            continue
        unit = UNIT_SUFFIX.get(spec.unit, "")
        scale = SCALE.get(spec.unit, 1.0)
        export = Export(
            renamed.get(name) or standard_name(prefix, name, spec.unit),
            unit,
            scale=scale,
            help=f"{name} in {unit}: {spec.description}" if scale != 1.0 else "",
        )
        own = () if name in skipped else (export,)
        exports[name] = own + (extra or {}).get(name, ())
    return exports


def url_target(self: object, check: Any) -> str:
    """`target` of a check that probes `check.url`: the URL with its credentials masked."""
    return redact_url(str(check.url))


def host_port_target(self: object, check: Any) -> str:
    """`target` of a check that probes `check.host` and `check.port`: `host:port` (`[::1]:443`)."""
    host = str(check.host)
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{check.port}"
