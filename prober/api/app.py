"""The aiohttp application: routes, the response cache, CORS, error handling, the status page files.

    app = create_app(daemon)            # anything satisfying ApiSource
    runner = web.AppRunner(app); await runner.setup(); await web.TCPSite(runner, host, port).start()

Every read endpoint is computed at most once per `cache_ttl` (1 s) however many clients poll it, and its
data is never older than that (plus the time to compute it). Reads of the store run in worker threads,
so a slow query never stalls the event loop the scheduler runs in. Read endpoints under /api/ and
/badge/ allow any origin (CORS `*`); ingest does not.

The application reads; the one way it changes anything is ingest handing results to `source.accept`.
It never exposes a header, a notifier URL, a token or an unredacted check URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from prober.api.atom import CONTENT_TYPE as ATOM
from prober.api.atom import atom_feed
from prober.api.badges import status_badge, uptime_badge
from prober.api.cache import Cached, ResponseCache, age_of
from prober.api.check_page import ARTIFACT_NAME, CheckPage, artifact_path
from prober.api.feed import FeedBuilder, dumps, incident_json
from prober.api.ingest import DEFAULT_MAX_BODY, IngestHandler
from prober.api.ping import add_routes as add_ping_routes
from prober.api.source import ApiSource, StoreUnavailableError, scheduler_stats, store_of
from prober.api.statuspage import status_json, summary_json
from prober.api.summaries import MAX_DAYS
from prober.api.views import Views
from prober.clock import Clock, SystemClock
from prober.results import format_timestamp

__all__ = ["API_KEY", "CHECK_SCHEMA_PATH", "SCHEMA_PATH", "STATIC_DIR", "FeedState", "create_app"]

STATIC_DIR = Path(str(resources.files("prober.api") / "static"))
SCHEMA_PATH = Path(str(resources.files("prober.api") / "feed.schema.json"))
CHECK_SCHEMA_PATH = Path(str(resources.files("prober.api") / "check.schema.json"))
JSON = "application/json"
_CORS_PREFIXES = ("/api/v1/status", "/api/v1/history", "/api/v1/checks/", "/api/v1/incidents", "/api/v2/", "/badge/")
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)


class FeedState:
    """The current feed document and its JSON, built in a worker thread.

    A document younger than `ttl` is served as is; once it is older than half the ttl, the next request
    starts a rebuild in the background and is still answered at once, so a page polled often never waits
    for a build. A request that finds no document younger than `ttl` waits for a fresh one (one build
    for all waiters). The age counts from when the build began reading, by `clock` (prober.api.cache.age_of)."""

    def __init__(self, builder: FeedBuilder, ttl: float, clock: Clock) -> None:
        self.builder = builder
        self.ttl = ttl
        self.clock = clock
        self._document: dict[str, Any] | None = None
        self._body = b""
        self._at = -1e18
        self._lock = asyncio.Lock()
        self._ahead: asyncio.Task[None] | None = None
        self.builds = 0

    def _age(self) -> float:
        return age_of(self._at, self.clock) if self._document is not None else float("inf")

    async def _rebuild(self) -> None:
        async with self._lock:
            if self._age() < self.ttl / 2:
                return  # someone else just built it
            started = self.clock.now().timestamp()
            self._document, self._body = await asyncio.to_thread(self.builder.build)
            self._at = started
            self.builds += 1

    async def get(self) -> tuple[dict[str, Any], bytes]:
        age = self._age()
        if age >= self.ttl:
            await self._rebuild()
        elif age >= self.ttl / 2 and (self._ahead is None or self._ahead.done()):
            self._ahead = asyncio.get_running_loop().create_task(self._rebuild())
            self._ahead.add_done_callback(lambda task: task.cancelled() or task.exception())
        assert self._document is not None
        return self._document, self._body

    async def close(self) -> None:
        if self._ahead is not None and not self._ahead.done():
            self._ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ahead


def _cors(path: str) -> bool:
    return path.startswith(_CORS_PREFIXES)


@web.middleware
async def _middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    if request.method == "OPTIONS" and _cors(request.path):
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "86400",
            },
        )
    try:
        response = await handler(request)
    except StoreUnavailableError as exc:
        response = web.json_response({"error": str(exc)}, status=503, headers={"Retry-After": "1"})
    except web.HTTPClientError as exc:
        if not request.path.startswith(("/api/", "/badge/")):
            raise
        response = web.json_response({"error": exc.text or exc.reason}, status=exc.status)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.method in ("GET", "HEAD") and _cors(request.path):
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _respond(cached: Cached, *, max_age: int = 1) -> web.Response:
    return web.Response(
        body=cached.body,
        status=cached.status,
        content_type=cached.content_type.split(";")[0],
        charset="utf-8" if any(kind in cached.content_type for kind in ("json", "svg", "xml")) else None,
        headers={"Cache-Control": f"public, max-age={max_age}"},
    )


class _Api:
    """The handlers, sharing one feed state and one response cache."""

    def __init__(self, source: ApiSource, builder: FeedBuilder, cache_ttl: float, cache_clock: Clock) -> None:
        self.source = source
        self.feed = FeedState(builder, cache_ttl, cache_clock)
        self.cache = ResponseCache(cache_ttl, clock=cache_clock)
        self.views = Views(source, builder)
        self.started = time.monotonic()
        self._warm_up: asyncio.Task[None] | None = None
        self.index = (STATIC_DIR / "index.html").read_bytes()
        self.check_html = (STATIC_DIR / "check.html").read_bytes()
        self.check_pages = CheckPage(builder.clock)

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.index,
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-cache", "Content-Security-Policy": _CSP, "Referrer-Policy": "no-referrer"},
        )

    async def check_page(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        known = any(spec.name == name for spec in self.source.config.checks)
        return web.Response(
            body=self.check_html if known else _NOT_FOUND_PAGE,
            status=200 if known else 404,
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-cache", "Content-Security-Policy": _CSP, "Referrer-Policy": "no-referrer"},
        )

    async def check_data(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]

        async def make() -> Any:
            document, _ = await self.feed.get()
            check = next((item for item in document["checks"] if item["name"] == name), None)
            if check is None:
                return 404, {"error": f"there is no check named {name!r}"}
            store = store_of(self.source)
            scrub = self.views.builder.scrubber()
            retention = self.source.config.retention.raw
            return await asyncio.to_thread(
                self.check_pages.build, store, document, check, scrub, raw_retention=retention
            )

        return await self._json(f"check {name}", make)

    async def artifact(self, request: web.Request) -> web.StreamResponse:
        """A screenshot of a check, only when it is a PNG in the artifacts directory that one of the
        check's results lists (so no other file of the machine can be asked for)."""
        name, file = request.match_info["name"], request.match_info["file"]
        directory = _artifacts_dir(self.source)
        if not ARTIFACT_NAME.match(file) or directory is None:
            raise web.HTTPNotFound(text="no such screenshot")
        store = store_of(self.source)
        since = self.views.builder.clock() - timedelta(seconds=self.source.config.retention.raw)
        listed = await asyncio.to_thread(store.artifact_listed, name, file, since)
        path = artifact_path(directory, file) if listed else None
        if path is None:
            raise web.HTTPNotFound(text="no such screenshot")
        return web.FileResponse(path, headers={"Content-Type": "image/png", "Cache-Control": "public, max-age=3600"})

    async def status(self, request: web.Request) -> web.Response:
        _, body = await self.feed.get()
        return _respond(Cached(body, JSON))

    async def _json(self, key: str, make: Callable[[], Awaitable[Any]]) -> web.Response:
        async def produce() -> Cached:
            document = await make()
            status = 200
            if isinstance(document, tuple):
                status, document = document
            return Cached(dumps(document), JSON, status)

        return _respond(await self.cache.get(key, produce))

    async def summary(self, request: web.Request) -> web.Response:
        async def make() -> Any:
            document, _ = await self.feed.get()
            return summary_json(document, url=_base_url(request))

        return await self._json(f"summary {_base_url(request)}", make)

    async def statuspage_status(self, request: web.Request) -> web.Response:
        async def make() -> Any:
            document, _ = await self.feed.get()
            return status_json(document, url=_base_url(request))

        return await self._json(f"status.json {_base_url(request)}", make)

    async def history(self, request: web.Request) -> web.Response:
        days = self.views.days(request)
        return await self._json(f"history {days}", lambda: asyncio.to_thread(self.views.builder.build_history, days))

    async def results(self, request: web.Request) -> web.Response:
        query = self.views.results_query(request)
        key = f"results {query.check} {request.query_string}"  # `since=1h` means the same for a second
        return await self._json(key, lambda: asyncio.to_thread(self.views.results, query))

    async def incidents(self, request: web.Request) -> web.Response:
        query = self.views.incidents_query(request)
        return await self._json(f"incidents {query}", lambda: asyncio.to_thread(self.views.incidents, query))

    async def badge(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        window = request.query.get("window", "status")
        label = request.query.get("label", "")[:64]
        if window not in ("status", "24h", "7d", "30d", "90d"):
            raise web.HTTPBadRequest(text="window must be one of 24h, 7d, 30d, 90d (or absent for the status)")

        async def produce() -> Cached:
            document, _ = await self.feed.get()
            check = next((item for item in document["checks"] if item["name"] == name), None)
            text = label or (name if window == "status" else f"{name} {window}")
            if check is None:
                return Cached(status_badge(label or name, "unknown check").encode(), "image/svg+xml", 404)
            if window == "status":
                return Cached(status_badge(text, check["status"]).encode(), "image/svg+xml")
            return Cached(uptime_badge(text, check["uptime"][window]).encode(), "image/svg+xml")

        return _respond(await self.cache.get(f"badge {name} {window} {label}", produce))

    async def metrics(self, request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")

        async def produce() -> Cached:
            stats = scheduler_stats(self.source, checks=True)  # in the loop: the scheduler is not thread-safe
            body, content_type = await asyncio.to_thread(self.views.metrics, accept, stats)
            return Cached(body, content_type)

        key = "metrics openmetrics" if "openmetrics" in accept else "metrics text"
        cached = await self.cache.get(key, produce)
        headers = {"Content-Type": cached.content_type, "Cache-Control": "no-store"}
        return web.Response(body=cached.body, headers=headers)

    async def atom(self, request: web.Request) -> web.Response:
        """Incidents and announcements as Atom (prober/api/atom.py)."""
        base = _base_url(request)

        async def produce() -> Cached:
            document, _ = await self.feed.get()
            store = store_of(self.source)
            scrub = self.views.builder.scrubber()
            found = await asyncio.to_thread(store.incidents, limit=50)
            incidents = [incident_json(item, scrub) for item in found]
            now = format_timestamp(self.views.builder.clock())
            body = atom_feed(str(document.get("title") or "Status"), base, incidents, document["announcements"], now)
            return Cached(body, ATOM)

        return _respond(await self.cache.get(f"atom {base}", produce), max_age=30)

    async def healthz(self, request: web.Request) -> web.Response:
        document = await asyncio.to_thread(self.views.health, scheduler_stats(self.source, checks=False))
        document["uptime_seconds"] = round(time.monotonic() - self.started, 3)
        store = self.source.store
        health = getattr(store, "write_health", None)
        if health is not None and health.failing_since is not None:
            document["status"] = "failing"
            document["error"] = (
                f"writes to the database fail since {health.failing_since.isoformat(timespec='seconds')}: "
                f"{health.last_error}; {health.held} results are held in memory"
            )
        if health is not None:
            document.setdefault("store", {}).update({"held_in_memory": health.held, "dropped": health.dropped})
        status = 200 if document["status"] == "ok" else 503
        return web.json_response(document, status=status, headers={"Cache-Control": "no-store"})

    async def livez(self, request: web.Request) -> web.Response:
        """Liveness only: the process answers HTTP. Never the database or the disk (those are /healthz, readiness):
        a restart frees no disk and would throw away the results held in memory."""
        document = {"status": "alive", "uptime_seconds": round(time.monotonic() - self.started, 3)}
        return web.json_response(document, headers={"Cache-Control": "no-store"})

    async def schema(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(SCHEMA_PATH, headers={"Content-Type": "application/schema+json"})

    async def check_schema(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(CHECK_SCHEMA_PATH, headers={"Content-Type": "application/schema+json"})

    async def warm_up(self, app: web.Application) -> None:
        """Compute the per-check numbers and daily bars once in the background, so the first visitor does
        not wait (under a second of a worker thread for 1,000 checks with 90 days of history)."""

        async def run() -> None:
            with contextlib.suppress(Exception):
                await self.feed.get()
                await asyncio.to_thread(self.views.builder.build_history, MAX_DAYS)

        self._warm_up = asyncio.get_running_loop().create_task(run())

    async def stop(self, app: web.Application) -> None:
        await self.feed.close()
        task = self._warm_up
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


API_KEY = web.AppKey("prober_api", _Api)


_NOT_FOUND_PAGE = (
    b'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>No such check</title>'
    b'<meta name="viewport" content="width=device-width, initial-scale=1">'
    b'<link rel="stylesheet" href="../static/style.css"></head><body><main class="wrap">'
    b'<h1>No such check</h1><p><a href="../">Back to the status page</a></p></main></body></html>'
)


def _artifacts_dir(source: ApiSource) -> Path | None:
    """Where the source's runner saves screenshots (the daemon's runner), if it has one."""
    directory = getattr(getattr(source, "runner", None), "artifacts_dir", None)
    if directory is None:
        directory = getattr(source, "artifacts_dir", None)
    return Path(directory) if directory is not None else None


def _base_url(request: web.Request) -> str:
    return str(request.url.origin())


def create_app(
    source: ApiSource,
    *,
    title: str = "Status",
    cache_ttl: float = 1.0,
    max_ingest_bytes: int = DEFAULT_MAX_BODY,
    clock: Callable[[], datetime] | None = None,
    cache_clock: Clock | None = None,
    summary_budget: int = 25,
    warm_up: bool = True,
) -> web.Application:
    """The HTTP API and status page of `source` (docs/api.md).

    title             the status page's name (also the Statuspage `page.name`)
    cache_ttl         seconds a computed response may be served again (at most; 0 disables the cache)
    max_ingest_bytes  largest ingest body accepted (413 beyond)
    clock             the time the feed is computed for (tests); default the wall clock, UTC
    cache_clock       what cached responses age by (tests pass a fake one); default the system clock
    summary_budget    checks whose uptime numbers are refreshed per build besides those with new results
    warm_up           compute the feed once in the background at startup
    """
    builder = FeedBuilder(source, title=title, clock=clock, summary_budget=summary_budget)
    api = _Api(source, builder, cache_ttl, cache_clock if cache_clock is not None else SystemClock())
    app = web.Application(middlewares=[_middleware], client_max_size=max_ingest_bytes)
    app[API_KEY] = api
    routes = app.router
    routes.add_get("/", api.page)
    routes.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
    routes.add_get("/api/v1/status", api.status)
    routes.add_get("/api/v1/status.schema.json", api.schema)
    routes.add_get("/api/v1/checks.schema.json", api.check_schema)
    routes.add_get("/api/v1/history", api.history)
    routes.add_get("/checks/{name}", api.check_page)
    routes.add_get("/api/v1/checks/{name}", api.check_data)
    routes.add_get("/api/v1/checks/{name}/results", api.results)
    routes.add_get("/api/v1/checks/{name}/artifacts/{file}", api.artifact)
    routes.add_get("/api/v1/incidents", api.incidents)
    routes.add_post("/api/v1/ingest", IngestHandler(source, max_body=max_ingest_bytes, clock=clock).handle)
    routes.add_get("/api/v2/summary.json", api.summary)
    routes.add_get("/api/v2/status.json", api.statuspage_status)
    routes.add_get("/metrics", api.metrics)
    routes.add_get("/badge/{name}.svg", api.badge)
    routes.add_get("/healthz", api.healthz)
    routes.add_get("/livez", api.livez)
    routes.add_get("/feed.atom", api.atom)
    add_ping_routes(app, source, clock)
    if warm_up:
        app.on_startup.append(api.warm_up)
    app.on_cleanup.append(api.stop)
    return app
