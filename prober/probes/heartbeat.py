"""The `heartbeat` check type (push, dead man's switch): prober listens, the job calls it.

A job calls `/ping/<token>` when it succeeds (`/start` when it begins, `/fail` or `/<exit-code>` when it ends);
the API hands each ping to the daemon, which stores it (prober.api.ping, prober.store.pings). This probe does not
probe: it is passive (`inbound = "ping"`, see `prober.probes.registry.PassiveProbe`). The scheduler runs it every
`run_schedule(check)` (and the daemon once more as soon as a ping arrives), and each run measures the pings that
arrived: how long ago the last one came (`last_ping_age`), how far past its deadline the next one is
(`overdue`: the schedule's next slot after the last ping, plus `grace`), whether the last run of the job
reported failure (`failed`, `exit_code`), how long a started run has gone on (`running_for`) and how long the
last one took (`last_duration`). The conditions decide: by default `overdue: 0`, `failed: false` and, with
`max_runtime`, `running_for: "<= <max_runtime>"`.

It never reads the database itself (it reads `ctx.pings`, the daemon's store or an empty log for `prober
check`), never receives a request and never decides up or down.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from prober.config.conditions import MetricSpec
from prober.config.durations import format_duration
from prober.config.models import AlertPolicy, CheckBase, Duration, ScheduleField
from prober.config.schedules import Schedule
from prober.pings import Ping
from prober.probes.base import Observation, ProbeContext
from prober.probes.registry import Export, InboundKind, SecretKind, register, standard_exports
from prober.redact import MASK
from prober.results import format_timestamp

__all__ = ["HeartbeatCheck", "HeartbeatProbe", "evaluation_interval"]

TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
RECENT = 50
"""Pings read per run: enough to find the start that preceded the last finish."""
MAX_GRACE = 30 * 86400.0


class HeartbeatCheck(CheckBase):
    type: Literal["heartbeat"]
    token: str = Field(
        description="the secret in the ping URL /ping/<token>: 16-128 letters, digits, '-' or '_' "
        "(e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(24))'`)"
    )
    schedule: ScheduleField = Field(description="when pings are due: 'every <duration>' after the last one, or cron")
    grace: Duration = Field(3600.0, description="how late a ping may come before the check is down")
    max_runtime: Duration | None = Field(
        None, description="after a /start ping, how long the job may run before the check is down; unset = no limit"
    )
    alert: AlertPolicy = Field(
        default_factory=lambda: AlertPolicy(after=1),
        description="as for every check, but `after` defaults to 1 (a late ping is already past its grace)",
    )

    @field_validator("token")
    @classmethod
    def _token(cls, value: str) -> str:
        if not TOKEN.match(value):
            shown = f"{len(value)} characters" if len(value) >= 6 else repr(value)
            raise ValueError(
                f"a ping token must be 16 to 128 letters, digits, '-' or '_' (it is the only secret guarding the "
                f"ping URL), got {shown}"
            )
        return value

    @field_validator("grace", "max_runtime")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value <= MAX_GRACE:
            raise ValueError(f"must be more than 0s and at most 30d, got {format_duration(value)}")
        return value


def evaluation_interval(check: HeartbeatCheck) -> float:
    """Seconds between two runs: half the grace (or of max_runtime, if shorter), between 1 s and 1 min.
    A missed ping is noticed that long after its grace ran out, at most."""
    window = min(check.grace, check.max_runtime or check.grace)
    return min(60.0, max(1.0, window / 2))


def _ago(seconds: float) -> str:
    return format_duration(max(0.0, seconds))


def _overdue_sentence(actual: Any, condition: str) -> str | None:
    if isinstance(actual, int | float) and actual > 0:
        return f"the heartbeat is {_ago(actual)} late"
    return None


def _failed_sentence(actual: Any, condition: str) -> str | None:
    return "the job reported failure" if actual is True else None


def _running_sentence(actual: Any, condition: str) -> str | None:
    if isinstance(actual, int | float):
        return f"the job started {_ago(actual)} ago and has not finished (expected running_for {condition})"
    return None


def _due_after(check: HeartbeatCheck, moment: datetime) -> datetime:
    schedule = check.schedule
    if schedule.interval is not None:
        return moment + timedelta(seconds=schedule.interval)
    return schedule.next_after(moment, check.name)


def _first_line(text: str) -> str:
    line = next((item.strip() for item in text.splitlines() if item.strip()), "")
    return line if len(line) <= 200 else line[:199] + "…"


def _duration_of(finished: Ping, pings: Sequence[Ping]) -> float | None:
    """From the start that opened the run `finished` closed (the newest start before it, with no finish
    between) to `finished`."""
    after = False
    for ping in pings:
        if ping is finished:
            after = True
            continue
        if not after:
            continue
        if ping.finishes:
            return None
        return (finished.received_at - ping.received_at).total_seconds()
    return None


@register("heartbeat")
class HeartbeatProbe:
    """Passive: measures how late the job's pings are, whether it reported failure, how long it runs."""

    type_name: ClassVar[str]
    Config = HeartbeatCheck
    metrics: ClassVar[Mapping[str, MetricSpec]] = {
        spec.name: spec
        for spec in (
            MetricSpec("last_ping", "when the last ping (of any kind) arrived, ISO 8601"),
            MetricSpec("last_ping_age", "time since the last ping", unit="s"),
            MetricSpec(
                "overdue",
                "how far past its deadline (the schedule's next slot after the last ping, plus grace) "
                "the next ping is; 0 while on time",
                unit="s",
                describe=_overdue_sentence,
            ),
            MetricSpec(
                "failed",
                "the last finished run reported failure (/fail or a non-zero exit code)",
                describe=_failed_sentence,
            ),
            MetricSpec("exit_code", "the exit code the last finished run reported (/ping/<token>/<code>)"),
            MetricSpec(
                "running_for",
                "how long the run begun by the last /start has gone on; 0 when none is running",
                unit="s",
                describe=_running_sentence,
            ),
            MetricSpec("last_duration", "from the last finished run's /start to its end", unit="s"),
        )
    }
    exports: ClassVar[Mapping[str, tuple[Export, ...]]] = {
        **standard_exports("heartbeat", metrics, rename={"last_ping_age": "probe_heartbeat_last_ping_age_seconds"}),
        "last_ping": (Export("probe_heartbeat_last_ping_timestamp_seconds", "seconds", kind="timestamp"),),
    }
    headline: ClassVar[tuple[str, ...]] = ("last_ping_age", "overdue")
    secrets: ClassVar[Mapping[str, SecretKind]] = {"token": "value"}
    inbound: ClassVar[InboundKind] = "ping"

    def target(self, check: HeartbeatCheck) -> str:
        return f"/ping/{MASK}"

    def inbound_token(self, check: HeartbeatCheck) -> str:
        return check.token

    def run_schedule(self, check: HeartbeatCheck) -> Schedule:
        interval = evaluation_interval(check)
        return Schedule(text=f"every {format_duration(interval)}", interval=interval)

    def default_expect(self, check: HeartbeatCheck) -> Mapping[str, Any]:
        expect: dict[str, Any] = {"overdue": 0, "failed": False}
        if check.max_runtime is not None:
            expect["running_for"] = f"<= {format_duration(check.max_runtime)}"
        return expect

    async def run(self, check: HeartbeatCheck, ctx: ProbeContext) -> Observation:
        pings = list(await ctx.pings.recent_pings(check.name, RECENT))
        now = ctx.clock.now()
        metrics: dict[str, Any] = {"failed": False, "running_for": 0.0}
        details: dict[str, Any] = {}
        errors: list[str] = []
        latest = pings[0] if pings else None
        finished = next((ping for ping in pings if ping.finishes), None)
        if latest is None:
            reference = await self._first_seen(ctx, now)
            details["waiting_since"] = format_timestamp(reference)
        else:
            reference = latest.received_at
            metrics["last_ping"] = format_timestamp(latest.received_at)
            metrics["last_ping_age"] = round((now - latest.received_at).total_seconds(), 3)
            details["last_ping"] = {"kind": latest.kind, "at": format_timestamp(latest.received_at)}
        due = _due_after(check, reference)
        deadline = due + timedelta(seconds=check.grace)
        overdue = max(0.0, (now - deadline).total_seconds())
        metrics["overdue"] = round(overdue, 3)
        details["next_due"] = format_timestamp(due)
        details["deadline"] = format_timestamp(deadline)
        if overdue > 0:
            since = "no ping yet" if latest is None else f"last ping {_ago(metrics['last_ping_age'])} ago"
            errors.append(
                f"{since}; one was due by {format_timestamp(due)} (schedule {check.schedule.text!r}, "
                f"grace {format_duration(check.grace)})"
            )
        if finished is not None:
            metrics["failed"] = finished.kind == "fail"
            if finished.exit_code is not None:
                metrics["exit_code"] = finished.exit_code
            duration = _duration_of(finished, pings)
            if duration is not None:
                metrics["last_duration"] = round(duration, 3)
            if finished.body:
                details["log"] = finished.body
            if finished.kind == "fail":
                code = f" with exit code {finished.exit_code}" if finished.exit_code is not None else ""
                line = _first_line(finished.body)
                errors.append(
                    f"the run that ended {format_timestamp(finished.received_at)} reported failure{code}"
                    + (f": {line}" if line else "")
                )
        started = next((ping for ping in pings if ping.kind == "start"), None)
        if started is not None and (finished is None or started.received_at > finished.received_at):
            running = max(0.0, (now - started.received_at).total_seconds())
            metrics["running_for"] = round(running, 3)
            details["running_since"] = format_timestamp(started.received_at)
            if check.max_runtime is not None and running > check.max_runtime:
                errors.append(
                    f"started {format_timestamp(started.received_at)}, no end reported within max_runtime "
                    f"{format_duration(check.max_runtime)}"
                )
        if errors:
            details["errors"] = errors
        return Observation(metrics=metrics, details=details)

    async def _first_seen(self, ctx: ProbeContext, now: datetime) -> datetime:
        """When this check was first run with no ping (its first ping is due one period after that); kept in
        the probe state, saved again once a day so retention never drops it while no ping comes."""
        state = await ctx.state.load() or {}
        seen = state.get("first_seen")
        moment = datetime.fromisoformat(seen.replace("Z", "+00:00")) if isinstance(seen, str) else now
        today = now.date().isoformat()
        if state.get("saved_on") != today:
            await ctx.state.save({"first_seen": format_timestamp(moment), "saved_on": today})
        return moment
