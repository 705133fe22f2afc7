"""The status feed (`GET /api/v1/status`, version 1): what every status page, widget and script reads.

`FeedBuilder.build` reads the configuration (which checks exist, their groups, locations, quorum,
maintenance windows) and the store (current state, open and recent incidents, uptime and latency through
the SummaryCache), and returns one JSON-able document whose shape is fixed by `feed.schema.json`.

Status of a check, from its configured locations' latest results: `maintenance` while a maintenance
window covers it; `down` when at least `alert.quorum` locations are down; `degraded` when some location
is down (fewer than quorum) or degraded; `up`; `unknown` before its first result. The overall status is
the worst over checks in the order down > degraded > maintenance > up (unknown checks do not count
unless every check is unknown).

The store is read again only after it committed something (its writer's commit counter moved), and a
check's part of the document is re-encoded only when something it shows changed, so a feed for 1,000
checks costs one read of the current state and a join when results arrive, and almost nothing when not.
This assumes the store's own writer is the only one writing the file (one prober holds the database).

The builder only reads. It never shows a check's headers or a notifier URL, shows a target only through
`redact_url`, and scrubs every string that came from a probe. It is not thread-safe: the app builds one
feed at a time (in a worker thread).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from prober.api.secrets import Scrubber, check_target
from prober.api.source import ApiSource, store_of
from prober.api.summaries import CheckSummary, DailyHistory, Marker, SummaryCache, markers_of
from prober.config.announcements import ShownAnnouncement, shown_announcements
from prober.config.loader import CheckSpec, Config
from prober.config.maintenance import name_matches, occurrence, window_applies
from prober.config.models import MaintenanceWindow
from prober.results import format_timestamp
from prober.store import CurrentState, Incident, ReadOnlyStore

__all__ = [
    "FEED_VERSION",
    "SEVERITY",
    "CheckStatus",
    "EncodedDocument",
    "FeedBuilder",
    "announcement_json",
    "check_reason",
    "check_status",
    "dumps",
    "incident_json",
    "worst",
]

FEED_VERSION = 1
CheckStatus = Literal["up", "degraded", "down", "maintenance", "unknown"]
SEVERITY: dict[str, int] = {"unknown": 0, "up": 1, "maintenance": 2, "degraded": 3, "down": 4}
RECENT_INCIDENTS = 20
REREAD_ALL = 100
"""More checks with new results than this since the last read: read every current state at once."""
UPCOMING_MAINTENANCE = timedelta(days=7)


def worst(statuses: Iterable[str]) -> CheckStatus:
    """The most severe status (see SEVERITY); `unknown` for none."""
    found: CheckStatus = "unknown"
    for status in statuses:
        if SEVERITY[status] > SEVERITY[found]:
            found = status  # type: ignore[assignment]
    return found


def _ts(moment: datetime | None) -> str | None:
    return None if moment is None else format_timestamp(moment)


def check_status(spec: CheckSpec, states: list[CurrentState], in_maintenance: bool) -> CheckStatus:
    if in_maintenance:
        return "maintenance"
    if not states:
        return "unknown"
    down = sum(1 for state in states if state["status"] == "down")
    quorum = max(1, min(spec.model.alert.quorum, len(spec.model.locations)))
    if down >= quorum:
        return "down"
    if down or any(state["status"] == "degraded" for state in states):
        return "degraded"
    return "up"


def incident_json(incident: Incident, scrub: Scrubber, now: datetime | None = None) -> dict[str, Any]:
    """An incident for the API; with `now`, also `duration_seconds` (so far, while it is open)."""
    data = {
        "id": incident["id"],
        "check": incident["check"],
        "locations": list(incident["locations"]),
        "error": scrub.optional(incident["error"]),
        "started_at": _ts(incident["started_at"]),
        "resolved_at": _ts(incident["resolved_at"]),
        "downtime_seconds": incident["downtime_seconds"],
        "open": incident["resolved_at"] is None,
    }
    if now is not None:
        downtime = incident["downtime_seconds"]
        so_far = max(0.0, (now - incident["started_at"]).total_seconds())
        data["duration_seconds"] = round(downtime if downtime is not None else so_far, 3)
    return data


def announcement_json(item: ShownAnnouncement, scrub: Scrubber) -> dict[str, Any]:
    announcement = item.announcement
    return {
        "id": item.id,
        "title": scrub.text(announcement.title),
        "message": scrub.text(announcement.message),
        "severity": announcement.severity,
        "checks": list(announcement.checks),
        "affected": list(item.affected),
        "from": _ts(announcement.starts),
        "until": _ts(announcement.until),
        "active": item.active,
    }


def check_reason(states: list[CurrentState], scrub: Scrubber) -> dict[str, Any] | None:
    """Why a check is not up, in one line: the error of its worst location (the one in that state the
    longest), with that location and since when; None when every shown location is up."""
    failing = [state for state in states if state["status"] != "up"]
    if not failing:
        return None
    level = max(SEVERITY[state["status"]] for state in failing)
    state = min((item for item in failing if SEVERITY[item["status"]] == level), key=lambda item: item["last_change"])
    text = scrub.optional(state["error"]) or f"the latest result was {state['status']}"
    return {
        "status": state["status"],
        "text": text,
        "location": state["location"],
        "since": _ts(state["last_change"]),
    }


@dataclass(frozen=True, slots=True)
class _ActiveWindow:
    window: MaintenanceWindow
    ends_at: datetime


def _maintenance(windows: list[MaintenanceWindow], now: datetime) -> tuple[list[_ActiveWindow], list[dict[str, Any]]]:
    """Active windows (in definition order) and the feed's `maintenance` list: active and upcoming."""
    active: list[_ActiveWindow] = []
    listed: list[dict[str, Any]] = []
    for window in windows:
        current = occurrence(window, now)
        if current is not None:
            active.append(_ActiveWindow(window, current[1]))
            start, end = current
        else:
            start = window.schedule.next_after(now, window.name)
            end = start + timedelta(seconds=window.duration)
            if start - now > UPCOMING_MAINTENANCE or window.duration <= 0:
                continue
        listed.append(
            {
                "name": window.name,
                "active": current is not None,
                "starts_at": _ts(start),
                "ends_at": _ts(end),
                "checks": list(window.checks),
            }
        )
    return active, listed


