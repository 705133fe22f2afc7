"""Fixtures shared by the test files, named for what they give.

- `free_port`: a loopback port nothing listens on (tests/loopback.py has it as a function for helpers).
- `make_result`: builds a `Result` of an http check with plain defaults; keywords change any field.
- `prober_cli`: runs the command line as a user does, `sys.executable -m prober`, in a clean environment
  (no PROBER_* variable of the developer's shell leaks in), wherever the virtualenv lives.
- `clock`: a `fake_clock.FakeClock` (sleeps pass at once), for runs through `Runner(clock=clock)`, the
  HLS origin and caches.
- `origin`: the simulated HLS origin of tests/hls_origin.py on 127.0.0.1 (a test file may override it,
  asking for this one by the same name, to add its media).
- `pages`, `runner`: for the browser tests, module-scoped (module event loop): the test site of
  tests/browser_pages.py and one Runner whose Chromium serves the whole module, as in one prober process.
- `browser`: for the status page tests, module-scoped: a Playwright Chromium launched with prober's own
  flags (`CHROMIUM_ARGS`).

The modules these fixtures need are imported when a test asks for them, so a run of other tests pays nothing.

Markers (pyproject.toml): `slow` on every test over ~2 s, so `pytest -m "not slow"` is the quick loop.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from fake_clock import FakeClock
from loopback import free_port as _free_port

from prober.results import Result

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from browser_pages import Pages
    from hls_origin import Origin
    from playwright.async_api import Browser

    from prober.scheduling.runner import Runner

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
"""When `make_result`'s results start unless told otherwise (a fixed time: stored and compared exactly)."""

MakeResult = Callable[..., Result]


@pytest.fixture
def free_port() -> int:
    return _free_port()


def build_result(check: str = "api", status: str = "up", *, at: datetime = START, **changes: Any) -> Result:
    """An http result at location `default`, 40 ms; `down` comes with an error and no status code."""
    fields: dict[str, Any] = {
        "check": check,
        "type": "http",
        "location": "default",
        "started_at": at,
        "duration_ms": 40.0,
        "status": status,
        "error": "connection refused" if status == "down" else None,
        "metrics": {"status": 200, "latency": 0.04} if status != "down" else {"status": None},
    }
    fields.update(changes)
    return Result(**fields)


@pytest.fixture
def make_result() -> MakeResult:
    """`make_result(check="api", status="up", *, at=START, **changes)`."""
    return build_result


@dataclass(frozen=True)
class ProberCli:
    """`prober` as a separate process: `argv(...)` for asyncio's subprocesses, `run(...)` to wait for it."""

    command: tuple[str, ...] = (sys.executable, "-m", "prober")

    def argv(self, *args: str | os.PathLike[str]) -> list[str]:
        return [*self.command, *map(str, args)]

    @staticmethod
    def env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The test's environment without PROBER_* (so a developer's settings change nothing), plus `extra`."""
        clean = {key: value for key, value in os.environ.items() if not key.startswith("PROBER_")}
        return {**clean, **(extra or {})}

    def run(
        self,
        *args: str | os.PathLike[str],
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), cwd=cwd, env=self.env(env), capture_output=True, text=True, timeout=timeout, input=input
        )


@pytest.fixture
def prober_cli() -> ProberCli:
    return ProberCli()


@pytest.fixture
def clock() -> FakeClock:
    """The fake wall clock, handed to runs through `Runner(clock=clock)`."""
    return FakeClock()


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    from hls_origin import hls_origin

    async with hls_origin() as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def pages() -> AsyncIterator[Pages]:
    from browser_pages import serve_pages

    async with serve_pages() as site:
        yield site


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def runner(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runner]:
    from browser_pages import chromium_or_fail, warm_up

    from prober.scheduling.runner import Runner

    chromium_or_fail()
    shared = Runner(artifacts_dir=tmp_path_factory.mktemp("artifacts"))
    await warm_up(shared)
    try:
        yield shared
    finally:
        await shared.resources.aclose()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    from prober.probes.browser.pool import CHROMIUM_ARGS, DEFAULT_CHROMIUM

    if not Path(DEFAULT_CHROMIUM).exists():
        pytest.fail(f"the status page tests need Chromium at {DEFAULT_CHROMIUM}")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=DEFAULT_CHROMIUM, args=list(CHROMIUM_ARGS))
        try:
            yield launched
        finally:
            await launched.close()


__all__ = ["START", "MakeResult", "ProberCli", "build_result"]
