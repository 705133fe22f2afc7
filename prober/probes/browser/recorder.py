"""What a page did during one browser run, and the sentences its errors turn into.

`PageRecorder` listens to the page before navigation: console errors, uncaught exceptions, requests and
their failures (4xx/5xx or network; blocked and self-cancelled ones excluded), popups (closed at once),
and bytes over the wire from the DevTools protocol. The helpers turn Playwright's errors into the short
sentences results show (`connection refused (net::ERR_CONNECTION_REFUSED)`, what a timed-out step was
still waiting for).

Imported only when a browser check runs (it imports Playwright). It never navigates, waits or judges.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import TYPE_CHECKING, Any

from playwright.async_api import ConsoleMessage, Page, Request, Response, Route
from playwright.async_api import Error as PlaywrightError

if TYPE_CHECKING:
    from playwright.async_api import CDPSession

__all__ = ["LISTED", "PageRecorder", "call_log_hint", "clip", "first_line", "network_sentence"]

LISTED = 20
"""How many console errors, page errors and failed URLs a result lists (the counts are complete)."""
_TEXT_LIMIT = 500
_API_PREFIX = re.compile(r"^[A-Z][A-Za-z]*\.[a-z_]+: ")
_LOG_BULLET = re.compile(r"^\s*(?:-\s*)?(?:\d+ × )?")
_LOG_NOISE = re.compile(r"^(retrying \w+ action|attempting \w+ action|waiting \d+ms|\w+\(.*\))$")
_NET_ERROR = re.compile(r"net::(ERR_[A-Z0-9_]+)")
_NET_SENTENCES = {
    "ERR_CONNECTION_REFUSED": "connection refused",
    "ERR_NAME_NOT_RESOLVED": "DNS lookup failed (name not resolved)",
    "ERR_CONNECTION_RESET": "connection reset by the server",
    "ERR_CONNECTION_CLOSED": "the server closed the connection",
    "ERR_EMPTY_RESPONSE": "the server closed the connection without sending a response",
    "ERR_CONNECTION_TIMED_OUT": "connection timed out",
    "ERR_TIMED_OUT": "timed out",
    "ERR_ADDRESS_UNREACHABLE": "address unreachable",
    "ERR_TOO_MANY_REDIRECTS": "too many redirects",
    "ERR_SSL_PROTOCOL_ERROR": "TLS handshake failed",
}


def clip(text: str, limit: int = _TEXT_LIMIT) -> str:
    """Whitespace folded, cut to `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_line(exc: BaseException) -> str:
    """The first line of an error, without Playwright's `Page.click: ` prefix."""
    text = str(getattr(exc, "message", "") or exc).strip()
    return _API_PREFIX.sub("", text.splitlines()[0]) if text else type(exc).__name__


def call_log_hint(exc: BaseException) -> str:
    """What Playwright was last waiting for, from the call log of its timeout error."""
    text = str(getattr(exc, "message", "") or exc)
    if "Call log:" not in text:
        return ""
    lines = []
    for raw in text.split("Call log:", 1)[1].splitlines():
        line = _LOG_BULLET.sub("", raw).strip()
        if line and not _LOG_NOISE.match(line):
            lines.append(line)
    if not lines:
        return ""
    if all(line.startswith("waiting for") for line in lines):
        return "no element matched"
    return clip(lines[-1], 200)


def network_sentence(exc: BaseException) -> str:
    """`net::ERR_CONNECTION_REFUSED at http://…` → `connection refused (net::ERR_CONNECTION_REFUSED)`."""
    text = first_line(exc)
    match = _NET_ERROR.search(text)
    if not match:
        return text
    code = match.group(1)
    if code.startswith("ERR_CERT_"):
        return f"the TLS certificate is not valid (net::{code})"
    sentence = _NET_SENTENCES.get(code)
    return f"{sentence} (net::{code})" if sentence else f"net::{code}"


