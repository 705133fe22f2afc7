"""The status page's reason lines and announcements, and the page of one check (/checks/NAME), in real Chromium:
both fit 1280 and 390 pixels without horizontal scrolling, the response-time chart draws the points the API
gives, the reason line says what the feed says, an announcement comes and goes with its window, and no
secret reaches the rendered page. Screenshots of both pages go to the test's directory (and to docs/ with
PROBER_UPDATE_SCREENSHOTS=1, for the README)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from api_helpers import NOW, fake_daemon, result, serve
from browser_pages import PNG_PIXEL
from page_data import CONFIG, DOCS, add_incidents, estate_results, open_page, page_widths, png_width
from playwright.async_api import Browser
from store_seed import open_incident
from test_api_secrets import CONFIG as LEAKY_CONFIG
from test_api_secrets import SECRETS, leaky_results

from prober.api.app import CHECK_SCHEMA_PATH

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


def _save(shot: bytes, name: str, tmp_path: Path, *, docs: bool) -> None:
    (tmp_path / name).write_bytes(shot)
    if docs and os.environ.get("PROBER_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        (DOCS / name).write_bytes(shot)


@pytest.mark.parametrize("width", [1280, 390])
async def test_status_and_check_pages_fit_the_screen_without_horizontal_scrolling(
    browser: Browser, tmp_path: Path, width: int
) -> None:
    async with fake_daemon(tmp_path, CONFIG, estate_results()) as daemon:
        await add_incidents(daemon)
        async with serve(daemon, title="Acme status") as client:
            for path, name in (("/", "status-page"), ("/checks/shop-api", "check-page")):
                page, problems = await open_page(
                    browser, str(client.make_url(path)), width, 1300 if width == 1280 else 844
                )
                sizes = await page_widths(page)
                shot = await page.screenshot(full_page=width == 390)
                await page.context.close()
                assert problems == [], (path, problems)
                assert sizes["inner"] == width
                assert sizes["scroll"] <= sizes["inner"], (path, sizes)
                assert sizes["widest"] <= sizes["inner"] + 0.5, (path, sizes)
                assert png_width(shot) == width
                wide = width == 1280
                _save(shot, f"{name}.png" if wide else f"{name}-{width}.png", tmp_path, docs=wide)


async def test_the_reason_line_of_every_check_that_is_not_up_says_what_the_feed_says(
    browser: Browser, tmp_path: Path
) -> None:
    async with fake_daemon(tmp_path, CONFIG, estate_results()) as daemon, serve(daemon) as client:
        feed = await (await client.get("/api/v1/status")).json()
        page, problems = await open_page(browser, str(client.make_url("/")), 1280)
        not_up = [check for check in feed["checks"] if check["status"] != "up"]
        assert {check["name"] for check in not_up} == {"shop-api", "search-api", "api-certificate"}
        for check in feed["checks"]:
            reason = page.locator(f"#check-{check['name']} .check-reason .reason-text")
            if check["reason"] is None:
                assert await reason.count() == 0, check["name"]
                continue
            prefix = f"{check['reason']['location']}: " if len(check["locations"]) > 1 else ""
            assert await reason.text_content() == prefix + check["reason"]["text"]
            since = await page.locator(f"#check-{check['name']} .reason-since").text_content()
            shown = datetime.fromisoformat(check["reason"]["since"].replace("Z", "+00:00"))
            assert shown.strftime("%Y-%m-%d %H:%M UTC") in (since or ""), since
        search = {check["name"]: check for check in feed["checks"]}["search-api"]["reason"]
        assert search["status"] == "degraded" and search["text"].startswith("warning: latency was ")
        assert search["since"] == "2026-11-23T11:45:00.000Z"  # the first of its degraded results
        shop = {check["name"]: check for check in feed["checks"]}["shop-api"]["reason"]
        assert shop == {
            "status": "down",
            "text": "HTTP status 503, expected 2xx",
            "location": "us-east",
            "since": "2026-11-23T12:15:00.000Z",
        }
        # and on the check's own page, the same line
        check_page, more = await open_page(browser, str(client.make_url("/checks/shop-api")), 1280)
        line = await check_page.locator("#reason .reason-text").text_content()
        assert line == "us-east: HTTP status 503, expected 2xx"
        assert problems == [] and more == []


async def test_the_check_page_draws_the_chart_metrics_locations_failures_and_incidents(
    browser: Browser, tmp_path: Path
) -> None:
    async with fake_daemon(tmp_path, CONFIG, estate_results()) as daemon:
        await add_incidents(daemon)
        async with serve(daemon) as client:
            data = await (await client.get("/api/v1/checks/shop-api")).json()
            jsonschema.Draft202012Validator(json.loads(CHECK_SCHEMA_PATH.read_text())).validate(data)
            page, problems = await open_page(browser, str(client.make_url("/checks/shop-api")), 1280)
            chart = page.locator("#chart svg")
            day_start = datetime.fromisoformat(data["generated_at"].replace("Z", "+00:00")) - timedelta(hours=24)
            in_day = [
                hour
                for hour in data["chart"]["hours"]
                if datetime.fromisoformat(hour["t"].replace("Z", "+00:00")) + timedelta(minutes=30) >= day_start
            ]
            assert await chart.get_attribute("data-window") == "24h"
            assert (
                int(await chart.get_attribute("data-hours") or 0) == len(in_day) == 25
            )  # 12:00 yesterday to 12:00 today
            assert int(await chart.get_attribute("data-raw") or 0) == len(data["chart"]["raw"]) == 2 * 73
            assert await page.locator("#chart circle.pt").count() == 2 * 73
            assert await page.locator("#chart circle.pt-down").count() == 4  # us-east's last 20 minutes
            path = await page.locator("#chart path.line-p95").get_attribute("d") or ""
            assert path.startswith("M") and path.count("L") >= 20
            await page.get_by_role("tab", name="30 d").click()
            assert await chart.get_attribute("data-window") == "30d"
            assert int(await chart.get_attribute("data-hours") or 0) == len(data["chart"]["hours"]) >= 700
            assert await page.locator("#chart circle.pt").count() == 0  # raw points only on 24 h
            await page.get_by_role("tab", name="7 d").click()
            assert 160 <= int(await chart.get_attribute("data-hours") or 0) <= 169

            metrics = await page.locator("#headline .metric").evaluate_all("cards => cards.map(c => c.dataset.metric)")
            assert metrics == ["latency", "status", "ttfb", "cert_days_remaining"]
            assert await page.locator("#headline [data-metric=status] .metric-value").all_text_contents() == [
                "200eu-west",
                "503us-east",
            ]
            assert await page.locator("#locations li").count() == 2
            east = await page.locator("#locations li[data-location=us-east]").text_content() or ""
            assert "down" in east and "HTTP status 503, expected 2xx" in east
            assert await page.locator("#bars .bar").count() == 90
            failures = await page.locator("#failures li").all_text_contents()
            assert failures and all("HTTP status 503, expected 2xx" in text for text in failures)
            incidents = await page.locator("#incidents li").all_text_contents()
            assert len(incidents) == 2
            assert "18 min so far (ongoing)" in incidents[0] and "lasted 7 min" in incidents[1]
            ongoing = await page.locator("#incident-list li").text_content() or ""
            assert "Down from us-east" in ongoing and "18 min so far" in ongoing and "First error: HTTP" in ongoing
            scheduled = await page.locator("#reason .check-scheduled").text_content()
            assert scheduled == "Maintenance weekly-deploy scheduled: Sun 03:00–03:30 UTC"
            assert await page.locator("#screenshot").is_hidden()
            assert problems == []


async def test_a_browser_checks_page_shows_its_last_screenshot_and_serves_only_listed_files(
    browser: Browser, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    shot = artifacts / "shop-home-20261123T122500Z.png"
    shot.write_bytes(PNG_PIXEL)
    (artifacts / "not-listed.png").write_bytes(b"\x89PNG\r\n\x1a\nsecret")
    down = result("shop-home", "down", type="browser", at=NOW - timedelta(minutes=5), error="page_errors was 1")
    down.artifacts = [str(shot)]
    async with fake_daemon(tmp_path, CONFIG, [down, result("shop-home", type="browser")]) as daemon:
        daemon.artifacts_dir = artifacts  # type: ignore[attr-defined]
        async with serve(daemon) as client:
            data = await (await client.get("/api/v1/checks/shop-home")).json()
            jsonschema.Draft202012Validator(json.loads(CHECK_SCHEMA_PATH.read_text())).validate(data)
            assert data["screenshot"] == {
                "at": "2026-11-23T12:25:00.000Z",
                "file": shot.name,
                "url": f"api/v1/checks/shop-home/artifacts/{shot.name}",
            }
            served = await client.get("/" + data["screenshot"]["url"])
            assert served.status == 200 and served.headers["Content-Type"] == "image/png"
            assert await served.read() == shot.read_bytes()
            for bad in ("not-listed.png", "..%2Fprober.db", "x.txt", "%2E%2E%2Fartifacts%2Fnot-listed.png"):
                response = await client.get(f"/api/v1/checks/shop-home/artifacts/{bad}")
                assert response.status == 404, bad
            other = await client.get(f"/api/v1/checks/search-api/artifacts/{shot.name}")
            assert other.status == 404  # listed by another check's results only
            page, problems = await open_page(browser, str(client.make_url("/checks/shop-home")), 1280)
            assert await page.locator("#screenshot").is_visible()
            src = await page.locator("#screenshot-img").get_attribute("src")
            assert src == f"../api/v1/checks/shop-home/artifacts/{shot.name}"
            assert problems == []


async def test_an_announcement_appears_and_disappears_with_its_window(browser: Browser, tmp_path: Path) -> None:
    starts, ends = NOW + timedelta(minutes=10), NOW + timedelta(minutes=40)
    text = CONFIG.replace(
        "announcements:\n",
        "announcements:\n"
        f"  - {{title: Payments outage, message: Card payments fail at checkout., severity: outage,"
        f" checks: [shop-*], from: '{starts.isoformat()}', until: '{ends.isoformat()}'}}\n"
        f"  - {{title: Database upgrade, severity: maintenance, from: '{(NOW + timedelta(days=2)).isoformat()}',"
        f" until: '{(NOW + timedelta(days=2, minutes=30)).isoformat()}'}}\n",
    )
    moment = {"now": NOW}

    def clock() -> datetime:
        return moment["now"]

    async def shown(client: Any, path: str = "/") -> list[str]:
        page, problems = await open_page(browser, str(client.make_url(path)), 390)
        items = await page.locator("#announcement-list li").all_text_contents()
        await page.context.close()
        assert problems == []
        return items

    async with (
        fake_daemon(tmp_path, text, estate_results()) as daemon,
        serve(daemon, clock=clock, cache_ttl=0) as client,
    ):
        before = await shown(client)
        assert not any("Payments outage" in item for item in before)
        upgrade = [item for item in before if "Database upgrade" in item]
        assert upgrade == ["maintenanceDatabase upgradescheduled: Wed 12:30–13:00 UTC"]
        summary = await (await client.get("/api/v2/summary.json")).json()
        assert [item["name"] for item in summary["incidents"]] == ["Search is slower than usual"]
        names = [item["name"] for item in summary["scheduled_maintenances"]]
        assert names == ["weekly-deploy", "Database upgrade"]

        moment["now"] = NOW + timedelta(minutes=15)
        during = await shown(client)
        outage = [item for item in during if "Payments outage" in item]
        assert outage == [
            "outagePayments outageCard payments fail at checkout.until Mon 13:10 UTC · affects shop-home, shop-api"
        ]
        assert any("Payments outage" in item for item in await shown(client, "/checks/shop-api"))
        on_chat = await shown(client, "/checks/chat")
        assert not any("Payments outage" in item for item in on_chat)  # about shop-* only
        assert any("Database upgrade" in item for item in on_chat)  # about the whole page
        summary = await (await client.get("/api/v2/summary.json")).json()
        payments = [item for item in summary["incidents"] if item["name"] == "Payments outage"]
        assert len(payments) == 1 and payments[0]["impact"] == "major"
        assert {component["name"] for component in payments[0]["components"]} == {"shop-home", "shop-api"}

        moment["now"] = NOW + timedelta(minutes=41)
        after = await shown(client)
        assert not any("Payments outage" in item for item in after)
        summary = await (await client.get("/api/v2/summary.json")).json()
        assert "Payments outage" not in [item["name"] for item in summary["incidents"]]


async def test_no_secret_reaches_the_rendered_status_or_check_page(browser: Browser, tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, LEAKY_CONFIG, leaky_results()) as daemon:
        await open_incident(daemon.store, "api", ["default"], f"down: {leaky_results()[1].error}", NOW)
        async with serve(daemon) as client:
            texts = {}
            for path in ("/", "/checks/api", "/checks/login"):
                page, problems = await open_page(browser, str(client.make_url(path)), 1280)
                await page.get_by_role("tab", name="30 d").click() if path != "/" else None
                texts[path] = await page.content()
                assert problems == [], (path, problems)
            assert "connection refused by" in texts["/checks/api"]  # the error is shown, masked
    for path, html in texts.items():
        for secret in SECRETS:
            assert secret not in html, f"{path} shows {secret!r}"


async def test_the_committed_screenshots_are_reasonably_small_pngs() -> None:
    for name in ("status-page.png", "check-page.png"):
        data = (DOCS / name).read_bytes()
        assert png_width(data) == 1280, name
        assert len(data) < 400_000, f"{name} is {len(data)} bytes"


async def test_markup_in_an_announcement_or_an_error_is_shown_as_text(browser: Browser, tmp_path: Path) -> None:
    hostile = "<img src=x onerror=\"document.body.dataset.pwned='1'\"><b>bold</b>"
    text = CONFIG.replace(
        "announcements:\n",
        "announcements:\n"
        f"  - {{title: {json.dumps('Hello ' + hostile)}, message: {json.dumps('Plain ' + hostile)}}}\n"
        "  - {title: Plain hello}\n",
    )
    down = result("search-api", "down", error=f"HTTP status 500: {hostile}")
    async with fake_daemon(tmp_path, text, [down]) as daemon, serve(daemon) as client:
        for path in ("/", "/checks/search-api"):
            page, problems = await open_page(browser, str(client.make_url(path)), 1280)
            items = await page.locator("#announcement-list li").all_text_contents()
            assert any(f"Hello {hostile}" in item and f"Plain {hostile}" in item for item in items), items
            assert any("Plain hello" in item for item in items)  # the harmless twin
            reason = await page.locator(".check-reason .reason-text").first.text_content()
            assert reason == f"HTTP status 500: {hostile}"
            assert await page.locator("main img[src=x], main b").count() == 0
            assert await page.evaluate("document.body.dataset.pwned") is None
            assert problems == [], problems


async def test_a_check_without_results_has_an_empty_page_not_a_broken_one(browser: Browser, tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, []) as daemon, serve(daemon) as client:
        for width in (1280, 390):
            page, problems = await open_page(browser, str(client.make_url("/checks/chat")), width)
            assert await page.locator("#chart svg").get_attribute("data-points") == "0"
            assert "No results in the last 24h" in (await page.locator("#chart").text_content() or "")
            assert await page.locator("#status-pill .pill").text_content() == "unknown"
            assert "No incidents." in (await page.locator("#incidents").text_content() or "")
            sizes = await page_widths(page)
            assert sizes["scroll"] <= sizes["inner"], sizes
            assert problems == []
        missing = await client.get("/checks/no-such-check")
        assert missing.status == 404 and "No such check" in await missing.text()
