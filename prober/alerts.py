"""The incident state machine of docs/alerting.md: results in, incident transitions out. Pure code.

`observe` takes the alert state of one check, one result (status, location, time, error), the check's
AlertPolicy and whether a maintenance window covers the check, and returns the new state and the
transitions to announce. `due_repeats` is called from the daemon's periodic tick for "still down"
reminders. The state round-trips through `to_json` / `from_json`, so the store can persist it and an
open incident survives a restart: it is neither announced again nor forgotten.

Semantics, per check:
- Each location counts consecutive `down` runs. After `after` of them the location *counts as down*,
  and it keeps counting as down until it has `recover_after` consecutive non-down runs (`up` or
  `degraded`; `degraded` never opens anything).
- An incident opens on a down result when at least `quorum` locations count as down. It resolves when
  fewer than `quorum` do. Its `started_at` is the first failing run (for a quorum of q, the time from
  which q locations were all failing); a resolve's downtime runs to the first good run.
- Maintenance: no incident opens during a window and nothing is announced during one. Locations keep
  counting, so an outage that began in the window and outlasts it opens (and is announced) on the first
  down result after the window, with its true start time. An incident open before a window that
  recovers inside it resolves silently (`notify=False`: no notification is sent). Because
  nothing opens in a window, a recovery is never announced for an outage nobody was told about.
- Flapping: an incident that is at least the `flap_incidents`-th to open within `flap_window` is
  marked `flapping`; it is still announced, and the message says so.

It must never do I/O, read the clock, log, or depend on anything but its arguments: that is what makes
it testable exhaustively and its output identical after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from prober.config.models import AlertPolicy
from prober.results import Status, format_timestamp

__all__ = [
    "FLAP_INCIDENTS",
    "FLAP_WINDOW",
    "CheckAlertState",
    "Incident",
    "LocationState",
    "Transition",
    "TransitionKind",
    "due_repeats",
    "forget_locations",
    "observe",
]

TransitionKind = Literal["opened", "resolved", "repeat"]

FLAP_WINDOW = timedelta(minutes=30)
"""Incidents opened within this window of each other count towards flapping."""
FLAP_INCIDENTS = 3
"""An incident that is at least the third to open within FLAP_WINDOW is flapping."""

_STATE_VERSION = 1


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"alert state holds a time without a timezone: {value!r}")
    return moment


def _require_time(value: Any, what: str) -> datetime:
    moment = _parse_time(value)
    if moment is None:
        raise ValueError(f"alert state is missing {what}")
    return moment


@dataclass(frozen=True, slots=True)
class LocationState:
    """What one location has seen lately for one check."""

    downs: int = 0
    """Consecutive down runs, 0 after any non-down run."""
    ups: int = 0
    """Consecutive non-down runs, 0 after any down run."""
    down: bool = False
    """Counts as down: reached `after` downs and has not had `recover_after` non-down runs since."""
    down_since: datetime | None = None
    """First down run of the current outage at this location."""
    up_since: datetime | None = None
    """First non-down run of the current recovery (only while it still counts as down)."""
    error: str | None = None
    """Error of the latest down run while the location is failing."""

    def to_json(self) -> dict[str, Any]:
        return {
            "downs": self.downs,
            "ups": self.ups,
            "down": self.down,
            "down_since": _time(self.down_since),
            "up_since": _time(self.up_since),
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LocationState:
        return cls(
            downs=int(data.get("downs", 0)),
            ups=int(data.get("ups", 0)),
            down=bool(data.get("down", False)),
            down_since=_parse_time(data.get("down_since")),
            up_since=_parse_time(data.get("up_since")),
            error=data.get("error"),
        )


@dataclass(frozen=True, slots=True)
class Incident:
    """The open incident of a check."""

    id: str
    """`<check>@<opened_at>`: stable, so the store can match the resolve to the open."""
    started_at: datetime
    """When the outage began (first failing run), which can be before `opened_at`."""
    opened_at: datetime
    """When the incident was detected and opened."""
    locations: tuple[str, ...]
    """Every location that counted as down during the incident, sorted."""
    error: str | None
    """The error when it opened."""
    last_notified_at: datetime | None
    """When it was last announced (opened or repeat), for `repeat` reminders."""
    flapping: bool = False
    recent_incidents: int = 1
    """Incidents opened within the flap window, this one included."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started_at": _time(self.started_at),
            "opened_at": _time(self.opened_at),
            "locations": list(self.locations),
            "error": self.error,
            "last_notified_at": _time(self.last_notified_at),
            "flapping": self.flapping,
            "recent_incidents": self.recent_incidents,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Incident:
        return cls(
            id=str(data["id"]),
            started_at=_require_time(data.get("started_at"), "the incident's started_at"),
            opened_at=_require_time(data.get("opened_at"), "the incident's opened_at"),
            locations=tuple(str(name) for name in data.get("locations") or ()),
            error=data.get("error"),
            last_notified_at=_parse_time(data.get("last_notified_at")),
            flapping=bool(data.get("flapping", False)),
            recent_incidents=int(data.get("recent_incidents", 1)),
        )


