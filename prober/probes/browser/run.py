"""What one browser check does inside its page: navigate, play steps, wait, measure, screenshot.

`PageRun` drives one run against its own budget, which ends a margin before the runner's deadline, so
that a page that never loads still gets its screenshot and a precise error ("did not reach 'load' within
the 2s timeout; 1 request still pending: …") instead of a bare cancellation. Every wait on the page is
bounded by that budget; what the page did meanwhile is counted by `PageRecorder` (browser_recorder).

Imported only when a browser check runs (it imports Playwright). It never judges: the probe's caller does,
through the conditions; `ctx.judge` is asked only whether an on_failure screenshot is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from prober.config.durations import format_duration
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.browser.config import PAGE_TEXT, BrowserCheck, Step
from prober.probes.browser.recorder import PageRecorder, call_log_hint, first_line, network_sentence
from prober.probes.browser.vitals import INIT_SCRIPT, READ_SCRIPT, vitals_metrics
from prober.redact import redact_url

__all__ = ["PageRun", "context_options", "margin_for"]

_DEADLINE_RESERVE = 0.1
_LATE = 0.1
"""Seconds past the budget after which the run stops waiting on Playwright even if it has not answered."""
_PAGE_TEXT_LIMIT = 1_000_000


def context_options(check: BrowserCheck) -> dict[str, Any]:
    """Options of the fresh browser context a run gets."""
    options: dict[str, Any] = {
        "viewport": {"width": check.viewport.width, "height": check.viewport.height},
        "device_scale_factor": 1,
        "accept_downloads": False,
        "service_workers": "block",
    }
    if check.headers:
        options["extra_http_headers"] = dict(check.headers)
    return options


def margin_for(timeout: float) -> float:
    """Seconds kept back from the timeout for the screenshot and the error: 25%, between 0.3 s and 1 s."""
    return min(1.0, max(0.3, 0.25 * timeout))


class _Failure(Exception):
    """The run cannot go on; the message is the result's error."""


class _OutOfTime(Exception):
    pass


