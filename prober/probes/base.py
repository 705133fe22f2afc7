"""The probe interface: what every check type implements, and the context a run hands it.

A probe measures and returns an Observation (metrics, plus subjects such as a body for conditions to
search). It never judges (conditions do), never stores (the store does), never alerts. When the target
cannot be measured at all (connection refused, a malformed playlist) it raises ProbeError with the one
sentence an on-call engineer should read; the runner turns that into a `down` result. The run's timeout
is enforced by the runner around `run`, so a probe does not need its own overall timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from prober.clock import Clock, SystemClock
from prober.config.conditions import MetricSpec
from prober.config.models import CheckBase
from prober.pings import Ping
from prober.results import Status
from prober.timeline import Timeline, TraceContext

__all__ = [
    "CheckT",
    "MemoryStateStore",
    "NoPings",
    "Observation",
    "PingLog",
    "Probe",
    "ProbeContext",
    "ProbeError",
    "ProbeState",
    "Resources",
    "StateStore",
]

CheckT = TypeVar("CheckT", bound=CheckBase)


class ProbeError(Exception):
    """The target could not be measured; `str(self)` is the sentence shown as the result's error.

    `metrics` carries whatever was measured before the failure (a status code, a handshake time), so a
    down result still shows what is known.
    """

    def __init__(
        self, message: str, metrics: Mapping[str, Any] | None = None, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.metrics = dict(metrics or {})
        self.details = dict(details or {})


@dataclass(slots=True)
class Observation:
    """What one probe run measured.

    metrics   JSON-able values named by the probe's MetricSpecs; stored and exported.
    subjects  material for `contains`/`matches`/`paths` conditions (body text, parsed JSON, headers);
              used to judge, never stored.
    details   extra JSON-able context kept with the result (console errors, inconsistencies).
    artifacts paths of files the run saved (screenshots).
    """

    metrics: dict[str, Any] = field(default_factory=dict)
    subjects: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)


class PingLog(Protocol):
    """The pings an inbound source (`/ping/<token>`) delivered, as a passive probe (heartbeat) reads them.
    The daemon's is the store (pings survive a restart); `prober check` has an empty one."""

    async def recent_pings(self, check: str, limit: int) -> Sequence[Ping]: ...


class NoPings:
    """A PingLog with nothing in it: a one-off `prober check` receives no pings."""

    async def recent_pings(self, check: str, limit: int) -> Sequence[Ping]:
        return ()


class StateStore(Protocol):
    """Per-check, per-location state kept between runs (HLS sequence tracking). JSON-able dicts."""

    async def load(self, check: str, location: str) -> dict[str, Any] | None: ...

    async def save(self, check: str, location: str, state: dict[str, Any]) -> None: ...


class MemoryStateStore:
    """State in a dict: for `prober check` and tests; the daemon uses the SQLite store."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], dict[str, Any]] = {}

    async def load(self, check: str, location: str) -> dict[str, Any] | None:
        return self._states.get((check, location))

    async def save(self, check: str, location: str, state: dict[str, Any]) -> None:
        self._states[(check, location)] = state


@dataclass(slots=True)
class ProbeState:
    """The state of one check at one location, as a probe sees it."""

    store: StateStore
    check: str
    location: str

    async def load(self) -> dict[str, Any] | None:
        return await self.store.load(self.check, self.location)

    async def save(self, state: dict[str, Any]) -> None:
        await self.store.save(self.check, self.location, state)


class Resources:
    """Long-lived things probes share within one process (an HTTP session, a Chromium).

    Created lazily by the first probe that asks, closed once when the process stops, so a probe
    module owns its resource without the runner knowing what it is.
    """

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._lock = asyncio.Lock()

    async def get(
        self, key: str, factory: Callable[[], Awaitable[Any]], close: Callable[[Any], Awaitable[None]] | None = None
    ) -> Any:
        if key in self._items:
            return self._items[key]
        async with self._lock:
            if key not in self._items:
                item = await factory()
                self._items[key] = item
                if close is not None:
                    self._closers.append(lambda: close(item))
        return self._items[key]

    def peek(self, key: str) -> Any:
        return self._items.get(key)

    def drop(self, key: str) -> None:
        """Forget a resource (it died); the next `get` builds a new one."""
        self._items.pop(key, None)

    async def aclose(self) -> None:
        closers, self._closers = self._closers, []
        self._items.clear()
        for closer in reversed(closers):
            try:
                await closer()
            except Exception:
                logging.getLogger("prober").debug("closing a shared resource failed", exc_info=True)


@dataclass(slots=True)
class ProbeContext:
    """Everything a run may use besides its check definition."""

    location: str
    timeout: float
    """Seconds this attempt may take; the runner cancels `run` when they are up."""
    deadline: float
    """`loop.time()` at which the runner cancels the attempt."""
    state: ProbeState
    resources: Resources
    artifacts_dir: Path
    logger: logging.Logger
    persistent_state: bool = False
    """True under the daemon (state survives to the next scheduled run); False for one-off `prober check`."""
    judge: Callable[[Observation], Status] = field(default=lambda observation: "up")
    """Ask how the conditions would judge an observation (a browser deciding to take a screenshot)."""
    clock: Clock = field(default_factory=SystemClock)
    """Wall-clock time and waiting (the Runner's, which tests replace with a fake one)."""
    pings: PingLog = field(default_factory=NoPings)
    """What inbound sources delivered (heartbeat pings); read by passive probes, see `registry.PassiveProbe`."""
    trace: TraceContext | None = None
    """The run's W3C trace context while tracing is on (http and browser send it as `traceparent`)."""
    timeline: Timeline = field(default_factory=Timeline)
    """Where a probe records the phases it timed (exported as child spans; disabled unless tracing is on)."""

    def remaining(self) -> float:
        return max(0.0, self.deadline - asyncio.get_running_loop().time())


class Probe(Protocol, Generic[CheckT]):
    """A check type. Registered once in `prober.probes`; config validation reads its Config and metrics."""

    type_name: ClassVar[str]
    Config: type[CheckT]
    metrics: ClassVar[Mapping[str, MetricSpec]]

    def default_expect(self, check: CheckT) -> Mapping[str, Any]:
        """Conditions that apply unless the check names the same metric in its own `expect`."""
        ...

    async def run(self, check: CheckT, ctx: ProbeContext) -> Observation: ...
