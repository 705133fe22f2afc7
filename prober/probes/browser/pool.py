"""One long-lived headless Chromium per prober process, shared by every browser check.

The pool launches Chromium lazily on the first browser run (Playwright's async API; the system Chromium of
`PROBER_CHROMIUM`, default /usr/bin/chromium when present, else Playwright's own), hands each run a fresh
browser context and page, bounds how many pages are open at once (`PROBER_BROWSER_PAGES`, default 2), and
relaunches Chromium when it has died. Closing a context is bounded too: a browser that cannot close a page
within CLOSE_TIMEOUT is killed, so the next run gets a fresh one instead of a wedged one.

It must never hand out a page of a dead browser, never let a run wait on Chromium without a bound, and
never import Playwright at module import time (so `prober validate` and other check types do not pay
for it). It knows nothing about checks, metrics or results.

Where browser checks cannot run (the slim image has neither Playwright nor Chromium), `browser_missing()`
and the launch give one sentence saying what is missing and how to get it, for the result's error; never
a traceback. Chromium gets `--disable-dev-shm-usage`: containers give /dev/shm 64 MB by default, and a
Chromium that keeps its shared memory there crashes its renderers on the first big page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prober.config.durations import format_duration

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, Playwright

    from prober.probes.base import Resources

__all__ = [
    "CHROMIUM_ARGS",
    "DEFAULT_CHROMIUM",
    "RESOURCE_KEY",
    "BrowserPool",
    "BrowserUnavailable",
    "browser_missing",
    "chromium_executable",
    "get_pool",
    "page_slots",
]

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
RESOURCE_KEY = "browser.pool"
DEFAULT_PAGES = 2
LAUNCH_TIMEOUT = 30.0
"""Seconds a Chromium launch may take (a cold start on a busy 2-core machine takes 1-3 s)."""
CLOSE_TIMEOUT = 5.0
"""Seconds closing one context may take before the browser is considered wedged and killed."""

log = logging.getLogger("prober.browser")


class BrowserUnavailable(Exception):
    """Chromium cannot be started or reached; the message is the sentence for the result's error."""


def chromium_executable(env: Mapping[str, str] | None = None) -> str | None:
    """The Chromium binary to launch: PROBER_CHROMIUM, else /usr/bin/chromium, else None (Playwright's own)."""
    env = os.environ if env is None else env
    configured = env.get("PROBER_CHROMIUM")
    if configured:
        if not Path(configured).exists():
            raise BrowserUnavailable(
                f"PROBER_CHROMIUM is {configured!r}, which does not exist; point it at a Chromium binary "
                f"or unset it to use {DEFAULT_CHROMIUM}"
            )
        return configured
    return DEFAULT_CHROMIUM if Path(DEFAULT_CHROMIUM).exists() else None


SLIM_HINT = "the full image has both; elsewhere: pip install playwright and apt-get install chromium"


