"""Shared pieces of the API tests (no tests here): a fake daemon with a real Store and a real Config,
result factories, and a context manager serving `create_app` on 127.0.0.1."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from prober.api import create_app
from prober.config.loader import Config, load_config
from prober.results import Assertion, Result, Status
from prober.scheduling.stats import SchedulerStats
from prober.store import Store

NOW = datetime(2026, 11, 23, 12, 30, 0, tzinfo=UTC)


@dataclass
class Options:
    location: str = "default"


@dataclass
class FakeDaemon:
    """What create_app needs from prober.daemon.service.Daemon: store, config, options.location, accept()."""

    store: Store
    config: Config
    options: Options = field(default_factory=Options)
    accepted: list[Result] = field(default_factory=list)
    scheduler: Any = None

    async def accept(self, result: Result) -> bool:
        new = await self.store.write(result)
        self.accepted.append(result)
        return new

    async def accept_many(self, results: list[Result]) -> int:
        """The daemon's batch path (ingest): one transaction, the new results recorded in `accepted`."""
        new = await self.store.write_new(results)
        self.accepted.extend(new)
        return len(new)


class FakeScheduler:
    def __init__(self, stats: SchedulerStats) -> None:
        self._stats = stats

    def stats(self, *, checks: bool = True) -> SchedulerStats:
        return self._stats


def write_config(directory: Path, text: str) -> Config:
    path = directory / "checks.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return load_config([path])


def result(
    check: str,
    status: Status = "up",
    *,
    at: datetime = NOW,
    location: str = "default",
    type: str = "http",
    latency: float = 0.05,
    error: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> Result:
    if error is None and status == "down":
        error = "HTTP status 503, expected 2xx"
    return Result(
        check=check,
        type=type,
        location=location,
        started_at=at,
        duration_ms=latency * 1000 + 1,
        status=status,
        error=error,
        metrics=metrics if metrics is not None else {"status": 503 if status == "down" else 200, "latency": latency},
        assertions=[Assertion("status", "2xx", 200, status != "down", "expect")],
    )


def history(
    check: str, statuses: str, *, end: datetime = NOW, step: timedelta = timedelta(minutes=10), **kw: Any
) -> list[Result]:
    """Results from a string like 'uuddu' (u up, d down, g degraded), the last one at `end`."""
    names: dict[str, Status] = {"u": "up", "d": "down", "g": "degraded"}
    count = len(statuses)
    return [
        result(check, names[char], at=end - step * (count - 1 - index), **kw) for index, char in enumerate(statuses)
    ]


@asynccontextmanager
async def serve(daemon: FakeDaemon, **options: Any) -> AsyncIterator[TestClient[Any, Any]]:
    options.setdefault("clock", lambda: NOW)
    options.setdefault("warm_up", False)
    app = create_app(daemon, **options)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@asynccontextmanager
async def fake_daemon(directory: Path, config_text: str, results: list[Result] = ()) -> AsyncIterator[FakeDaemon]:  # type: ignore[assignment]
    config = write_config(directory, config_text)
    async with Store(directory / "prober.db", synchronous="NORMAL") as store:
        if results:
            await store.write_many(results)
        yield FakeDaemon(store, config)
