"""Helpers for daemon tests: a target HTTP server that can be stopped and restarted on the same port,
a `prober run` subprocess, and read-only peeks into its database."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web


class Target:
    """An aiohttp server on 127.0.0.1 answering 200 on /health; stop() makes the port refuse connections."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> Target:
        app = web.Application()

        async def health(_: web.Request) -> web.Response:
            return web.json_response({"status": "healthy"})

        app.router.add_get("/health", health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"


async def start_daemon(*args: str, cwd: Path, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "prober",
        "run",
        *args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def stop_daemon(proc: asyncio.subprocess.Process, timeout: float = 15.0) -> tuple[int, str]:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    output, _ = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, output.decode(errors="replace")


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the daemon's database through a separate read-only connection (WAL allows it while it writes)."""
    if not db.exists():
        return []
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return connection.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        connection.close()


async def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> float:
    """Poll until predicate() is truthy; return the seconds it took, fail with a clear message on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def scalar(db: Path, sql: str, *params: Any) -> Any:
    """The first column of the first row, or 0 while the database or table does not exist yet."""
    rows = query(db, sql, *params)
    return rows[0][0] if rows else 0