def browser_missing() -> str | None:
    """Why browser checks cannot run in this installation, or None. Imports Playwright (once) to know."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return (
            "browser checks need Playwright and Chromium, which this installation lacks "
            f"(the slim image leaves them out); {SLIM_HINT}"
        )
    return None


def page_slots(env: Mapping[str, str] | None = None) -> int:
    """How many pages may be open at once in this process (PROBER_BROWSER_PAGES, default 2)."""
    env = os.environ if env is None else env
    raw = env.get("PROBER_BROWSER_PAGES", "").strip()
    if not raw:
        return DEFAULT_PAGES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise BrowserUnavailable(f"PROBER_BROWSER_PAGES must be a whole number of at least 1, got {raw!r}")
    return value


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc or type(exc).__name__)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


class BrowserPool:
    """The shared Chromium of one process: launch, relaunch, bounded pages, bounded closing."""

    def __init__(self, *, executable: str | None, pages: int = DEFAULT_PAGES) -> None:
        self.executable = executable
        self.pages = pages
        self.launches = 0
        """How many times Chromium was launched (1 unless it died and was relaunched)."""
        self._slots = asyncio.Semaphore(pages)
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._pid: int | None = None
        self._launching: asyncio.Task[Browser] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pid(self) -> int | None:
        """Process id of the running Chromium (its browser process), if known."""
        return self._pid if self._browser is not None and self._browser.is_connected() else None

    async def start(self) -> None:
        """Launch Chromium now rather than on the first run (a daemon may call this at start-up)."""
        await self._running_browser()

    def open_contexts(self) -> int:
        """Browser contexts open right now (0 when idle: every run's context is closed after it)."""
        browser = self._browser
        return len(browser.contexts) if browser is not None and browser.is_connected() else 0

    @contextlib.asynccontextmanager
    async def page(self, *, give_up_at: float | None = None, **context_options: Any) -> AsyncIterator[Page]:
        """A fresh context with one page, closed on exit (in the background, bounded), also when cancelled.

        Chromium is started (or found running) before a page slot is taken, so a cold start does not hold
        a slot. `give_up_at` (loop time) bounds both waits; past it BrowserUnavailable says which one ran
        out. The slot is held until the context is really closed, so a page that is slow to close still
        counts against PROBER_BROWSER_PAGES, and closing never adds to a run's duration.
        """
        if self._closed:
            raise BrowserUnavailable("the browser pool is shut down")
        loop = asyncio.get_running_loop()
        started = loop.time()

        def left() -> float | None:
            return None if give_up_at is None else max(0.0, give_up_at - loop.time())

        try:
            async with asyncio.timeout(left()):
                await self._running_browser()
        except TimeoutError:
            raise BrowserUnavailable(
                f"Chromium did not finish starting within {format_duration(loop.time() - started)} (it is "
                "launched by the first browser run and a cold start can take seconds); the next run will use it"
            ) from None
        try:
            async with asyncio.timeout(left()):
                await self._slots.acquire()
        except TimeoutError:
            raise BrowserUnavailable(
                f"no browser page became free within {format_duration(loop.time() - started)}: all {self.pages} "
                "(PROBER_BROWSER_PAGES) are busy with other checks; spread the browser checks' schedules "
                "or raise PROBER_BROWSER_PAGES"
            ) from None
        opening = asyncio.create_task(self._open(context_options), name="prober-chromium-open-page")
        try:
            # Shielded: a context created just as the run is cancelled is closed, not leaked.
            context, page = await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(self._close_if_opened)
            raise
        try:
            yield page
        finally:
            self._dispose(context)

    async def _open(self, options: Mapping[str, Any]) -> tuple[BrowserContext, Page]:
        context: BrowserContext | None = None
        try:
            context = await self._new_context(options)
            return context, await context.new_page()
        except BaseException:
            if context is None:
                self._slots.release()
            else:
                self._dispose(context)
            raise

    def _close_if_opened(self, task: asyncio.Task[tuple[BrowserContext, Page]]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._dispose(task.result()[0])

    async def _new_context(self, options: Mapping[str, Any]) -> BrowserContext:
        from playwright.async_api import Error as PlaywrightError

        for attempt in (1, 2):
            browser = await self._running_browser()
            try:
                return await browser.new_context(**options)
            except PlaywrightError as exc:
                if attempt == 2:
                    raise BrowserUnavailable(f"Chromium refused a new page: {_first_line(exc)}") from None
                # Chromium may have died between the check and the call; the disconnect is reported
                # asynchronously, so give it a moment, then relaunch unless it is still alive.
                for _ in range(20):
                    if not browser.is_connected():
                        break
                    await asyncio.sleep(0.05)
                if browser.is_connected():
                    raise BrowserUnavailable(f"Chromium refused a new page: {_first_line(exc)}") from None
        raise AssertionError("unreachable")

    async def _running_browser(self) -> Browser:
        browser = self._browser
        if browser is not None and browser.is_connected():
            return browser
        if self._launching is None or self._launching.done():
            if browser is not None:
                log.warning("Chromium (pid %s) is gone; relaunching it", self._pid)
            self._browser = None
            self._launching = asyncio.create_task(self._launch(), name="prober-chromium-launch")
            self._launching.add_done_callback(lambda task: task.cancelled() or task.exception())
        # Shielded: a run cancelled at its timeout must not abandon a half-launched Chromium.
        return await asyncio.shield(self._launching)

    async def _launch(self) -> Browser:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import async_playwright

        if self._playwright is None:
            try:
                self._playwright = await async_playwright().start()
            except Exception as exc:
                raise BrowserUnavailable(f"could not start Playwright's driver: {_first_line(exc)}") from None
        where = self.executable or "Playwright's bundled Chromium"
        try:
            browser = await self._playwright.chromium.launch(
                executable_path=self.executable,
                args=list(CHROMIUM_ARGS),
                timeout=LAUNCH_TIMEOUT * 1000,
                handle_sigint=False,
                handle_sigterm=False,
                handle_sighup=False,
            )
        except PlaywrightError as exc:
            # The driver itself may be what died: start from scratch next time.
            await self._stop_playwright()
            if self.executable is None and "Executable doesn't exist" in str(exc):
                raise BrowserUnavailable(
                    f"browser checks need Chromium: not found at {DEFAULT_CHROMIUM}, and Playwright has no "
                    f"bundled Chromium either; install it there or set PROBER_CHROMIUM ({SLIM_HINT})"
                ) from None
            hint = "" if self.executable else f"; install Chromium ({DEFAULT_CHROMIUM}) or set PROBER_CHROMIUM"
            raise BrowserUnavailable(f"could not launch Chromium ({where}): {_first_line(exc)}{hint}") from None
        self.launches += 1
        self._pid = await self._browser_pid(browser)
        self._browser = browser
        log.info("launched Chromium %s (pid %s) from %s", browser.version, self._pid, where)
        return browser

    @staticmethod
    async def _browser_pid(browser: Browser) -> int | None:
        """The browser process id, from the DevTools protocol (Playwright's Python API does not expose it)."""
        try:
            async with asyncio.timeout(5):
                session = await browser.new_browser_cdp_session()
                info = await session.send("SystemInfo.getProcessInfo")
                await session.detach()
        except Exception:
            log.debug("could not read Chromium's process id", exc_info=True)
            return None
        for process in info.get("processInfo", []):
            if process.get("type") == "browser":
                return int(process["id"])
        return None

    def _dispose(self, context: BrowserContext) -> None:
        """Close a context in the background; the task releases the page slot when it is done."""
        task = asyncio.create_task(self._close_context(context), name="prober-chromium-close-context")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_context(self, context: BrowserContext) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await context.close()
        except TimeoutError:
            log.warning(
                "Chromium (pid %s) did not close a page within %.0fs; killing it so the next run gets a fresh one",
                self._pid,
                CLOSE_TIMEOUT,
            )
            await self._kill()
        except Exception:
            log.debug("closing a browser context failed (Chromium probably died)", exc_info=True)
        finally:
            self._slots.release()

    async def _kill(self) -> None:
        browser, pid = self._browser, self._pid
        self._browser = None
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if browser is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await browser.close()

    async def _stop_playwright(self) -> None:
        playwright, self._playwright = self._playwright, None
        if playwright is None:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await playwright.stop()
        except Exception:
            log.debug("stopping Playwright's driver failed", exc_info=True)

    async def aclose(self) -> None:
        """Close every page, Chromium and the driver; bounded, and kills Chromium if it does not close."""
        self._closed = True
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=CLOSE_TIMEOUT)
        if self._launching is not None and not self._launching.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(LAUNCH_TIMEOUT):
                    await asyncio.shield(self._launching)
        browser = self._browser
        if browser is not None:
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await browser.close()
            except Exception:
                await self._kill()
            self._browser = None
        await self._stop_playwright()


async def get_pool(resources: Resources) -> BrowserPool:
    """The process's pool, created on first use and closed with the other shared resources."""

    async def create() -> BrowserPool:
        return BrowserPool(executable=chromium_executable(), pages=page_slots())

    async def close(pool: BrowserPool) -> None:
        await pool.aclose()

    pool: BrowserPool = await resources.get(RESOURCE_KEY, create, close)
    return pool
