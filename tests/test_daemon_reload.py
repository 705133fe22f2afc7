"""Reloading definitions while the daemon runs: a valid set replaces the old one, an invalid one is refused."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from daemon_helpers import Target, scalar, wait_until

from prober.daemon import Daemon, DaemonOptions


def _checks(target: Target, names: list[str]) -> str:
    lines = ["checks:"]
    for name in names:
        lines.append(f"  - {{name: {name}, type: http, url: '{target.url}', schedule: every 200ms, timeout: 1s}}")
    return "\n".join(lines) + "\n"


async def test_a_changed_file_is_reloaded_and_an_invalid_one_is_refused_while_the_old_set_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = await Target().start()
    checks = tmp_path / "checks.yaml"
    checks.write_text(_checks(target, ["first"]))
    db = tmp_path / "prober.db"
    daemon = Daemon(DaemonOptions(paths=[str(checks)], db=db, listen=None, watch_interval=0.1))
    task = asyncio.create_task(daemon.run())
    count = lambda name: scalar(db, 'select count(*) from results where "check" = ?', name)  # noqa: E731
    try:
        await wait_until(lambda: count("first") >= 2, 10)

        checks.write_text(_checks(target, ["first", "second"]))
        await wait_until(lambda: count("second") >= 2, 10)

        caplog.set_level(logging.ERROR, logger="prober.daemon")
        checks.write_text(_checks(target, ["first", "second"]) + "  - {name: broken, type: http}\n")
        await wait_until(lambda: any("reload refused" in r.getMessage() for r in caplog.records), 10)
        refused = [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]
        assert any("'broken'" in line and "'url'" in line for line in refused), refused
        before = count("second")
        await wait_until(lambda: count("second") >= before + 2, 10)  # the old set keeps running
        assert [spec.name for spec in daemon.config.checks] == ["first", "second"]

        assert await daemon.reload("test") is False
        checks.write_text(_checks(target, ["second"]))
        assert await daemon.reload("test") is True
        await asyncio.sleep(0.5)
        stopped_at = count("first")
        await asyncio.sleep(0.6)
        assert count("first") == stopped_at, "a removed check must stop running"
        assert count("second") > before
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 15)
        await target.stop()
