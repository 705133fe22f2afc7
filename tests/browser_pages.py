"""Test pages for the browser check, served by aiohttp on 127.0.0.1 only, and helpers to run checks on them.

Each page is one behaviour a browser check must handle: a good page, a script that throws, a 404 image,
an element that appears late, a load that never finishes, an alert() loop, popups forever, a form for a
long journey, a tracker to block. `chromium_or_fail()` makes the suites fail (never skip) with a clear
message when the system Chromium is missing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from loopback import free_port

from prober.config.loader import load_config
from prober.probes.browser.pool import get_pool
from prober.results import Result
from prober.scheduling.runner import Runner

__all__ = [
    "PNG_PIXEL",
    "Pages",
    "chromium_or_fail",
    "png_size",
    "run_browser_check",
    "serve_pages",
    "unused_port",
    "warm_up",
    "write_checks",
]

PNG_PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def chromium_or_fail() -> str:
    """The Chromium the tests use; fails the test (not skips it) when it is missing."""
    path = os.environ.get("PROBER_CHROMIUM", "/usr/bin/chromium")
    assert Path(path).exists(), (
        f"the browser tests need Chromium at {path} (Debian: apt-get install chromium, or set PROBER_CHROMIUM); "
        "they run a real browser and are not skipped without one"
    )
    return path


unused_port = free_port
"""A loopback port nothing listens on (connection refused), outside Chromium's unsafe-port list."""


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, after checking it is one (signature, IHDR, CRC)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file (bad signature)"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13, "not a PNG file (no IHDR chunk first)"
    body = data[16 : 16 + length]
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert zlib.crc32(kind + body) == crc, "corrupt PNG (IHDR checksum mismatch)"
    assert data.endswith(b"IEND\xaeB`\x82"), "truncated PNG (no IEND chunk at the end)"
    width, height = struct.unpack(">II", body[:8])
    return width, height


def _html(title: str, body: str, head: str = "") -> str:
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>{head}</head><body>{body}</body></html>"
    )


PAGES: dict[str, str] = {
    "/good": _html(
        "Good page",
        "<h1 id=main>Welcome to the shop</h1><p>Everything is fine.</p><img src=/pixel.png width=300 height=200>",
    ),
    "/throws": _html(
        "Throwing page",
        "<h1>Checkout</h1><script>throw new Error('checkout widget exploded');</script>",
    ),
    "/broken-image": _html("Broken image", "<h1>Gallery</h1><img src=/missing.png><img src=/pixel.png>"),
    "/late": _html(
        "Late element",
        "<h1>Loading…</h1><script>setTimeout(() => { const d = document.createElement('div');"
        " d.id = 'late'; d.textContent = 'Prices loaded'; document.body.appendChild(d); }, 1000);</script>",
    ),
    "/never": _html("Never loads", "<h1>Half a page</h1><img src=/hang.png>"),
    "/alerts": _html("Alerts", "<h1>Nag</h1><script>while (true) { alert('are you sure?'); }</script>"),
    "/popups": _html(
        "Popups",
        "<h1 id=main>Popups</h1><script>setInterval(() => window.open('/good', '_blank'), 20);</script>",
    ),
    "/console": _html(
        "Console", "<h1>Noisy</h1><script>console.error('cart service said no'); console.log('fine');</script>"
    ),
    "/tracked": _html("Tracked", "<h1 id=main>Tracked</h1><script src=/tracker.js></script>"),
    "/shift": _html(
        "Shifty",
        "<p>top</p><div style='height:300px;background:#ccc'>content</div><img src=/slow.png>"
        "<script>setTimeout(() => { const ad = document.createElement('div'); ad.style.height = '250px';"
        " ad.textContent = 'ad'; document.body.prepend(ad); }, 150);</script>",
    ),
    "/spin": _html("Spin", "<h1 id=main>Spin</h1><script>setTimeout(() => { while (true) {} }, 50);</script>"),
    "/slow": _html("Slow", "<h1 id=main>Slow</h1>"),
    "/journey": _html(
        "Journey",
        "<input id=name><button id=add>Add</button><ul id=list></ul><script>"
        "document.getElementById('add').addEventListener('click', () => {"
        " const input = document.getElementById('name'); const li = document.createElement('li');"
        " li.textContent = input.value; li.id = 'item-' + document.getElementById('list').children.length;"
        " document.getElementById('list').appendChild(li); input.value = ''; });</script>",
    ),
    "/popup-link": _html(
        "Popup link",
        "<a id=open href=/second target=_blank>Open the second page</a><script>document.getElementById('open')"
        ".addEventListener('click', () => setTimeout(() => document.body.insertAdjacentHTML('beforeend',"
        " '<p id=opened>opened</p>'), 300));</script>",
    ),
    "/second": _html("Second page", "<h1 id=second>Second page</h1>"),
}


