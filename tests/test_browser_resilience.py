"""Browser checks that must not wedge the prober: pages that never load, dialogs and popups forever, a
script stuck in a loop, a run cancelled at its timeout, a Chromium that is killed, too many pages at once.

Every test ends by showing the next run works, because the failure that matters in production is not
one bad run but a prober that stays broken after it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import time
from pathlib import Path

import pytest
from browser_pages import Pages, png_size, run_browser_check, write_checks

from prober.config.loader import load_config
from prober.probes.base import MemoryStateStore, ProbeContext, ProbeState
from prober.probes.browser import pool as browser_pool
from prober.probes.browser.pool import BrowserPool, get_pool
from prober.scheduling.runner import Runner

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


async def _idle(pool: BrowserPool, within: float = 5.0) -> int:
    """Wait (bounded) until every context is closed; return how many are still open."""
    give_up = time.monotonic() + within
    while pool.open_contexts() and time.monotonic() < give_up:
        await asyncio.sleep(0.05)
    return pool.open_contexts()


async def _next_run_works(runner: Runner, pages: Pages, tmp_path: Path) -> None:
    result = await run_browser_check(runner, tmp_path, url=pages.url("/good"), name="next-run")
    assert result.status == "up", f"the run after the bad page failed: {result.error}"
    assert result.metrics["title"] == "Good page"


async def test_page_that_never_finishes_loading_is_down_at_the_timeout_and_the_next_run_works(
    runner: Runner, pages: Pages, tmp_path: Path
):
    started = time.monotonic()
    result = await run_browser_check(runner, tmp_path, url=pages.url("/never"), timeout="2s", viewport="1024x768")
    elapsed = time.monotonic() - started

    assert result.status == "down"
    assert result.error == (
        f"{pages.url('/never')} did not reach 'load' within the 2s timeout; "
        f"1 request still pending: {pages.url('/hang.png')}"
    )
    assert elapsed < 2.5
    assert result.metrics["requests"] == 2
    # The run gave up a margin before the deadline, so it could still photograph the half-loaded page.
    (screenshot,) = result.artifacts
    assert png_size(Path(screenshot).read_bytes()) == (1024, 768)
    await _next_run_works(runner, pages, tmp_path)


async def test_alert_loop_is_down_at_the_timeout_and_the_next_run_works(runner: Runner, pages: Pages, tmp_path: Path):
    started = time.monotonic()
    result = await run_browser_check(runner, tmp_path, url=pages.url("/alerts"), timeout="2s")

    assert result.status == "down"
    assert result.error is not None and "did not reach 'load' within the 2s timeout" in result.error
    assert time.monotonic() - started < 2.5
    assert await _idle(await get_pool(runner.resources)) == 0
    await _next_run_works(runner, pages, tmp_path)


async def test_popups_opened_forever_are_blocked_and_the_page_is_still_measured(
    runner: Runner, pages: Pages, tmp_path: Path
):
    before = pages.hits.get("/good", 0)
    started = time.monotonic()
    result = await run_browser_check(
        runner, tmp_path, url=pages.url("/popups"), timeout="3s", steps=[{"wait_for": "#main"}] * 3
    )

    assert result.status == "up", result.error
    assert time.monotonic() - started < 2.5
    assert pages.hits.get("/good", 0) == before  # window.open without a click opened nothing, as in Chrome
    assert await _idle(await get_pool(runner.resources)) == 0
    await _next_run_works(runner, pages, tmp_path)


async def test_popup_opened_by_a_click_is_closed(runner: Runner, pages: Pages, tmp_path: Path):
    result = await run_browser_check(
        runner, tmp_path, url=pages.url("/popup-link"), steps=[{"click": "#open"}, {"wait_for": "#opened"}]
    )

    assert result.status == "up", result.error
    assert result.details["popups_closed"] == 1
    assert await _idle(await get_pool(runner.resources)) == 0


async def test_script_stuck_in_an_endless_loop_does_not_wedge_the_prober(runner: Runner, pages: Pages, tmp_path: Path):
    # The text is never on the page, so the probe keeps looking until the page starts spinning 50 ms after load:
    # with text that was there, a fast read could finish before the loop starts.
    started = time.monotonic()
    result = await run_browser_check(
        runner, tmp_path, url=pages.url("/spin"), timeout="2s", expect={"text_contains": "never on the page"}
    )

    elapsed = time.monotonic() - started

    assert result.status == "down"
    assert result.error is not None
    assert result.error.startswith("could not read the page's text: the page did not answer within")
    assert result.error.endswith("(its script may be stuck in a loop)")
    assert elapsed < 2.5, f"the run took {elapsed:.2f}s with a 2s timeout"
    assert await _idle(await get_pool(runner.resources)) == 0, "the spinning page's context was not closed in 5s"
    await _next_run_works(runner, pages, tmp_path)


async def test_run_cancelled_at_its_timeout_closes_its_page(runner: Runner, pages: Pages, tmp_path: Path):
    """The runner's hard stop (asyncio.timeout around run) must leave no page open behind it."""
    config = load_config([write_checks(tmp_path, [{"name": "hang", "type": "browser", "url": pages.url("/never")}])])
    spec = config.checks[0]
    loop = asyncio.get_running_loop()
    ctx = ProbeContext(
        location="default",
        timeout=30.0,  # the probe believes it has 30 s ...
        deadline=loop.time() + 30.0,
        state=ProbeState(MemoryStateStore(), "hang", "default"),
        resources=runner.resources,
        artifacts_dir=runner.artifacts_dir,
        logger=logging.getLogger("prober.test.browser"),
    )
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1.0):  # ... but is cut off after 1 s
            await spec.probe.run(spec.model, ctx)

    assert time.monotonic() - started < 1.5
    assert await _idle(await get_pool(runner.resources)) == 0
    await _next_run_works(runner, pages, tmp_path)


