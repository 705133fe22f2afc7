"""A realistic little estate for the status page and check page tests (no tests here): a few checks of every
type with 30 days of history (sparse) and 6 hours of dense recent results, incidents, an announcement, a
maintenance window, and the helpers to open pages in real Chromium (the `browser` fixture of tests/conftest.py)."""

from __future__ import annotations

import math
import random
import struct
from datetime import timedelta
from pathlib import Path
from typing import Any

from api_helpers import NOW, FakeDaemon
from playwright.async_api import Browser, Page
from store_seed import open_incident, resolve_incident

from prober.results import Assertion, Result, Status

DOCS = Path(__file__).resolve().parent.parent / "docs"

CONFIG = """
version: 1
status_page: {title: "Acme status"}
maintenance:
  - {name: weekly-deploy, schedule: "0 3 * * sun", duration: 30m, checks: ["shop-*"]}
announcements:
  - title: Search is slower than usual
    message: "We are moving the search index to new machines; results may take a second longer until tonight."
    severity: info
    checks: ["search-*"]
checks:
  - {name: shop-home, type: browser, group: Shop, url: "https://shop.example.com/", description: Storefront}
  - {name: shop-api, type: http, group: Shop, url: "https://api.example.com/health", locations: [eu-west, us-east]}
  - {name: search-api, type: http, group: Shop, url: "https://search.example.com/health"}
  - {name: api-certificate, type: tls, group: Shop, host: api.example.com}
  - {name: live-channel-1, type: hls, group: Streaming, url: "https://live.example.com/ch1/master.m3u8"}
  - {name: chat, type: websocket, group: Streaming, url: "wss://chat.example.com/socket", connections: 20}
"""

LATENCY = {"shop-home": 0.9, "shop-api": 0.045, "search-api": 0.12, "api-certificate": 0.03,
           "live-channel-1": 0.08, "chat": 0.06}  # fmt: skip
TYPES = {"shop-home": "browser", "shop-api": "http", "search-api": "http", "api-certificate": "tls",
         "live-channel-1": "hls", "chat": "websocket"}  # fmt: skip
LOCATIONS = {"shop-api": ("eu-west", "us-east")}


def metrics(check: str, status: Status, latency: float) -> dict[str, Any]:
    kind = TYPES[check]
    down = status == "down"
    if kind == "http":
        return {"status": 503 if down else 200, "latency": latency, "ttfb": latency * 0.8, "cert_days_remaining": 61.2}
    if kind == "tls":
        return {"days_remaining": 23.4, "not_after": "2026-12-16T23:59:59Z", "tls_version": "TLSv1.3",
                "handshake": latency}  # fmt: skip
    if kind == "hls":
        return {"stale_for": 1.4, "pdt_drift": 7.9, "segment_fetch": latency, "segment_fetch_p95": latency * 1.3,
                "variants_failed": 0}  # fmt: skip
    if kind == "websocket":
        return {"success_rate": 1.0, "open_latency": latency, "open_latency_p95": latency * 1.5}
    return {"load": latency, "lcp": latency * 1.2, "cls": 0.02, "page_errors": 0}


def _error(check: str, status: Status, latency: float) -> str | None:
    if status == "down":
        return "HTTP status 503, expected 2xx" if TYPES[check] == "http" else "timed out after 10s"
    if status == "degraded":
        if TYPES[check] == "tls":
            return "warning: days_remaining was 23.4, expected >= 30"
        return f"warning: latency was {round(latency * 1000)}ms, expected < {round(LATENCY[check] * 1500)}ms"
    return None


def estate_results(seed: int = 3) -> list[Result]:
    """30 days: one result per check and location every 30 minutes; the last 6 hours: one every 5 minutes."""
    rng = random.Random(seed)
    results: list[Result] = []
    for check, base in LATENCY.items():
        for location in LOCATIONS.get(check, ("default",)):
            moments = [NOW - timedelta(minutes=30 * step) for step in range(1440, 12, -1)]
            moments += [NOW - timedelta(minutes=5 * step) for step in range(72, -1, -1)]
            for at in moments:
                wave = 1 + 0.25 * math.sin(at.timestamp() / 7200)
                latency = base * wave * rng.uniform(0.8, 1.3)
                status: Status = "up"
                age = NOW - at
                if check == "search-api" and age < timedelta(minutes=50):
                    status, latency = "degraded", base * 2.9
                elif check == "api-certificate":
                    status = "degraded"
                elif check == "shop-api" and location == "us-east" and age < timedelta(minutes=20):
                    status, latency = "down", 10.0
                elif (
                    check == "live-channel-1" and timedelta(days=4) < age < timedelta(days=4, hours=5)
                ) or rng.random() < 0.01:
                    status = "down"
                results.append(
                    Result(
                        check=check,
                        type=TYPES[check],
                        location=location,
                        started_at=at,
                        duration_ms=latency * 1000 + 2,
                        status=status,
                        error=_error(check, status, latency),
                        metrics=metrics(check, status, latency),
                        assertions=[Assertion("status", "2xx", 200, status != "down", "expect")],
                    )
                )
    return results


async def add_incidents(daemon: FakeDaemon) -> None:
    store = daemon.store
    await open_incident(store, "shop-api", ["us-east"], "HTTP status 503, expected 2xx", NOW - timedelta(minutes=18))
    old = await open_incident(
        store, "live-channel-1", ["default"], "timed out after 10s", NOW - timedelta(days=4, hours=5)
    )
    await resolve_incident(store, old, NOW - timedelta(days=4))
    older = await open_incident(
        store, "shop-api", ["eu-west", "us-east"], "connection refused", NOW - timedelta(days=9)
    )
    await resolve_incident(store, older, NOW - timedelta(days=9) + timedelta(minutes=7))


async def open_page(browser: Browser, url: str, width: int, height: int = 900) -> tuple[Page, list[str]]:
    """A page in a fresh context, loaded until the page says it rendered its data."""
    context = await browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    await page.goto(url)
    await page.wait_for_selector("body[data-ready=true]", timeout=10_000)
    return page, problems


async def page_widths(page: Page) -> dict[str, float]:
    """The window's width, the document's scroll width and the right edge of the widest element."""
    result: dict[str, float] = await page.evaluate(
        "({scroll: document.scrollingElement.scrollWidth, inner: window.innerWidth,"
        " widest: Math.max(...[...document.querySelectorAll('body *')]"
        ".filter(e => e.getClientRects().length).map(e => e.getBoundingClientRect().right))})"
    )
    return result


def png_width(data: bytes) -> int:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int(struct.unpack(">I", data[16:20])[0])