@dataclass(slots=True)
class Pages:
    """The running test site."""

    base: str
    hits: dict[str, int]
    headers_seen: list[Mapping[str, str]]
    slow: dict[str, int]
    """`/slow` documents being served right now (`now`) and at most at once (`most`)."""

    def url(self, path: str) -> str:
        return self.base + path


@contextlib.asynccontextmanager
async def serve_pages() -> AsyncIterator[Pages]:
    """Serve the test pages on 127.0.0.1 (a free port) for the duration of the block."""
    closing = asyncio.Event()
    hits: dict[str, int] = {}
    headers_seen: list[Mapping[str, str]] = []

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        hits[request.path] = hits.get(request.path, 0) + 1
        headers_seen.append(dict(request.headers))
        response: web.StreamResponse = await handler(request)
        return response

    slow = {"now": 0, "most": 0}

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGES[request.path], content_type="text/html")

    async def slow_page(request: web.Request) -> web.Response:
        slow["now"] += 1
        slow["most"] = max(slow["most"], slow["now"])
        try:
            await asyncio.sleep(1.0)
        finally:
            slow["now"] -= 1
        return web.Response(text=PAGES["/slow"], content_type="text/html")

    async def slow_pixel(request: web.Request) -> web.Response:
        await asyncio.sleep(0.4)
        return web.Response(body=PNG_PIXEL, content_type="image/png")

    async def pixel(request: web.Request) -> web.Response:
        return web.Response(body=PNG_PIXEL, content_type="image/png")

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no such image")

    async def hang(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        await response.prepare(request)
        await response.write(PNG_PIXEL[:10])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), 60)
        return response

    async def tracker(request: web.Request) -> web.Response:
        return web.Response(
            text="throw new Error('the tracker ran although it is blocked');", content_type="text/javascript"
        )

    async def server_error(request: web.Request) -> web.Response:
        return web.Response(status=500, text=PAGES["/good"], content_type="text/html")

    app = web.Application(middlewares=[count])
    for path in PAGES:
        app.router.add_get(path, slow_page if path == "/slow" else page)
    app.router.add_get("/slow.png", slow_pixel)
    app.router.add_get("/pixel.png", pixel)
    app.router.add_get("/missing.png", missing)
    app.router.add_get("/hang.png", hang)
    app.router.add_get("/tracker.js", tracker)
    app.router.add_get("/error", server_error)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Pages(f"http://127.0.0.1:{port}", hits, headers_seen, slow)
    finally:
        closing.set()
        await runner.cleanup()


def write_checks(tmp_path: Path, checks: Sequence[Mapping[str, Any]]) -> Path:
    path = tmp_path / "browser-checks.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "checks": [dict(check) for check in checks]}), encoding="utf-8")
    return path


async def warm_up(runner: Runner) -> None:
    """Launch the runner's Chromium now, so the first test's timeout does not include the launch."""
    await (await get_pool(runner.resources)).start()


async def run_browser_check(runner: Runner, tmp_path: Path, **check: Any) -> Result:
    """Write one browser check as YAML, load it the way users do, and run it once through `runner`."""
    check.setdefault("name", "page")
    check.setdefault("timeout", "5s")
    config = load_config([write_checks(tmp_path, [{"type": "browser", **check}])])
    return await runner.run(config.checks[0])