class PageRecorder:
    """Counts and lists what the page did; attached before navigation, read at the end."""

    def __init__(self) -> None:
        self.requests = 0
        self.console_errors = 0
        self.page_errors = 0
        self.failed_requests = 0
        self.transfer_bytes = 0
        self.popups = 0
        self.blocked = 0
        self.console_error_texts: list[str] = []
        self.page_error_texts: list[str] = []
        self.failed_urls: list[str] = []
        self.pending: dict[Request, str] = {}
        self._blocked_urls: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cdp: CDPSession | None = None
        self.count_bytes = True

    async def attach(self, page: Page, block: list[str]) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)
        page.on("request", self._on_request)
        page.on("requestfinished", self._on_request_done)
        page.on("requestfailed", self._on_request_failed)
        page.on("response", self._on_response)
        page.context.on("page", self._on_popup)
        for glob in block:
            await page.route(glob, self._block)
        # Bytes on the wire (headers included, cross-origin too) come from the DevTools protocol:
        # Resource Timing reports 0 for cross-origin responses without Timing-Allow-Origin.
        self._cdp = await page.context.new_cdp_session(page)
        self._cdp.on("Network.loadingFinished", self._on_loading_finished)
        await self._cdp.send("Network.enable")

    async def _block(self, route: Route) -> None:
        self._blocked_urls.add(route.request.url)
        self.blocked += 1
        with contextlib.suppress(PlaywrightError):
            await route.abort("blockedbyclient")

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        text = message.text
        if text.startswith("Failed to load resource:"):
            return  # Chromium's echo of a failed request: counted in failed_requests, with its URL.
        self.console_errors += 1
        if len(self.console_error_texts) < LISTED:
            self.console_error_texts.append(clip(text))

    def _on_page_error(self, error: PlaywrightError) -> None:
        self.page_errors += 1
        if len(self.page_error_texts) < LISTED:
            name = error.name or "Error"
            self.page_error_texts.append(clip(f"{name}: {error.message}"))

    def _on_request(self, request: Request) -> None:
        self.requests += 1
        self.pending[request] = request.url

    def _on_request_done(self, request: Request) -> None:
        self.pending.pop(request, None)

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            self._failed(f"{response.url} ({response.status})")

    def _on_request_failed(self, request: Request) -> None:
        self.pending.pop(request, None)
        failure = request.failure or "failed"
        if request.url in self._blocked_urls or "ERR_BLOCKED_BY_CLIENT" in failure:
            self.requests -= 1  # blocked on purpose: neither a request the page made nor a failure
            return
        if "ERR_ABORTED" in failure:
            return  # cancelled by the page itself (a navigation, an AbortController), not a server failure
        self._failed(f"{request.url} ({failure})")

    def _failed(self, text: str) -> None:
        self.failed_requests += 1
        if len(self.failed_urls) < LISTED:
            self.failed_urls.append(clip(text))

    def _on_loading_finished(self, event: dict[str, Any]) -> None:
        size = event.get("encodedDataLength")
        if isinstance(size, int | float):
            self.transfer_bytes += int(size)

    def _on_popup(self, popup: Page) -> None:
        # A popup is not what the check measures; closing it at once keeps `window.open` loops harmless.
        self.popups += 1
        task = asyncio.ensure_future(self._close_popup(popup))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _close_popup(popup: Page) -> None:
        try:
            async with asyncio.timeout(2):
                await popup.close()
        except Exception:
            pass

    def metrics(self) -> dict[str, Any]:
        metrics = {
            "console_errors": self.console_errors,
            "page_errors": self.page_errors,
            "failed_requests": self.failed_requests,
            "requests": self.requests,
        }
        if self.count_bytes:
            metrics["transfer_bytes"] = self.transfer_bytes
        return metrics

    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "console_errors": list(self.console_error_texts),
            "page_errors": list(self.page_error_texts),
            "failed_requests": list(self.failed_urls),
        }
        if self.blocked:
            details["blocked_requests"] = self.blocked
        if self.popups:
            details["popups_closed"] = self.popups
        return details

    def pending_sentence(self) -> str:
        urls = list(dict.fromkeys(self.pending.values()))
        if not urls:
            return ""
        shown = ", ".join(clip(url, 200) for url in urls[:3])
        more = f" and {len(urls) - 3} more" if len(urls) > 3 else ""
        noun = "request" if len(urls) == 1 else "requests"
        return f"; {len(urls)} {noun} still pending: {shown}{more}"
