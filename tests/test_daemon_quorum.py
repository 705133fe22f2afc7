"""Quorum across locations, in-process: the local prober is one location, results for a second are fed in
the way an agent's push would deliver them (Daemon.accept)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from daemon_helpers import Target, scalar, wait_until
from webhook_receiver import WebhookReceiver

from prober.daemon.service import Daemon, DaemonOptions
from prober.results import Result

pytestmark = pytest.mark.slow


async def test_quorum_of_two_opens_only_when_both_locations_are_down_and_resolves_once(
    make_result: Callable[..., Result], tmp_path: Path
) -> None:
    dead = Target()
    await dead.start()
    await dead.stop()  # location a sees connection refused
    async with WebhookReceiver() as receiver:
        checks = tmp_path / "checks.yaml"
        checks.write_text(
            f"""
notifiers:
  hook: {{urls: ["{receiver.url}"]}}
checks:
  - name: api
    type: http
    url: {dead.url}
    schedule: every 300ms
    timeout: 250ms
    locations: [a, b]
    alert: {{after: 2, recover_after: 1, quorum: 2, notify: [hook]}}
"""
        )
        db = tmp_path / "prober.db"
        daemon = Daemon(DaemonOptions(paths=[str(checks)], db=db, location="a", listen=None, notify_base_delay=0.1))
        task = asyncio.create_task(daemon.run())
        try:
            await wait_until(lambda: scalar(db, "select count(*) from results where location = 'a'") >= 4, 10)
            await asyncio.sleep(0.3)
            assert receiver.received == [], "one location down must not open an incident under quorum 2"

            await daemon.accept(make_result("api", "down", at=datetime.now(UTC), location="b", duration_ms=1.0))
            await daemon.accept(make_result("api", "down", at=datetime.now(UTC), location="b", duration_ms=1.0))
            await receiver.wait_for(1, timeout=3)
            down = receiver.received[0]
            assert down["title"] == "DOWN: api"
            assert "a" in down["message"] and "b" in down["message"]

            await daemon.accept(
                make_result("api", "up", at=datetime.now(UTC), location="b", duration_ms=1.0)
            )  # b recovers: fewer than 2 locations down
            await receiver.wait_for(2, timeout=3)
            assert receiver.received[1]["title"] == "RESOLVED: api"
            await asyncio.sleep(1.0)  # a keeps failing; with b up there is no quorum, so nothing more
            assert [body["title"] for body in receiver.received] == ["DOWN: api", "RESOLVED: api"]
            assert scalar(db, "select count(*) from results where location = 'b'") == 3
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 15)
