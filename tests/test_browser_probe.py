"""Browser checks in real Chromium against pages served on 127.0.0.1: what a run measures and reports.

One Chromium and one test site serve the whole module (module-scoped event loop), as one prober process
would (the `runner` and `pages` fixtures of tests/conftest.py); every run still gets its own fresh context.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_pages import (
    PAGES,
    PNG_PIXEL,
    Pages,
    png_size,
    run_browser_check,
    unused_port,
)

from prober.scheduling.runner import Runner

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


async def test_good_page_is_up_with_load_paint_and_network_numbers(runner: Runner, pages: Pages, tmp_path: Path):
    result = await run_browser_check(runner, tmp_path, url=pages.url("/good"))

    assert result.status == "up", result.error
    metrics = result.metrics
    assert metrics["status"] == 200
    assert metrics["title"] == "Good page"
    for timing in ("load", "ttfb", "fcp", "lcp", "dom_content_loaded"):
        assert isinstance(metrics[timing], float) and 0 < metrics[timing] < 5, (timing, metrics[timing])
    assert metrics["ttfb"] <= metrics["dom_content_loaded"] <= metrics["load"]
    assert metrics["fcp"] <= metrics["lcp"]
    assert metrics["cls"] == 0
    assert metrics["requests"] == 2  # the document and its image
    assert metrics["failed_requests"] == 0
    assert metrics["console_errors"] == 0
    assert metrics["page_errors"] == 0
    body_bytes = len(PAGES["/good"].encode()) + len(PNG_PIXEL)
    assert body_bytes < metrics["transfer_bytes"] < body_bytes + 2000  # bodies plus response headers
    assert result.artifacts == []  # on_failure is the default, and nothing failed
    assert [(a.metric, a.ok) for a in result.assertions] == [("page_errors", True)]


async def test_uncaught_exception_makes_the_page_down_and_the_error_quotes_it(
    runner: Runner, pages: Pages, tmp_path: Path
):
    result = await run_browser_check(runner, tmp_path, url=pages.url("/throws"))

    assert result.status == "down"
    assert result.error is not None
    assert "uncaught exception in the page: Error: checkout widget exploded" in result.error
    assert "page_errors was 1, expected 0" in result.error
    assert result.metrics["page_errors"] == 1
    assert result.details["page_errors"] == ["Error: checkout widget exploded"]


async def test_missing_image_is_one_failed_request_listed_by_url(runner: Runner, pages: Pages, tmp_path: Path):
    result = await run_browser_check(runner, tmp_path, url=pages.url("/broken-image"))

    assert result.status == "up"  # the default expectation is only page_errors: 0
    assert result.metrics["failed_requests"] == 1
    assert result.details["failed_requests"] == [pages.url("/missing.png") + " (404)"]
    assert result.metrics["console_errors"] == 0  # Chromium's "Failed to load resource" echo is not a script error

    strict = await run_browser_check(runner, tmp_path, url=pages.url("/broken-image"), expect={"failed_requests": 0})
    assert strict.status == "down"
    assert strict.error == "failed_requests was 1, expected 0"


async def test_selector_that_appears_after_one_second_passes(runner: Runner, pages: Pages, tmp_path: Path):
    result = await run_browser_check(
        runner, tmp_path, url=pages.url("/late"), timeout="6s", expect={"selector": "#late"}
    )

    assert result.status == "up", result.error
    assert result.metrics["selector"] is True
    assert result.duration_ms >= 950  # it really waited for the element the page adds after 1 s


async def test_selector_that_never_appears_is_down_with_a_screenshot_of_the_viewport(
    runner: Runner, pages: Pages, tmp_path: Path
):
    result = await run_browser_check(
        runner,
        tmp_path,
        url=pages.url("/good"),
        timeout="2s",
        viewport={"width": 800, "height": 600},
        expect={"selector": "#checkout-button"},
    )

    assert result.status == "down"
    assert result.error == "selector #checkout-button did not hold"
    assert result.metrics["selector"] is False
    assert result.details["selector"] == "no element matching '#checkout-button' became visible within the 2s timeout"
    assert len(result.artifacts) == 1
    assert png_size(Path(result.artifacts[0]).read_bytes()) == (800, 600)
    assert result.duration_ms < 2000


async def test_text_contains_searches_the_visible_text_for_expect_and_warn(
    runner: Runner, pages: Pages, tmp_path: Path
):
    good = await run_browser_check(
        runner, tmp_path, url=pages.url("/good"), timeout="2s", expect={"text_contains": "Welcome to the shop"}
    )
    assert good.status == "up", good.error

    degraded = await run_browser_check(
        runner,
        tmp_path,
        url=pages.url("/good"),
        timeout="2s",
        expect={"text_contains": "Welcome"},
        warn={"text_contains": "Free shipping"},
    )
    assert degraded.status == "degraded"
    assert degraded.error == "warning: page text does not contain 'Free shipping'"


async def test_console_errors_are_counted_and_listed(runner: Runner, pages: Pages, tmp_path: Path):
    result = await run_browser_check(runner, tmp_path, url=pages.url("/console"), expect={"console_errors": 0})

    assert result.status == "down"
    assert result.metrics["console_errors"] == 1
    assert result.details["console_errors"] == ["cart service said no"]


async def test_blocked_script_is_aborted_and_not_counted_as_a_failure(runner: Runner, pages: Pages, tmp_path: Path):
    before = pages.hits.get("/tracker.js", 0)
    blocked = await run_browser_check(runner, tmp_path, url=pages.url("/tracked"), block=["**/tracker.js"])

    assert blocked.status == "up", blocked.error
    assert pages.hits.get("/tracker.js", 0) == before  # never reached the server
    assert blocked.metrics["failed_requests"] == 0
    assert blocked.metrics["requests"] == 1
    assert blocked.details["blocked_requests"] == 1

    # The same page without the block runs the tracker, which throws: the block really did something.
    unblocked = await run_browser_check(runner, tmp_path, url=pages.url("/tracked"))
    assert unblocked.status == "down"
    assert "the tracker ran although it is blocked" in (unblocked.error or "")


async def test_headers_are_sent_with_the_page_requests(runner: Runner, pages: Pages, tmp_path: Path):
    pages.headers_seen.clear()
    result = await run_browser_check(runner, tmp_path, url=pages.url("/good"), headers={"X-Synthetic": "prober"})

    assert result.status == "up"
    assert len(pages.headers_seen) == 2
    assert all(seen.get("X-Synthetic") == "prober" for seen in pages.headers_seen)


async def test_document_status_is_a_metric_conditions_can_check(runner: Runner, pages: Pages, tmp_path: Path):
    result = await run_browser_check(runner, tmp_path, url=pages.url("/error"), expect={"status": "2xx"})

    assert result.status == "down"
    assert result.metrics["status"] == 500
    assert result.error == "status was 500, expected 2xx"
    assert result.details["failed_requests"] == [pages.url("/error") + " (500)"]


async def test_unreachable_site_is_down_saying_connection_refused(runner: Runner, tmp_path: Path):
    url = f"http://127.0.0.1:{unused_port()}/"
    result = await run_browser_check(runner, tmp_path, url=url, timeout="3s")

    assert result.status == "down"
    assert result.error == f"could not open {url}: connection refused (net::ERR_CONNECTION_REFUSED)"
    assert "transfer_bytes" not in result.metrics  # Chromium's own error page is not the site's traffic


async def test_layout_shift_before_load_is_measured_as_cls(runner: Runner, pages: Pages, tmp_path: Path):
    result = await run_browser_check(runner, tmp_path, url=pages.url("/shift"))

    assert result.status == "up", result.error
    assert result.metrics["cls"] > 0.05


async def test_fifty_step_journey_times_every_step(runner: Runner, pages: Pages, tmp_path: Path):
    steps: list[dict[str, str]] = [{"goto": "/journey"}]
    for index in range(24):
        steps += [{"fill": "#name", "value": f"basket item {index}"}, {"click": "#add"}]
    steps.append({"wait_for": "#item-23"})
    assert len(steps) == 50

    result = await run_browser_check(
        runner,
        tmp_path,
        url=pages.url("/good"),
        timeout="25s",
        steps=steps,
        expect={"text_contains": "basket item 23"},
    )

    assert result.status == "up", result.error
    timings = result.details["steps"]
    assert [timing["step"] for timing in timings[:3]] == ["goto '/journey'", "fill '#name'", "click '#add'"]
    assert len(timings) == 50 and all(timing["ok"] and timing["time"] > 0 for timing in timings)
    assert result.metrics["steps_time"] >= sum(timing["time"] for timing in timings) - 0.01
    assert result.metrics["lcp"] is not None  # the first page's vitals, read before the journey


async def test_failing_step_names_the_step_and_what_it_waited_for(runner: Runner, pages: Pages, tmp_path: Path):
    result = await run_browser_check(
        runner,
        tmp_path,
        url=pages.url("/journey"),
        timeout="2s",
        steps=[{"fill": "#name", "value": "x"}, {"click": "#pay-now"}, {"click": "#add"}],
    )

    assert result.status == "down"
    assert result.error == "step 2 of 3 (click '#pay-now') did not complete within the 2s timeout: no element matched"
    assert [(s["step"], s["ok"]) for s in result.details["steps"]] == [
        ("fill '#name'", True),
        ("click '#pay-now'", False),
    ]
    (screenshot,) = result.artifacts
    assert png_size(Path(screenshot).read_bytes()) == (1280, 720)


async def test_screenshot_always_saves_a_png_of_a_passing_page(runner: Runner, pages: Pages, tmp_path: Path):
    result = await run_browser_check(runner, tmp_path, url=pages.url("/good"), screenshot="always", viewport="640x480")

    assert result.status == "up"
    (screenshot,) = result.artifacts
    assert Path(screenshot).parent == runner.artifacts_dir
    assert Path(screenshot).name.startswith("page-")
    assert png_size(Path(screenshot).read_bytes()) == (640, 480)


async def test_screenshot_never_saves_nothing_even_when_down(runner: Runner, pages: Pages, tmp_path: Path):
    result = await run_browser_check(
        runner, tmp_path, url=pages.url("/good"), screenshot="never", timeout="1s", expect={"selector": "#nope"}
    )

    assert result.status == "down"
    assert result.artifacts == []