async def test_killed_chromium_is_relaunched_by_the_next_run(runner: Runner, pages: Pages, tmp_path: Path):
    await _next_run_works(runner, pages, tmp_path)
    pool = await get_pool(runner.resources)
    first_pid, launches = pool.pid, pool.launches
    assert first_pid is not None

    os.kill(first_pid, signal.SIGKILL)  # no waiting for the disconnect: the next run must cope with the race
    result = await run_browser_check(runner, tmp_path, url=pages.url("/good"), timeout="10s")

    assert result.status == "up", result.error
    assert pool.launches == launches + 1
    assert pool.pid is not None and pool.pid != first_pid
    with pytest.raises(ProcessLookupError):
        os.kill(first_pid, 0)


async def test_browser_that_cannot_close_a_page_in_time_is_killed_and_replaced(
    runner: Runner, pages: Pages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pool = await get_pool(runner.resources)
    await _next_run_works(runner, pages, tmp_path)
    wedged_pid, launches = pool.pid, pool.launches
    assert wedged_pid is not None
    monkeypatch.setattr(browser_pool, "CLOSE_TIMEOUT", 0.0)  # every close "hangs" past its bound

    await run_browser_check(runner, tmp_path, url=pages.url("/good"))
    give_up = time.monotonic() + 5
    while pool.pid == wedged_pid and time.monotonic() < give_up:
        await asyncio.sleep(0.05)
    monkeypatch.undo()

    with pytest.raises(ProcessLookupError):
        os.kill(wedged_pid, 0)  # the wedged Chromium was killed, not left running
    await _next_run_works(runner, pages, tmp_path)
    assert pool.launches == launches + 1


async def test_at_most_two_pages_are_open_at_once_by_default(runner: Runner, pages: Pages, tmp_path: Path):
    pool = await get_pool(runner.resources)
    assert pool.pages == 2  # PROBER_BROWSER_PAGES is not set in the tests
    pages.slow["most"] = 0
    checks = [{"name": f"slow-{i}", "type": "browser", "url": pages.url("/slow")} for i in range(4)]
    config = load_config([write_checks(tmp_path, checks)])

    results = await asyncio.gather(*(runner.run(spec) for spec in config.checks))

    assert [result.status for result in results] == ["up"] * 4, [result.error for result in results]
    assert pages.slow["most"] == 2  # two documents were being loaded at once, never more


async def test_run_that_finds_every_page_busy_says_so_before_its_timeout(runner: Runner, pages: Pages, tmp_path: Path):
    hogs = [
        {"name": f"hog-{i}", "type": "browser", "url": pages.url("/never"), "timeout": "3s", "screenshot": "never"}
        for i in range(2)
    ]
    late = {"name": "late", "type": "browser", "url": pages.url("/good"), "timeout": "1s"}
    config = load_config([write_checks(tmp_path, [*hogs, late])])
    hog_runs = [asyncio.create_task(runner.run(spec)) for spec in config.checks[:2]]
    await asyncio.sleep(0.2)  # both slots taken

    result = await runner.run(config.checks[2])

    assert result.status == "down"
    assert re.fullmatch(
        r"no browser page became free within \d+ms: all 2 \(PROBER_BROWSER_PAGES\) are busy with other checks; "
        r"spread the browser checks' schedules or raise PROBER_BROWSER_PAGES",
        result.error or "",
    ), result.error
    assert result.duration_ms < 1000  # it gave up before the runner's hard stop, with a sentence
    assert [hog.status for hog in await asyncio.gather(*hog_runs)] == ["down", "down"]
    await _next_run_works(runner, pages, tmp_path)
