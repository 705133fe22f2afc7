"""The blocking halves of the read endpoints: parse a request's query, then read the store and shape the
answer (run in a worker thread by app.py). Raw results, incidents, metrics, health.

Query errors are 400s that say what is accepted. Nothing here writes; every string that came from a
probe passes through the configuration's Scrubber, and artifact paths are cut to their file names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePath
from typing import Any

from aiohttp import web

import prober
from prober.api.feed import FEED_VERSION, FeedBuilder, incident_json
from prober.api.maintenance_now import checks_in_maintenance
from prober.api.metrics import MetricsSnapshot, render
from prober.api.source import ApiSource, store_of
from prober.api.summaries import MAX_DAYS
from prober.config.durations import parse_duration
from prober.daemon.health import database_problem
from prober.results import Result, format_timestamp
from prober.scheduling.stats import SchedulerStats

__all__ = ["IncidentsQuery", "ResultsQuery", "Views"]

MAX_RESULTS = 1000
MAX_INCIDENTS = 1000


@dataclass(frozen=True, slots=True)
class ResultsQuery:
    check: str
    since: datetime | None
    limit: int
    location: str | None


@dataclass(frozen=True, slots=True)
class IncidentsQuery:
    limit: int
    check: str | None
    open_only: bool


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=message)


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(f"{name} must be a whole number between {low} and {high}, got {raw!r}") from None
    if not low <= value <= high:
        raise _bad(f"{name} must be between {low} and {high}, got {value}")
    return value


def _since(raw: str | None, now: datetime) -> datetime | None:
    """`1h`, `30m`, `7d` (that long ago) or an ISO 8601 time; None for all."""
    if raw is None or raw == "":
        return now - timedelta(hours=1)
    if raw == "all":
        return None
    try:
        return now - timedelta(seconds=parse_duration(raw))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"since must be a duration like 1h or 7d, an ISO 8601 time, or 'all'; got {raw!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Views:
    def __init__(self, source: ApiSource, builder: FeedBuilder) -> None:
        self.source = source
        self.builder = builder

    # --- query parsing (in the event loop) ---------------------------------------------------------------

    def days(self, request: web.Request) -> int:
        return _int(request, "days", MAX_DAYS, 1, MAX_DAYS)

    def results_query(self, request: web.Request) -> ResultsQuery:
        now = self.builder.clock()
        return ResultsQuery(
            check=request.match_info["name"],
            since=_since(request.query.get("since"), now),
            limit=_int(request, "limit", 100, 1, MAX_RESULTS),
            location=request.query.get("location") or None,
        )

    def incidents_query(self, request: web.Request) -> IncidentsQuery:
        open_text = request.query.get("open", "").lower()
        if open_text not in ("", "true", "false", "1", "0"):
            raise _bad(f"open must be true or false, got {open_text!r}")
        return IncidentsQuery(
            limit=_int(request, "limit", 50, 1, MAX_INCIDENTS),
            check=request.query.get("check") or None,
            open_only=open_text in ("true", "1"),
        )

    # --- blocking reads (in a worker thread) -------------------------------------------------------------

    def _result_json(self, result: Result) -> dict[str, Any]:
        scrub = self.builder.scrubber()
        data = result.to_json()
        data["artifacts"] = [PurePath(path).name for path in result.artifacts]
        for key in ("error", "metrics", "assertions", "details"):
            if key in data:
                data[key] = scrub.json(data[key])
        return data

    def results(self, query: ResultsQuery) -> tuple[int, dict[str, Any]]:
        store = store_of(self.source)
        known = any(spec.name == query.check for spec in self.source.config.checks)
        results = store.results(query.check, since=query.since, limit=query.limit, location=query.location)
        if not known and not results and not store.results(query.check, limit=1):
            return 404, {"error": f"there is no check named {query.check!r}"}
        return 200, {
            "version": FEED_VERSION,
            "check": query.check,
            "since": None if query.since is None else format_timestamp(query.since),
            "results": [self._result_json(result) for result in results],
        }

    def incidents(self, query: IncidentsQuery) -> dict[str, Any]:
        store = store_of(self.source)
        scrub = self.builder.scrubber()
        found = store.incidents(limit=query.limit, check=query.check, open_only=query.open_only)
        return {"version": FEED_VERSION, "incidents": [incident_json(item, scrub) for item in found]}

    def metrics(self, accept: str, stats: SchedulerStats | None) -> tuple[bytes, str]:
        store = store_of(self.source)
        config = self.source.config
        states = store.current()
        snapshot = MetricsSnapshot(
            states=states,
            types={spec.name: spec.type for spec in config.checks},
            location=self.source.options.location,
            maintenance=checks_in_maintenance(config, {state["check"] for state in states}, self.builder.clock()),
            open_incidents=[item["check"] for item in store.incidents(limit=100_000, open_only=True)],
            scheduler=stats,
            failed_notifications=store.failed_notification_counts(),
            store_stats=store.stats,
            store_queued=store.queued,
            push=getattr(self.source, "push_stats", None),
            runtime=getattr(self.source, "runtime", None),
        )
        return render(snapshot, accept)

    def health(self, stats: SchedulerStats | None) -> dict[str, Any]:
        store = self.source.store
        document: dict[str, Any] = {
            "status": "ok",
            "version": prober.__version__,
            "location": self.source.options.location,
            "checks": len(self.source.config.checks),
        }
        if store is None:
            document["status"] = "starting"
        else:
            try:
                store.incidents(limit=1)
                document["store"] = {"queued": store.queued, "results_written": store.stats.results}
            except Exception as exc:  # the database went away: not live
                document["status"] = "failing"
                document["error"] = f"cannot read the database: {exc}"
            path = getattr(store, "path", None)
            problem = database_problem(path, getattr(store, "file_identity", None)) if path is not None else None
            if problem is not None and document["status"] == "ok":
                document["status"] = "failing"
                document["error"] = problem
        if stats is not None:
            document["scheduler"] = {
                "in_flight": stats.in_flight,
                "waiting": stats.waiting,
                "lag_p99_seconds": stats.lag.p99,
                "runs": stats.runs,
                "errors": stats.errors,
            }
        return document
