"""The status page (GET /) in real Chromium: it renders the feed's groups, checks, uptime bars and
incidents, shows no console error (the Content-Security-Policy included), and fits a phone's width."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_helpers import NOW, fake_daemon, history, serve
from page_data import open_page, png_width
from playwright.async_api import Browser
from store_seed import open_incident, resolve_incident

LONG_NAME = "payments-gateway-eu-west-1.internal-health-endpoint-with-a-very-long-name"
CONFIG = f"""
version: 1
checks:
  - {{name: api-health, type: http, group: API, url: "https://api.example.com/health"}}
  - {{name: api-search, type: http, group: API, url: "https://api.example.com/search", locations: [eu, us],
      alert: {{quorum: 2}}}}
  - {{name: db, type: tls, group: Data, host: db.example.com}}
  - {{name: {LONG_NAME}, type: http, group: Data, url: "https://pay.example.com/"}}
  - {{name: live-stream, type: hls, url: "https://cdn.example.com/live.m3u8"}}
"""


def results() -> list[Any]:
    long_error = "HTTP status 503, expected 2xx; body: " + "x" * 300
    return [
        *history("api-health", "uuuuuu", step=timedelta(hours=6)),
        *history("api-health", "uudu", end=NOW - timedelta(days=2)),
        *history("api-search", "uuu", location="eu"),
        *history("api-search", "uud", location="us"),
        *history("db", "uudd", type="tls"),
        *history(LONG_NAME, "uud", error=long_error),
        *history("live-stream", "ugg", type="hls"),
    ]


pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


async def test_page_renders_groups_checks_bars_and_incidents(browser: Browser, tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, results()) as daemon:
        await open_incident(
            daemon.store, "db", ["default"], "certificate expired 3 days ago", NOW - timedelta(minutes=9)
        )
        resolved = await open_incident(daemon.store, "api-health", ["default"], "timed out", NOW - timedelta(days=2))
        await resolve_incident(daemon.store, resolved, NOW - timedelta(days=2) + timedelta(minutes=4))
        async with serve(daemon) as client:
            page, problems = await open_page(browser, str(client.make_url("/")), 1280, 900)
            groups = await page.locator("details.group summary .name").all_text_contents()
            assert groups == ["API (2)", "Data (2)", "Other checks (1)"]
            assert await page.locator(".check").count() == 5
            assert await page.locator("#check-db .pill").text_content() == "down"
            assert await page.locator("#check-api-search .pill").text_content() == "degraded"
            assert await page.locator("#check-api-search .loc").all_text_contents() == ["eu", "us"]
            assert await page.locator("#check-live-stream .pill").text_content() == "degraded"
            assert await page.locator("#banner").get_attribute("class") == "banner banner-down"
            assert "2 of 5 checks are down" in (await page.locator("#banner-text").text_content() or "")
            bars = page.locator("#check-api-health .bar")
            assert await bars.count() == 90
            assert await bars.nth(89).get_attribute("class") == "bar bar-high"  # today: all up
            assert await bars.nth(87).get_attribute("class") == "bar bar-bad"  # two days ago: 3 of 4 up
            assert await bars.nth(0).get_attribute("class") == "bar"  # no data
            ongoing = await page.locator("#open-incident-list li").all_text_contents()
            assert len(ongoing) == 1 and "db is down" in ongoing[0] and "certificate expired" in ongoing[0]
            past = await page.locator("#past-incident-list li").all_text_contents()
            assert len(past) == 1 and "api-health was down" in past[0] and "4 min" in past[0]
            assert problems == []


async def test_page_fits_a_390_pixel_phone_screen_without_horizontal_scrolling(
    browser: Browser, tmp_path: Path
) -> None:
    async with fake_daemon(tmp_path, CONFIG, results()) as daemon:
        await open_incident(daemon.store, LONG_NAME, ["default"], "x" * 200, NOW - timedelta(minutes=3))
        async with serve(daemon) as client:
            page, problems = await open_page(browser, str(client.make_url("/")), 390, 844)
            assert await page.locator(".check").count() == 5
            sizes = await page.evaluate(
                "({scroll: document.scrollingElement.scrollWidth, inner: window.innerWidth,"
                " widest: Math.max(...[...document.querySelectorAll('body *')]"
                ".map(e => e.getBoundingClientRect().right))})"
            )
            shot = await page.screenshot(path=str(tmp_path / "status-390.png"), full_page=True)
            assert problems == []
    assert sizes["inner"] == 390
    assert sizes["scroll"] <= sizes["inner"], sizes
    assert sizes["widest"] <= sizes["inner"] + 0.5, sizes
    assert png_width(shot) == 390
