"""Loopback HTTP targets for the http-probe and CLI tests, and helpers to load and run checks.

One aiohttp application answers every case a prober meets on the web; it listens on 127.0.0.1 only, on a
free port, and its `requests` list records what each request carried (method, path, headers, body and
the client's address):

    /health         200, the readiness JSON (READINESS)
    /sick           200, the readiness JSON with the database unhealthy (a JSON field with the wrong value)
    /unavailable    503 with a short text body
    /echo           200, JSON of the request's method, headers (as sent), body text and parsed JSON
    /headers        200 with `X-Custom: abc`, `Cache-Control: no-store`
    /html           200, a small HTML page (title "Prober test page")
    /text           200, a plain-text body that is not JSON
    /gzip           200, the readiness JSON sent gzip-compressed
    /big?mb=N       200, an N MiB body (default 50) streamed in 64 KiB chunks, never held in memory
    /loop           302 to itself (a redirect loop)
    /redirect/{n}   n redirects (302) down to /redirect/0, which says "landed"
    /found          302 to /health
    /flaky/{key}?fail=N   503 for the first N requests with that key, then 200
    /hang           accepts the request and never answers
    /slow-body      headers at once, then one byte every 0.2 s for a long time
    /slow-headers   waits 30 s before answering (a slow-loris server)

    async with http_target() as target:            # Target(base_url, app)
        url = target.url("/health")

`silent_server()` (a TCP server that never sends a byte) and `unused_port()` (connection refused) come
from tests/certs_factory.py and are re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from certs_factory import HOST, silent_server, unused_port

from prober.config.loader import CheckSpec, load_config
from prober.results import Result
from prober.scheduling.runner import Runner

__all__ = [
    "HOST",
    "READINESS",
    "SICK",
    "Target",
    "http_target",
    "load_checks",
    "make_app",
    "run_check",
    "run_checks",
    "silent_server",
    "unused_port",
    "write_checks",
]

READINESS: dict[str, Any] = {"status": "healthy", "checks": {"database": {"status": "healthy", "latency_ms": 5}}}
SICK: dict[str, Any] = {"status": "healthy", "checks": {"database": {"status": "unhealthy", "latency_ms": 5}}}
HTML_PAGE = (
    "<!doctype html><html><head><title>Prober test page</title></head>"
    "<body><h1>Welcome</h1><p>Order #12345 confirmed.</p></body></html>"
)
CHUNK = 64 * 1024

REQUESTS = web.AppKey("requests", list)
FLAKY = web.AppKey("flaky", dict)


async def _record(request: web.Request) -> dict[str, Any]:
    body = await request.text()
    entry = {
        "method": request.method,
        "path": request.path,
        "headers": {key: value for key, value in request.headers.items()},
        "body": body,
        "peer": request.transport.get_extra_info("peername") if request.transport else None,
    }
    request.app[REQUESTS].append(entry)
    return entry


async def _health(request: web.Request) -> web.Response:
    await _record(request)
    return web.json_response(READINESS)


async def _sick(request: web.Request) -> web.Response:
    await _record(request)
    return web.json_response(SICK)


async def _unavailable(request: web.Request) -> web.Response:
    await _record(request)
    return web.Response(status=503, text="service unavailable")


async def _echo(request: web.Request) -> web.Response:
    entry = await _record(request)
    try:
        parsed = json.loads(entry["body"]) if entry["body"] else None
    except ValueError:
        parsed = None
    return web.json_response({**entry, "peer": list(entry["peer"] or []), "json": parsed})


async def _headers(request: web.Request) -> web.Response:
    await _record(request)
    return web.Response(text="ok", headers={"X-Custom": "abc", "Cache-Control": "no-store"})


async def _html(request: web.Request) -> web.Response:
    await _record(request)
    return web.Response(text=HTML_PAGE, content_type="text/html")


async def _text(request: web.Request) -> web.Response:
    await _record(request)
    return web.Response(text="this is not JSON at all", content_type="text/plain")


async def _gzip(request: web.Request) -> web.Response:
    await _record(request)
    body = gzip.compress(json.dumps(READINESS).encode())
    return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})


async def _big(request: web.Request) -> web.StreamResponse:
    await _record(request)
    mebibytes = int(request.query.get("mb", "50"))
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = mebibytes * 1024 * 1024
    await response.prepare(request)
    chunk = b"x" * CHUNK
    try:
        for _ in range(mebibytes * 1024 * 1024 // CHUNK):
            await response.write(chunk)
    except (ConnectionError, RuntimeError):
        pass  # the prober stopped reading at max_body and closed the connection, as it should
    return response


async def _loop(request: web.Request) -> web.Response:
    await _record(request)
    raise web.HTTPFound("/loop")


async def _redirect(request: web.Request) -> web.Response:
    await _record(request)
    remaining = int(request.match_info["n"])
    if remaining <= 0:
        return web.Response(text="landed")
    raise web.HTTPFound(f"/redirect/{remaining - 1}")


async def _found(request: web.Request) -> web.Response:
    await _record(request)
    raise web.HTTPFound("/health")


async def _flaky(request: web.Request) -> web.Response:
    await _record(request)
    key = request.match_info["key"]
    counts = request.app[FLAKY]
    counts[key] = counts.get(key, 0) + 1
    if counts[key] <= int(request.query.get("fail", "1")):
        return web.Response(status=503, text=f"failing, attempt {counts[key]}")
    return web.json_response({"status": "healthy", "attempt": counts[key]})


async def _hang(request: web.Request) -> web.Response:
    await _record(request)
    await asyncio.sleep(3600)
    return web.Response(text="too late")


async def _slow_body(request: web.Request) -> web.StreamResponse:
    await _record(request)
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    for _ in range(600):
        await response.write(b".")
        await asyncio.sleep(0.2)
    return response


async def _slow_headers(request: web.Request) -> web.Response:
    await _record(request)
    await asyncio.sleep(30)
    return web.Response(text="finally")


def make_app() -> web.Application:
    """The target application (see the module docstring for its routes)."""
    app = web.Application()
    app[REQUESTS] = []
    app[FLAKY] = {}
    app.router.add_route("*", "/health", _health)
    app.router.add_get("/sick", _sick)
    app.router.add_get("/unavailable", _unavailable)
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/headers", _headers)
    app.router.add_get("/html", _html)
    app.router.add_get("/text", _text)
    app.router.add_get("/gzip", _gzip)
    app.router.add_get("/big", _big)
    app.router.add_get("/loop", _loop)
    app.router.add_get("/redirect/{n}", _redirect)
    app.router.add_get("/found", _found)
    app.router.add_get("/flaky/{key}", _flaky)
    app.router.add_get("/hang", _hang)
    app.router.add_get("/slow-body", _slow_body)
    app.router.add_get("/slow-headers", _slow_headers)
    return app


@dataclass(frozen=True)
class Target:
    """A running target: its base URL (`http://127.0.0.1:PORT`) and the app, for what it recorded."""

    base_url: str
    app: web.Application

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.app[REQUESTS]


@contextlib.asynccontextmanager
async def http_target(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Target]:
    """Serve `make_app()` on a free 127.0.0.1 port (https with `ssl_context`); stop it, hung handlers too."""
    app = make_app()
    runner = web.AppRunner(app, shutdown_timeout=0.2, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0, ssl_context=ssl_context)
    await site.start()
    port = int(runner.addresses[0][1])
    scheme = "https" if ssl_context is not None else "http"
    try:
        yield Target(f"{scheme}://{HOST}:{port}", app)
    finally:
        await runner.cleanup()


def write_checks(
    path: Path,
    checks: Sequence[Mapping[str, Any]],
    *,
    defaults: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a check-definition file (version 1) with these checks; return its path."""
    document: dict[str, Any] = {"version": 1}
    if defaults:
        document["defaults"] = dict(defaults)
    document.update(extra or {})
    document["checks"] = [dict(check) for check in checks]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def load_checks(tmp_path: Path, checks: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[CheckSpec]:
    """Write the checks to a file under tmp_path and load them through the real loader."""
    path = write_checks(tmp_path / "checks.yaml", checks, **kwargs)
    return load_config([path], env={}).checks


async def run_checks(tmp_path: Path, checks: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[Result]:
    """Load the checks and run them all at once through one Runner, as `prober check` does."""
    specs = load_checks(tmp_path, checks, **kwargs)
    runner = Runner(artifacts_dir=tmp_path / "artifacts")
    try:
        return list(await asyncio.gather(*(runner.run(spec) for spec in specs)))
    finally:
        await runner.resources.aclose()


async def run_check(tmp_path: Path, check: Mapping[str, Any], **kwargs: Any) -> Result:
    """Load one check and run it once."""
    (result,) = await run_checks(tmp_path, [{"name": "probe", "type": "http", **check}], **kwargs)
    return result
