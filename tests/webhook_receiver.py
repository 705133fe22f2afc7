"""A local webhook receiver for Apprise `json://127.0.0.1:PORT/hook` deliveries, for tests.

In-process (pytest):

    async with WebhookReceiver() as hook:
        notifier.submit(transition, [hook.url])
        bodies = await hook.wait_for(1, timeout=5)     # [{"title": ..., "message": ..., "type": "failure", ...}]

`fail_first=N` answers the first N requests with HTTP 500 and `delay=S` waits S seconds before
answering, to test retries and slow receivers. As a separate process (end-to-end tests):

    python tests/webhook_receiver.py --port 8099 --out received.jsonl

appends one JSON object per line to FILE for every delivery, and prints `ready <port>` once listening.

It listens on 127.0.0.1 only and never forwards anything anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from pathlib import Path
from typing import Any

from aiohttp import web

__all__ = ["WebhookReceiver"]


class WebhookReceiver:
    """Collects JSON bodies POSTed to any path; `received` holds them in arrival order."""

    def __init__(
        self,
        *,
        port: int = 0,
        path: str = "/hook",
        delay: float = 0.0,
        fail_first: int = 0,
        out: str | Path | None = None,
    ) -> None:
        self.port = port
        self.path = path
        self.delay = delay
        self.fail_first = fail_first
        self.out = Path(out) if out is not None else None
        self.received: list[dict[str, Any]] = []
        self.requests = 0
        self.request_times: list[float] = []
        self.received_at: list[float] = []
        """`time.monotonic()` of each body in `received` (same index; `request_times` counts every request)."""
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Condition()

    @property
    def url(self) -> str:
        """The Apprise URL that delivers here."""
        return f"json://127.0.0.1:{self.port}{self.path}"

    async def start(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WebhookReceiver:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least `count` bodies arrived; return them all. Raises TimeoutError."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.received) >= count), timeout)
        return list(self.received)

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.request_times.append(time.monotonic())
        number = self.requests
        raw = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        if number <= self.fail_first:
            return web.Response(status=500, text="failing on purpose")
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"raw": raw.decode("utf-8", "replace")}
        body.setdefault("_path", request.path)
        if self.out is not None:
            with self.out.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(body) + "\n")
        async with self._changed:
            self.received.append(body)
            self.received_at.append(time.monotonic())
            self._changed.notify_all()
        return web.json_response({"ok": True})


async def _serve(args: argparse.Namespace) -> None:
    receiver = WebhookReceiver(port=args.port, delay=args.delay, fail_first=args.fail_first, out=args.out)
    await receiver.start()
    print(f"ready {receiver.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await receiver.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Receive Apprise json:// deliveries on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0 = any free port)")
    parser.add_argument("--out", required=True, help="append one JSON object per line to this file")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before answering")
    parser.add_argument("--fail-first", type=int, default=0, help="answer the first N requests with HTTP 500")
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