@dataclass(frozen=True, slots=True)
class CheckAlertState:
    """Everything the alerting of one check remembers. Treat as immutable: every change is a new value."""

    check: str
    locations: dict[str, LocationState] = field(default_factory=dict)
    incident: Incident | None = None
    recent_opens: tuple[datetime, ...] = ()
    """When recent incidents opened, for flapping detection."""

    @property
    def down_locations(self) -> tuple[str, ...]:
        """Locations that currently count as down, sorted."""
        return tuple(sorted(name for name, loc in self.locations.items() if loc.down))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _STATE_VERSION,
            "check": self.check,
            "locations": {name: loc.to_json() for name, loc in sorted(self.locations.items())},
            "incident": None if self.incident is None else self.incident.to_json(),
            "recent_opens": [_time(moment) for moment in self.recent_opens],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckAlertState:
        """Inverse of `to_json`; raises ValueError (or KeyError/TypeError) on state it cannot read."""
        version = data.get("version", _STATE_VERSION)
        if version != _STATE_VERSION:
            raise ValueError(f"alert state version {version!r} is not supported; this prober reads version 1")
        incident = data.get("incident")
        return cls(
            check=str(data["check"]),
            locations={str(name): LocationState.from_json(loc) for name, loc in (data.get("locations") or {}).items()},
            incident=None if incident is None else Incident.from_json(incident),
            recent_opens=tuple(
                _require_time(moment, "a recent open time") for moment in data.get("recent_opens") or ()
            ),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """Something to record and, when `notify` is true, announce."""

    kind: TransitionKind
    check: str
    incident_id: str
    locations: tuple[str, ...]
    """opened/repeat: the locations down now; resolved: every location that was down in the incident."""
    error: str | None
    started_at: datetime
    at: datetime
    """When the transition happened (the result's time, or the tick's time for a repeat)."""
    ended_at: datetime | None = None
    """resolved: the first good run that ended the outage."""
    downtime: float | None = None
    """resolved: seconds from `started_at` to `ended_at`."""
    flapping: bool = False
    recent_incidents: int = 1
    notify: bool = True
    """False when the transition is only to be recorded (inside a maintenance window)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "check": self.check,
            "incident_id": self.incident_id,
            "locations": list(self.locations),
            "error": self.error,
            "started_at": format_timestamp(self.started_at),
            "at": format_timestamp(self.at),
            "ended_at": None if self.ended_at is None else format_timestamp(self.ended_at),
            "downtime": self.downtime,
            "flapping": self.flapping,
            "recent_incidents": self.recent_incidents,
            "notify": self.notify,
        }


def _check_aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError(f"alert times must carry a timezone (UTC), got naive {moment.isoformat()}")


def _error_summary(locations: dict[str, LocationState], names: tuple[str, ...]) -> str | None:
    errors = {name: locations[name].error for name in names if locations[name].error}
    distinct = set(errors.values())
    if not distinct:
        return None
    if len(distinct) == 1:
        return distinct.pop()
    return "; ".join(f"{name}: {error}" for name, error in errors.items())


def _next_location(
    loc: LocationState, status: Status, at: datetime, error: str | None, policy: AlertPolicy
) -> LocationState:
    if status == "down":
        downs = loc.downs + 1
        failing = loc.down or loc.downs > 0
        return LocationState(
            downs=downs,
            ups=0,
            down=loc.down or downs >= policy.after,
            down_since=loc.down_since if failing and loc.down_since is not None else at,
            up_since=None,
            error=error or loc.error,
        )
    ups = loc.ups + 1
    still_down = loc.down and ups < policy.recover_after
    return LocationState(
        downs=0,
        ups=ups,
        down=still_down,
        down_since=loc.down_since if still_down else None,
        up_since=(loc.up_since or at) if still_down else None,
        error=loc.error if still_down else None,
    )


def _open(
    state: CheckAlertState,
    locations: dict[str, LocationState],
    down: tuple[str, ...],
    at: datetime,
    policy: AlertPolicy,
    flap_window: timedelta,
    flap_incidents: int,
) -> tuple[CheckAlertState, Transition]:
    starts = sorted(locations[name].down_since or at for name in down)
    started_at = min(starts[min(policy.quorum, len(starts)) - 1], at)
    recent = tuple(moment for moment in state.recent_opens if timedelta(0) <= at - moment < flap_window)
    recent = (*recent[-(flap_incidents * 2) :], at)
    flapping = len(recent) >= flap_incidents
    error = _error_summary(locations, down)
    incident = Incident(
        id=f"{state.check}@{format_timestamp(at)}",
        started_at=started_at,
        opened_at=at,
        locations=down,
        error=error,
        last_notified_at=at,
        flapping=flapping,
        recent_incidents=len(recent),
    )
    transition = Transition(
        kind="opened",
        check=state.check,
        incident_id=incident.id,
        locations=down,
        error=error,
        started_at=started_at,
        at=at,
        flapping=flapping,
        recent_incidents=len(recent),
    )
    return CheckAlertState(state.check, locations, incident, recent), transition


def _resolve(
    state: CheckAlertState,
    incident: Incident,
    locations: dict[str, LocationState],
    ended_at: datetime,
    at: datetime,
    notify: bool,
) -> tuple[CheckAlertState, Transition]:
    ended_at = max(ended_at, incident.started_at)
    transition = Transition(
        kind="resolved",
        check=state.check,
        incident_id=incident.id,
        locations=incident.locations,
        error=incident.error,
        started_at=incident.started_at,
        at=at,
        ended_at=ended_at,
        downtime=(ended_at - incident.started_at).total_seconds(),
        flapping=incident.flapping,
        recent_incidents=incident.recent_incidents,
        notify=notify,
    )
    return CheckAlertState(state.check, locations, None, state.recent_opens), transition


def _settle(
    state: CheckAlertState,
    locations: dict[str, LocationState],
    *,
    may_open: bool,
    ended_at: datetime,
    at: datetime,
    policy: AlertPolicy,
    in_maintenance: bool,
    flap_window: timedelta,
    flap_incidents: int,
) -> tuple[CheckAlertState, list[Transition]]:
    down = tuple(sorted(name for name, loc in locations.items() if loc.down))
    incident = state.incident
    if incident is None:
        if may_open and len(down) >= policy.quorum and not in_maintenance:
            new_state, opened = _open(state, locations, down, at, policy, flap_window, flap_incidents)
            return new_state, [opened]
        return replace(state, locations=locations), []
    if len(down) < policy.quorum:
        new_state, resolved = _resolve(state, incident, locations, ended_at, at, notify=not in_maintenance)
        return new_state, [resolved]
    merged = tuple(sorted(set(incident.locations) | set(down)))
    if merged != incident.locations:
        incident = replace(incident, locations=merged)
    return replace(state, locations=locations, incident=incident), []


def observe(
    state: CheckAlertState,
    status: Status,
    location: str,
    at: datetime,
    error: str | None,
    policy: AlertPolicy,
    in_maintenance: bool,
    *,
    flap_window: timedelta = FLAP_WINDOW,
    flap_incidents: int = FLAP_INCIDENTS,
) -> tuple[CheckAlertState, list[Transition]]:
    """Feed one result of the check at `location` (run at `at`, aware UTC) into its alert state.

    Returns the new state and at most one transition ("opened" or "resolved"; never "repeat", those
    come from `due_repeats`). The input state is not modified.
    """
    _check_aware(at)
    before = state.locations.get(location, LocationState())
    after = _next_location(before, status, at, error, policy)
    locations = {**state.locations, location: after}
    ended_at = (before.up_since or at) if before.down and not after.down else at
    return _settle(
        state,
        locations,
        may_open=status == "down",
        ended_at=ended_at,
        at=at,
        policy=policy,
        in_maintenance=in_maintenance,
        flap_window=flap_window,
        flap_incidents=flap_incidents,
    )


def due_repeats(
    state: CheckAlertState, now: datetime, policy: AlertPolicy, *, in_maintenance: bool = False
) -> tuple[CheckAlertState, list[Transition]]:
    """A "repeat" reminder when the incident is open, `policy.repeat` > 0 and that long has passed since
    it was last announced. Nothing during maintenance: the reminder then comes on the first tick after
    the window. After a long pause (a stopped daemon) there is one reminder, never a burst.
    """
    _check_aware(now)
    incident = state.incident
    if incident is None or policy.repeat <= 0 or in_maintenance:
        return state, []
    last = incident.last_notified_at or incident.opened_at
    if (now - last).total_seconds() < policy.repeat:
        return state, []
    down = state.down_locations or incident.locations
    transition = Transition(
        kind="repeat",
        check=state.check,
        incident_id=incident.id,
        locations=down,
        error=_error_summary(state.locations, down) if state.down_locations else incident.error,
        started_at=incident.started_at,
        at=now,
        flapping=incident.flapping,
        recent_incidents=incident.recent_incidents,
    )
    return replace(state, incident=replace(incident, last_notified_at=now)), [transition]


def forget_locations(
    state: CheckAlertState, keep: set[str] | frozenset[str], at: datetime, policy: AlertPolicy, in_maintenance: bool
) -> tuple[CheckAlertState, list[Transition]]:
    """Drop locations the check no longer runs at (after a config reload), so a location that stopped
    reporting while down cannot hold an incident open forever. May resolve the incident.
    """
    _check_aware(at)
    if set(state.locations) <= set(keep):
        return state, []
    locations = {name: loc for name, loc in state.locations.items() if name in keep}
    return _settle(
        state,
        locations,
        may_open=False,
        ended_at=at,
        at=at,
        policy=policy,
        in_maintenance=in_maintenance,
        flap_window=FLAP_WINDOW,
        flap_incidents=FLAP_INCIDENTS,
    )