class PageRun:
    """One run of one browser check in its fresh page."""

    def __init__(
        self,
        check: BrowserCheck,
        ctx: ProbeContext,
        page: Page,
        selectors: list[str],
        texts: list[list[str]],
    ) -> None:
        self.check = check
        self.ctx = ctx
        self.page = page
        self.selectors = selectors
        self.texts = [group for group in texts if group]
        self.recorder = PageRecorder()
        self.loop = asyncio.get_running_loop()
        self.give_up_at = ctx.deadline - margin_for(ctx.timeout)
        self.metrics: dict[str, Any] = {}
        self.details: dict[str, Any] = {}
        self.artifacts: list[str] = []
        self.unresponsive = False
        self.stage = f"loading {check.url}"
        """What the run is doing, for the error when it runs out of time."""
        """The page stopped answering (a script in an endless loop): skip the reads that would wait on it."""

    # -- time ------------------------------------------------------------------------------------------

    def _ms_left(self) -> float:
        """Milliseconds left for a wait on the page (Playwright reads 0 as "no limit", so at least 1)."""
        left = self.give_up_at - self.loop.time()
        if left <= 0:
            raise _OutOfTime()
        return max(1.0, left * 1000)

    def _grace(self, cap: float) -> float:
        """Seconds a finishing touch (title, text, screenshot) may take: up to `cap`, ending before the deadline."""
        return min(cap, self.ctx.deadline - self.loop.time() - _DEADLINE_RESERVE)

    def _timeout_text(self) -> str:
        return f"within the {format_duration(self.ctx.timeout)} timeout"

    def _pending(self) -> str:
        return self.recorder.pending_sentence() if self.stage.startswith("loading") else ""

    # -- the run ---------------------------------------------------------------------------------------

    async def execute(self) -> Observation:
        await asyncio.gather(self.recorder.attach(self.page, self.check.block), self.page.add_init_script(INIT_SCRIPT))
        subjects: dict[str, Any] = {}
        try:
            try:
                # Playwright's own timeouts end each wait at the budget; this is the backstop for a driver
                # too busy to say so in time (a starved machine), so the run still ends with a sentence.
                async with asyncio.timeout_at(self.give_up_at + _LATE):
                    await self._navigate()
                    if self.check.steps:
                        # Web Vitals describe the first page, before the journey changes or leaves it.
                        await self._read_page(vitals=True, title=False, text=False)
                        await self._play_steps()
            except TimeoutError:
                raise _Failure(f"{self.stage} did not finish {self._timeout_text()}" + self._pending()) from None
            await self._wait_for_conditions()
            # Read after the waits, so an LCP or a layout shift that comes late is counted.
            page = await self._read_page(vitals=not self.check.steps, title=True, text=bool(self.texts))
            if self.texts:
                if not isinstance(page.get("text"), str):
                    raise _Failure(f"could not read the page's text: {self.details.get('page_error', 'no answer')}")
                subjects[PAGE_TEXT] = page["text"][:_PAGE_TEXT_LIMIT]
        except _Failure as failure:
            await self._fail(str(failure))
        observation = Observation(metrics=self._all_metrics(), subjects=subjects, details=self._all_details())
        mode = self.check.screenshot
        if mode == "always" or (mode == "on_failure" and self.ctx.judge(observation) == "down"):
            await self._screenshot()
            observation.details = self._all_details()
        observation.artifacts = list(self.artifacts)
        return observation

    async def _navigate(self) -> None:
        url = self.check.url
        trace = self.ctx.trace
        if trace is not None and self.check.trace_context:  # the document request only: no CORS preflights
            headers = trace.headers()

            async def add_trace(route: Any) -> None:
                await route.fallback(headers={**route.request.headers, **headers})

            await self.page.route(lambda address: address == url, add_trace)
        started = time.perf_counter()
        try:
            response = await self.page.goto(url, wait_until=self.check.wait_until, timeout=self._ms_left())
            self.ctx.timeline.add("page load", started, time.perf_counter(), **{"url.full": redact_url(url)})
        except (PlaywrightTimeoutError, _OutOfTime):
            self.ctx.timeline.add(
                "page load", started, time.perf_counter(), "timed out", **{"url.full": redact_url(url)}
            )
            raise _Failure(
                f"{url} did not reach {self.check.wait_until!r} {self._timeout_text()}"
                + self.recorder.pending_sentence()
            ) from None
        except PlaywrightError as exc:
            self.recorder.count_bytes = False  # what follows is Chromium's own error page
            raise _Failure(f"could not open {url}: {network_sentence(exc)}") from None
        self.metrics["load"] = round(time.perf_counter() - started, 4)
        self.metrics["status"] = response.status if response is not None else None

    async def _read_page(self, *, vitals: bool, title: bool, text: bool) -> dict[str, Any]:
        """One evaluation for everything read from the page: Web Vitals, title, visible text."""
        if title:
            self.metrics["title"] = None
        if self.unresponsive:
            return {}
        seconds = min(2.0, max(self.give_up_at - self.loop.time(), self._grace(0.5)))
        try:
            async with asyncio.timeout(max(seconds, 0.01)):
                raw = await self.page.evaluate(READ_SCRIPT, {"vitals": vitals, "text": text})
        except TimeoutError:
            self.unresponsive = True
            self.details["page_error"] = (
                f"the page did not answer within {format_duration(seconds)} (its script may be stuck in a loop)"
            )
            return {}
        except PlaywrightError as exc:
            self.details["page_error"] = f"could not read the page: {first_line(exc)}"
            return {}
        page = raw if isinstance(raw, dict) else {}
        if vitals:
            self.metrics.update(vitals_metrics(page))
        if title:
            self.metrics["title"] = page.get("title") if isinstance(page.get("title"), str) else None
        return page

    async def _play_steps(self) -> None:
        steps = self.check.steps
        timings: list[dict[str, Any]] = []
        self.details["steps"] = timings
        began = time.perf_counter()
        for index, step in enumerate(steps, 1):
            self.stage = f"step {index} of {len(steps)} ({step.label})"
            started = time.perf_counter()
            try:
                await self._play(step)
            except (PlaywrightTimeoutError, _OutOfTime) as exc:
                timings.append({"step": step.label, "time": round(time.perf_counter() - started, 4), "ok": False})
                self.ctx.timeline.add(f"step {index}: {step.label}", started, time.perf_counter(), "timed out")
                hint = call_log_hint(exc)
                raise _Failure(
                    f"step {index} of {len(steps)} ({step.label}) did not complete {self._timeout_text()}"
                    + (f": {hint}" if hint else "")
                ) from None
            except PlaywrightError as exc:
                timings.append({"step": step.label, "time": round(time.perf_counter() - started, 4), "ok": False})
                raise _Failure(f"step {index} of {len(steps)} ({step.label}) failed: {network_sentence(exc)}") from None
            timings.append({"step": step.label, "time": round(time.perf_counter() - started, 4), "ok": True})
            self.ctx.timeline.add(f"step {index}: {step.label}", started, time.perf_counter())
        self.metrics["steps_time"] = round(time.perf_counter() - began, 4)

    async def _play(self, step: Step) -> None:
        page, action, target = self.page, step.action, step.target
        if action == "click":
            await page.click(target, timeout=self._ms_left())
        elif action == "fill":
            await page.fill(target, step.value or "", timeout=self._ms_left())
        elif action == "wait_for":
            await page.wait_for_selector(target, state="visible", timeout=self._ms_left())
        else:
            await page.goto(urljoin(page.url, target), wait_until=self.check.wait_until, timeout=self._ms_left())

    async def _wait_for_conditions(self) -> None:
        waits = []
        if self.selectors:
            waits.append(self._wait_for_selector())
        waits.extend(self._wait_for_text(group) for group in self.texts)
        if waits:
            await asyncio.gather(*waits)

    async def _wait_for_selector(self) -> None:
        locator = self.page.locator(self.selectors[0])
        for selector in self.selectors[1:]:
            locator = locator.or_(self.page.locator(selector))
        shown = " or ".join(repr(selector) for selector in self.selectors)
        try:
            async with asyncio.timeout_at(self.give_up_at + _LATE):
                await locator.filter(visible=True).first.wait_for(state="visible", timeout=self._ms_left())
        except (PlaywrightTimeoutError, _OutOfTime, TimeoutError):
            self.metrics["selector"] = False
            self.details["selector"] = f"no element matching {shown} became visible {self._timeout_text()}"
            return
        except PlaywrightError as exc:
            raise _Failure(f"selector {shown} cannot be used: {first_line(exc)}") from None
        self.metrics["selector"] = True

    async def _wait_for_text(self, needles: list[str]) -> None:
        # On a timeout the condition reports the missing text, from the page text read next.
        with contextlib.suppress(PlaywrightTimeoutError, _OutOfTime, PlaywrightError, TimeoutError):
            async with asyncio.timeout_at(self.give_up_at + _LATE):
                await self.page.wait_for_function(
                    "(needles) => { const text = document.body ? document.body.innerText : '';"
                    " return needles.some((needle) => text.includes(needle)); }",
                    arg=needles,
                    polling=100,
                    timeout=self._ms_left(),
                )

    # -- endings -----------------------------------------------------------------------------------------

    async def _fail(self, sentence: str) -> None:
        if self.check.screenshot != "never":
            await self._screenshot()
        details = self._all_details()
        details["artifacts"] = list(self.artifacts)
        raise ProbeError(sentence, metrics=self._all_metrics(), details=details)

    async def _screenshot(self) -> None:
        seconds = self._grace(3.0)
        if seconds < 0.05:
            self.details["screenshot_error"] = "no time was left for a screenshot before the timeout"
            return
        directory = self.ctx.artifacts_dir
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = directory / f"{self.check.name}-{stamp}-{uuid.uuid4().hex[:8]}.png"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            async with asyncio.timeout(seconds):
                await self.page.screenshot(path=str(path), type="png", timeout=seconds * 1000)
        except (TimeoutError, PlaywrightTimeoutError):
            self.details["screenshot_error"] = (
                f"no screenshot: the page did not render one within {format_duration(seconds)} "
                "(its script is busy or a dialog is blocking it)"
            )
            return
        except (PlaywrightError, OSError) as exc:
            self.details["screenshot_error"] = f"no screenshot: {first_line(exc)}"
            return
        self.artifacts.append(str(path))

    def _all_metrics(self) -> dict[str, Any]:
        return {**self.metrics, **self.recorder.metrics()}

    def _all_details(self) -> dict[str, Any]:
        return {**self.recorder.details(), **self.details}