def _upcoming_by_check(listed: list[dict[str, Any]], layout: _Layout) -> dict[str, dict[str, Any]]:
    """Per check, the next scheduled (not active) window of the feed's `maintenance` list that covers it."""
    found: dict[str, dict[str, Any]] = {}
    for item in sorted((item for item in listed if not item["active"]), key=lambda item: str(item["starts_at"])):
        shown = {"name": item["name"], "starts_at": item["starts_at"], "ends_at": item["ends_at"]}
        for name in layout.matching(item["checks"]):
            found.setdefault(name, shown)
    return found


def _window_for(active: list[_ActiveWindow], check: str) -> _ActiveWindow | None:
    for item in active:
        if window_applies(item.window, check):
            return item
    return None


def _location_json(location: str, state: CurrentState | None, scrub: Scrubber) -> dict[str, Any]:
    if state is None:
        return {
            "location": location,
            "status": "unknown",
            "started_at": None,
            "duration_ms": None,
            "error": None,
            "since": None,
            "consecutive_down": 0,
        }
    return {
        "location": location,
        "status": state["status"],
        "started_at": _ts(state["started_at"]),
        "duration_ms": round(state["duration_ms"], 3),
        "error": scrub.optional(state["error"]),
        "since": _ts(state["last_change"]),
        "consecutive_down": state["consecutive_down"],
    }


@dataclass(frozen=True, slots=True)
class _Reading:
    """What one read of the store found, and the store's commit count just before it."""

    store: ReadOnlyStore
    commits: int
    config: Config
    by_check: dict[str, dict[str, CurrentState]]
    markers: dict[str, Marker]
    open_incidents: dict[str, Incident]
    recent: list[Incident]
    states: dict[tuple[str, str], CurrentState]
    """Every current state by (check, location), for the next read to reuse the unchanged ones."""


@dataclass(frozen=True, slots=True)
class _Layout:
    """What the feed takes from one configuration: (spec, name, group) in order, and the groups."""

    config: Config
    items: list[tuple[CheckSpec, str, str | None]]
    groups: dict[str | None, list[str]]
    matches: dict[tuple[str, ...], frozenset[str]]
    """Name globs → the configured checks they match (filled as asked: a glob is matched once per config)."""

    def matching(self, patterns: Sequence[str]) -> frozenset[str]:
        key = tuple(patterns)
        found = self.matches.get(key)
        if found is None:
            found = self.matches[key] = frozenset(name for _, name, _ in self.items if name_matches(name, key))
        return found

    @classmethod
    def of(cls, config: Config) -> _Layout:
        items = [(spec, spec.name, spec.model.group) for spec in config.checks]
        groups: dict[str | None, list[str]] = {}
        for _, name, group in items:
            groups.setdefault(group, []).append(name)
        return cls(config, items, groups, {})


@dataclass(frozen=True, slots=True)
class _Fragment:
    """One check's part of the feed, with what it was built from."""

    spec: CheckSpec
    summary: CheckSummary
    marker: Marker
    window: tuple[str, datetime] | None
    incident: tuple[int, tuple[str, ...], str | None] | None
    scheduled: tuple[str, str] | None
    data: dict[str, Any]
    body: bytes


