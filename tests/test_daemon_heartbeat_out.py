"""The heartbeat out (top-level `heartbeat: {url, every}`): a real daemon pings a loopback receiver while
it is healthy, and stops while the database refuses writes (a full tmpfs) or the event loop is stalled;
the pings resume when health returns. An Apprise URL is pinged through Apprise."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from daemon_helpers import Target, wait_until
from test_daemon_disk_full import _fill, small_disk  # noqa: F401 - the fixture

from prober.config.loader import ConfigError, load_config
from prober.daemon.service import Daemon, DaemonOptions


class PingReceiver:
    """Counts the pings (GET or POST) it gets, with their monotonic times."""

    def __init__(self) -> None:
        self.at: list[float] = []
        self.bodies: list[bytes] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> PingReceiver:
        app = web.Application()

        async def ping(request: web.Request) -> web.Response:
            self.at.append(time.monotonic())
            self.bodies.append(await request.read())
            return web.Response(text="OK")

        app.router.add_route("*", "/ping/{uuid}", ping)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert isinstance(site._server, asyncio.Server)
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def since(self, moment: float) -> int:
        return sum(1 for at in self.at if at > moment)


@pytest.fixture
async def receiver() -> AsyncIterator[PingReceiver]:
    server = await PingReceiver().start()
    yield server
    await server.stop()


def _write(path: Path, url: str, target: Target, every: str = "1s") -> Path:
    document: dict[str, Any] = {
        "heartbeat": {"url": url, "every": every},
        "checks": [{"name": "api", "type": "http", "url": target.url, "schedule": "every 200ms"}],
    }
    path.write_text(json.dumps(document))
    return path


@pytest.mark.slow
async def test_pings_stop_while_the_database_refuses_writes_and_resume_after(
    small_disk: Path,  # noqa: F811
    receiver: PingReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = await Target().start()
    config = _write(small_disk / "checks.yaml", f"http://127.0.0.1:{receiver.port}/ping/abc-123", target)
    daemon = Daemon(DaemonOptions(paths=[str(config)], db=small_disk / "prober.db", listen=None))
    task = asyncio.create_task(daemon.run())
    caplog.set_level(logging.INFO, logger="prober.heartbeat")
    filler: Path | None = None
    try:
        await wait_until(lambda: len(receiver.at) >= 2, 10)
        filler = _fill(small_disk)
        assert daemon.store is not None
        health = daemon.store.write_health
        await wait_until(lambda: health.failing_since is not None, 15)
        await asyncio.sleep(1.5)  # a beat already under way may still land
        quiet_from = time.monotonic()
        await asyncio.sleep(4)
        assert receiver.since(quiet_from) == 0, "pinged while the database refused writes"
        withheld = [r.getMessage() for r in caplog.records if "heartbeat withheld" in r.getMessage()]
        assert withheld and "writes to the database fail" in withheld[0], withheld
        filler.unlink()
        filler = None
        back = time.monotonic()
        await wait_until(lambda: receiver.since(back) >= 2, 20)
        assert any("heartbeat resumes" in r.getMessage() for r in caplog.records)
    finally:
        if filler is not None:
            filler.unlink()
        daemon.stop()
        await asyncio.wait_for(task, 20)
        await target.stop()


@pytest.mark.slow
async def test_a_stalled_event_loop_withholds_the_beat(tmp_path: Path, receiver: PingReceiver) -> None:
    target = await Target().start()
    config = _write(tmp_path / "checks.yaml", f"http://127.0.0.1:{receiver.port}/ping/xyz", target)
    daemon = Daemon(DaemonOptions(paths=[str(config)], db=tmp_path / "prober.db", listen=None))
    task = asyncio.create_task(daemon.run())
    try:
        await wait_until(lambda: len(receiver.at) >= 3, 10)
        gaps = [b - a for a, b in zip(receiver.at, receiver.at[1:], strict=False)]
        assert all(0.5 < gap < 2.0 for gap in gaps), gaps  # every 1s while healthy
        asyncio.get_running_loop().call_soon(time.sleep, 2.5)  # something holds the loop
        await asyncio.sleep(0)
        stalled_at = time.monotonic()
        await wait_until(lambda: daemon.heartbeat.withheld >= 1, 5)
        assert receiver.since(stalled_at) == 0, "the beat after a stall must be withheld"
        await wait_until(lambda: receiver.since(stalled_at) >= 1, 5)  # and the next one goes out
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
        await target.stop()


@pytest.mark.slow
async def test_an_apprise_url_is_pinged_through_apprise(tmp_path: Path, receiver: PingReceiver) -> None:
    target = await Target().start()
    config = _write(tmp_path / "checks.yaml", f"json://127.0.0.1:{receiver.port}/ping/apprise", target)
    daemon = Daemon(DaemonOptions(paths=[str(config)], db=tmp_path / "prober.db", listen=None))
    task = asyncio.create_task(daemon.run())
    try:
        await wait_until(lambda: len(receiver.at) >= 1, 10)
        assert b"prober is running and healthy" in receiver.bodies[0]
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
        await target.stop()


def test_a_bad_heartbeat_is_a_validation_error_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({"heartbeat": {"url": "not a url", "every": "0s"}, "checks": []}))
    with pytest.raises(ConfigError) as caught:
        load_config([str(path)])
    text = str(caught.value)
    assert "field 'heartbeat.url': expected an https:// URL or an Apprise URL" in text and "'not a url'" in text
    assert "field 'heartbeat.every': every must be between 1s and 1d, got 0ms" in text
