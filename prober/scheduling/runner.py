"""Runs one check once: the timeout, the retries, the probe, the conditions, and the Result.

Used by `prober check` and by the daemon's scheduler alike, so a result means the same wherever it
came from. Whatever a probe does (raise, hang, return garbage), this returns a Result: a probe that
raises is a `down` result with the error, never a crash.

It is also the wall secrets stop at: before a Result leaves, every string in it (error, metrics, details,
assertion values, artifact names) is scrubbed of the check's secret values (those its probe declares;
`prober.redact.check_secrets`), whatever library wrote the text. The same values are registered with the
process's log filter (`prober.redact.LOG_SECRETS`) before the probe runs, so no log line carries them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prober.clock import Clock, SystemClock
from prober.config.conditions import judge
from prober.config.durations import format_duration
from prober.config.loader import CheckSpec
from prober.daemon.logs import install_log_redaction
from prober.probes.base import (
    MemoryStateStore,
    NoPings,
    Observation,
    PingLog,
    ProbeContext,
    ProbeError,
    ProbeState,
    Resources,
    StateStore,
)
from prober.redact import LOG_SECRETS, Scrubber, check_secrets
from prober.results import Assertion, Result, Status
from prober.timeline import Timeline, TraceContext

__all__ = ["Runner"]

log = logging.getLogger("prober.runner")


def _network_sentence(exc: BaseException) -> str:
    """Turn a low-level exception into the short sentence shown as a result's error."""
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if isinstance(exc, ConnectionRefusedError) or "connection refused" in lowered or "connect call failed" in lowered:
        return "connection refused"
    if isinstance(exc, ConnectionResetError) or "reset by peer" in lowered:
        return "connection reset by the server"
    return f"{type(exc).__name__}: {text}"


def _with_probe_reason(error: str | None, status: Status, observation: Observation) -> str | None:
    """Add the probe's own first problem (a dead variant, a failed connection) to a down result's error:
    it says more at 3 a.m. than the condition it broke."""
    problems = observation.details.get("errors")
    if status != "down" or not error or not problems:
        return error
    first = next(iter(problems), None)
    if not isinstance(first, str) or first in error:
        return error
    return f"{error} ({first})"


def _scrubbed(scrub: Scrubber, item: Any) -> Any:
    if not isinstance(item, Assertion) or not scrub:
        return item
    return Assertion(
        metric=item.metric,
        condition=scrub.text(item.condition),
        actual=scrub.json(item.actual),
        ok=item.ok,
        level=item.level,
    )


def _scrubbed_timeline(scrub: Scrubber, timeline: Timeline) -> Timeline:
    """The timeline with the check's secrets masked in every attribute and error (spans leave the process)."""
    if scrub:
        for phase in timeline.phases:
            phase.attributes = scrub.json(phase.attributes)
            phase.error = scrub.optional(phase.error)
    return timeline


@dataclass(slots=True)
class Runner:
    """Everything runs of checks share in one process: location, state, shared resources, artifacts."""

    location: str = "default"
    state_store: StateStore = field(default_factory=MemoryStateStore)
    resources: Resources = field(default_factory=Resources)
    artifacts_dir: Path = field(default_factory=lambda: Path("artifacts"))
    persistent_state: bool = False
    clock: Clock = field(default_factory=SystemClock)
    """Handed to every probe run as `ProbeContext.clock`; tests pass a fake one."""
    pings: PingLog = field(default_factory=NoPings)
    """Handed to every probe run as `ProbeContext.pings` (the daemon's store: heartbeat pings)."""
    tracing: bool = False
    """Give every run a trace context and a timeline (set when OpenTelemetry traces are exported)."""
    _scrubbers: dict[str, tuple[CheckSpec, Scrubber]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        install_log_redaction()

    def scrubber(self, spec: CheckSpec) -> Scrubber:
        """The scrubber of one check's secrets (computed once per definition, registered for logs)."""
        cached = self._scrubbers.get(spec.name)
        if cached is not None and cached[0] is spec:
            return cached[1]
        scrubber = Scrubber(check_secrets(spec.model, getattr(spec.probe, "secrets", {})))
        LOG_SECRETS.add_secrets(scrubber.secrets)
        self._scrubbers[spec.name] = (spec, scrubber)
        return scrubber

    async def run(self, spec: CheckSpec) -> Result:
        scrub = self.scrubber(spec)
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        attempts = spec.model.retries + 1
        outcome: tuple[Status, str | None, Observation, list[Any]] | None = None
        trace = TraceContext.new() if self.tracing else None
        timeline = Timeline(enabled=self.tracing)
        for attempt in range(1, attempts + 1):
            outcome = await self._attempt(spec, trace, timeline)
            if outcome[0] != "down":
                break
            if attempt < attempts:
                log.debug("check %s attempt %d/%d down: %s", spec.name, attempt, attempts, outcome[1])
        assert outcome is not None
        status, error, observation, assertions = outcome
        details = dict(observation.details)
        if attempts > 1:
            details["attempts"] = attempt
        return Result(
            check=spec.name,
            type=spec.type,
            location=self.location,
            started_at=started_at,
            duration_ms=(time.perf_counter() - started) * 1000,
            status=status,
            error=scrub.optional(error),
            metrics=scrub.json(observation.metrics),
            assertions=[_scrubbed(scrub, item) for item in assertions],
            artifacts=[scrub.text(str(path)) for path in observation.artifacts],
            details=scrub.json(details),
            trace=trace,
            timeline=_scrubbed_timeline(scrub, timeline) if trace is not None else None,
        )

    async def _attempt(
        self, spec: CheckSpec, trace: TraceContext | None = None, timeline: Timeline | None = None
    ) -> tuple[Status, str | None, Observation, list[Any]]:
        timeout = spec.model.timeout
        loop = asyncio.get_running_loop()

        def judge_status(observation: Observation) -> Status:
            return judge(spec.conditions, observation.metrics, observation.subjects).status

        ctx = ProbeContext(
            location=self.location,
            timeout=timeout,
            deadline=loop.time() + timeout,
            state=ProbeState(self.state_store, spec.name, self.location),
            resources=self.resources,
            artifacts_dir=self.artifacts_dir,
            logger=log.getChild(spec.type),
            persistent_state=self.persistent_state,
            judge=judge_status,
            clock=self.clock,
            pings=self.pings,
            trace=trace,
            timeline=timeline if timeline is not None else Timeline(),
        )
        try:
            async with asyncio.timeout(timeout):
                observation = await spec.probe.run(spec.model, ctx)
        except TimeoutError:
            return "down", f"timed out after {format_duration(timeout)}", Observation(), []
        except ProbeError as exc:
            details = dict(exc.details)
            artifacts = details.pop("artifacts", None)
            observation = Observation(
                metrics=exc.metrics, details=details, artifacts=list(artifacts) if isinstance(artifacts, list) else []
            )
            verdict = judge(spec.conditions, observation.metrics, observation.subjects)
            return "down", str(exc), observation, verdict.assertions
        except asyncio.CancelledError:
            raise
        except (OSError, ConnectionError) as exc:
            return "down", _network_sentence(exc), Observation(), []
        except Exception as exc:
            log.exception("probe %s raised while running check %s", spec.type, spec.name)
            return "down", f"probe error: {type(exc).__name__}: {exc}", Observation(), []
        verdict = judge(spec.conditions, observation.metrics, observation.subjects)
        return (
            verdict.status,
            _with_probe_reason(verdict.error, verdict.status, observation),
            observation,
            verdict.assertions,
        )
