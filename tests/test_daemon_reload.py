"""Reloading definitions while the daemon runs: a valid set replaces the old one, an invalid one is refused."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from daemon_helpers import Target, scalar, wait_until

from prober.daemon.service import Daemon, DaemonOptions


def _checks(target: Target, names: list[str]) -> str:
    lines = ["checks:"]
    for name in names:
        lines.append(f"  - {{name: {name}, type: http, url: '{target.url}', schedule: every 200ms, timeout: 1s}}")
    return "\n".join(lines) + "\n"


@pytest.mark.slow
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


async def test_an_alias_bomb_saved_into_the_folder_is_refused_and_the_old_set_keeps_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import resource

    target = await Target().start()
    folder = tmp_path / "checks"
    folder.mkdir()
    (folder / "a.yaml").write_text(_checks(target, ["first"]))
    db = tmp_path / "prober.db"
    daemon = Daemon(DaemonOptions(paths=[str(folder)], db=db, listen=None, watch_interval=0.1))
    task = asyncio.create_task(daemon.run())
    count = lambda name: scalar(db, 'select count(*) from results where "check" = ?', name)  # noqa: E731
    try:
        await wait_until(lambda: count("first") >= 2, 10)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        caplog.set_level(logging.ERROR, logger="prober.daemon")
        levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        for level in range(8):
            this, previous = chr(98 + level), chr(97 + level)
            levels.append(f"{this}: &{this} [" + ",".join([f"*{previous}"] * 9) + "]")
        (folder / "bomb.yaml").write_text("\n".join(levels) + "\nchecks: []\n")
        await wait_until(lambda: any("reload refused" in r.getMessage() for r in caplog.records), 10)
        refused = " ".join(r.getMessage() for r in caplog.records if "reload refused" in r.getMessage())
        assert "alias bomb" in refused and "bomb.yaml" in refused
        before = count("first")
        await wait_until(lambda: count("first") >= before + 2, 10)
        assert [spec.name for spec in daemon.config.checks] == ["first"]
        grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
        assert grown_mib < 50, f"the bomb grew the daemon by {grown_mib:.0f} MiB"
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 15)
        await target.stop()