class EncodedDocument(dict[str, Any]):
    """A document that carries its own JSON (`json`), which `dumps` returns as it is."""

    json: bytes = b""


def dumps(document: Any) -> bytes:
    """Compact JSON, UTF-8, no NaN."""
    if isinstance(document, EncodedDocument) and document.json:
        return document.json
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class FeedBuilder:
    """Builds feed documents and daily histories; keeps the per-check numbers between builds."""

    def __init__(
        self,
        source: ApiSource,
        *,
        title: str = "Status",
        clock: Callable[[], datetime] | None = None,
        summary_budget: int = 25,
    ) -> None:
        self.source = source
        self.title = title
        self.clock = clock or (lambda: datetime.now(UTC))
        self.summaries = SummaryCache(budget=summary_budget)
        self.history = DailyHistory()
        self._scrubber: tuple[Config, Scrubber] | None = None
        self._fragments: dict[str, _Fragment] = {}
        self._reading: _Reading | None = None
        self._layout_cache: _Layout | None = None
        self._read_lock = threading.Lock()
        self._history_lock = threading.Lock()

    def scrubber(self) -> Scrubber:
        """The scrubber of the current configuration (rebuilt after a reload)."""
        config = self.source.config
        if self._scrubber is None or self._scrubber[0] is not config:
            self._scrubber = (config, Scrubber.from_config(config))
        return self._scrubber[1]

    def _read(self, store: ReadOnlyStore, config: Config) -> _Reading:
        """Current states and incidents, read again only when the store committed something since the last
        read (or the configuration changed). The commit counter is read before the data and counts only
        finished transactions, so a read can be newer than its counter but never older."""
        with self._read_lock:
            commits = store.stats.commits
            last = self._reading
            if last is not None and last.commits == commits and last.config is config and last.store is store:
                return last
            states = self._current(store, last.states if last is not None and last.store is store else {})
            by_check: dict[str, dict[str, CurrentState]] = {}
            for state in states:
                by_check.setdefault(state["check"], {})[state["location"]] = state
            found = markers_of([(state["check"], state["location"], state["result_id"]) for state in states])
            markers = {name: found.get(name, ()) for _, name, _ in self._layout(config).items}
            open_incidents: dict[str, Incident] = {}
            for incident in store.incidents(limit=100_000, open_only=True):
                open_incidents.setdefault(incident["check"], incident)  # newest first: keep the newest
            self._reading = _Reading(
                store=store,
                commits=commits,
                config=config,
                by_check=by_check,
                markers=markers,
                open_incidents=open_incidents,
                recent=store.incidents(limit=RECENT_INCIDENTS),
                states={(state["check"], state["location"]): state for state in states},
            )
            return self._reading

    @staticmethod
    def _current(store: ReadOnlyStore, known: dict[tuple[str, str], CurrentState]) -> list[CurrentState]:
        """Every current state, decoding only the rows whose result changed since `known` (the last read):
        with results arriving for a few checks a second, a read costs the list of result ids, not 1,000
        rows of metrics JSON."""
        markers = store.current_markers()
        changed = {check for check, location, result_id in markers if (
            (state := known.get((check, location))) is None or state["result_id"] != result_id)}  # fmt: skip
        if len(changed) > REREAD_ALL:
            return store.current()
        fresh = {(state["check"], state["location"]): state for check in changed for state in store.current(check)}
        found = []
        for check, location, _ in markers:
            state = fresh.get((check, location)) or known.get((check, location))
            if state is not None:
                found.append(state)
        return found

    def _layout(self, config: Config) -> _Layout:
        layout = self._layout_cache
        if layout is None or layout.config is not config:
            layout = self._layout_cache = _Layout.of(config)
        return layout

    def build(self) -> tuple[dict[str, Any], bytes]:
        """The feed document and its JSON (blocking: call it in a worker thread).

        A check's part of the document is rebuilt (and re-encoded) only when something it shows changed:
        its definition, a new result, its numbers, a maintenance window or its open incident."""
        now = self.clock()
        config = self.source.config
        store = store_of(self.source)
        scrub = self.scrubber()
        reading = self._read(store, config)
        by_check, markers, open_incidents = reading.by_check, reading.markers, reading.open_incidents
        summaries = self.summaries.refresh(store, markers, now)
        recent = reading.recent
        active, maintenance = _maintenance(config.maintenance, now)
        layout = self._layout(config)
        upcoming = _upcoming_by_check(maintenance, layout)

        checks: list[dict[str, Any]] = []
        encoded: list[bytes] = []
        previous = self._fragments
        fragments: dict[str, _Fragment] = {}
        for spec, name, _ in layout.items:
            window = _window_for(active, name) if active else None
            window_key = None if window is None else (window.window.name, window.ends_at)
            incident = open_incidents.get(name)
            incident_key = (
                None if incident is None else (incident["id"], tuple(incident["locations"]), incident["error"])
            )
            summary = summaries[name]
            marker = markers[name]
            scheduled = upcoming.get(name) if upcoming else None
            scheduled_key = None if scheduled is None else (scheduled["name"], scheduled["starts_at"])
            fragment = previous.get(name)
            if (
                fragment is None
                or fragment.spec is not spec
                or fragment.summary is not summary
                or fragment.marker != marker
                or fragment.window != window_key
                or fragment.incident != incident_key
                or fragment.scheduled != scheduled_key
            ):
                data = self._check_json(spec, by_check.get(name, {}), summary, window, incident, scrub)
                data["scheduled_maintenance"] = scheduled
                fragment = _Fragment(spec, summary, marker, window_key, incident_key, scheduled_key, data, dumps(data))
            fragments[name] = fragment
            checks.append(fragment.data)
            encoded.append(fragment.body)
        self._fragments = fragments
        status_of = {check["name"]: check["status"] for check in checks}
        counts = {status: 0 for status in SEVERITY}
        for status in status_of.values():
            counts[status] += 1
        head = {
            "version": FEED_VERSION,
            "generated_at": _ts(now),
            "title": self.title,
            "location": self.source.options.location,
            "status": worst(status_of.values()),
            "summary": {**counts, "total": len(checks)},
            "groups": [
                {"name": name, "status": worst(status_of[check] for check in names), "checks": list(names)}
                for name, names in layout.groups.items()
            ],
        }
        shown = shown_announcements(
            config.announcements, now, [name for _, name, _ in layout.items], matching=layout.matching
        )
        tail = {
            "incidents": [incident_json(incident, scrub, now) for incident in recent],
            "maintenance": maintenance,
            "announcements": [announcement_json(item, scrub) for item in shown],
        }
        body = b"".join((dumps(head)[:-1], b',"checks":[', b",".join(encoded), b"],", dumps(tail)[1:]))
        return {**head, "checks": checks, **tail}, body

    def _check_json(
        self,
        spec: CheckSpec,
        states: dict[str, CurrentState],
        summary: CheckSummary,
        window: _ActiveWindow | None,
        incident: Incident | None,
        scrub: Scrubber,
    ) -> dict[str, Any]:
        configured = list(spec.model.locations)
        shown = [state for location, state in states.items() if location in configured]
        status = check_status(spec, shown, window is not None)
        last_status = worst(state["status"] for state in shown) if shown else None
        changes = [state["last_change"] for state in shown if state["status"] == last_status]
        return {
            "name": spec.name,
            "type": spec.type,
            "group": spec.model.group,
            "description": spec.model.description,
            "target": check_target(spec),
            "status": status,
            "last_status": last_status,
            "since": _ts(max(changes)) if changes else None,
            "reason": check_reason(shown, scrub),
            "maintenance": None if window is None else {"name": window.window.name, "ends_at": _ts(window.ends_at)},
            "locations": [_location_json(location, states.get(location), scrub) for location in configured],
            "uptime": dict(summary.uptime),
            "latency": {"p50": summary.latency_p50, "p95": summary.latency_p95, "window": "24h"},
            "incident": None
            if incident is None
            else {
                "id": incident["id"],
                "started_at": _ts(incident["started_at"]),
                "locations": list(incident["locations"]),
                "error": scrub.optional(incident["error"]),
            },
            "page": f"checks/{spec.name}",
        }

    def build_history(self, days: int) -> dict[str, Any]:
        """Daily uptime bars of every configured check (blocking: call it in a worker thread). The answer
        is an EncodedDocument: `dumps` returns the JSON it was built with, joined from each check's kept
        bytes, instead of encoding 90,000 numbers again."""
        now = self.clock()
        config = self.source.config
        store = store_of(self.source)
        markers = self._read(store, config).markers
        wanted = {spec.name: markers.get(spec.name, ()) for spec in config.checks}
        with self._history_lock:  # two requests for different `days` may build at once
            shown, checks_json = self.history.encoded(store, wanted, now, days)
            _, values = self.history.refresh(store, wanted, now, days)
        head = {"version": FEED_VERSION, "generated_at": _ts(now), "days": [day.isoformat() for day in shown]}
        document = EncodedDocument({**head, "checks": values})
        document.json = dumps(head)[:-1] + b',"checks":' + checks_json + b"}"
        return document
