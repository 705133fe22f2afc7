"""One daemon per database: a second `prober run` on a database in use exits 2 naming the holder's pid;
the lock is the kernel's, so a `kill -9` of the holder frees it at once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from daemon_helpers import Target, scalar, start_daemon, stop_daemon, wait_until

from prober.daemon.lock import DatabaseInUseError, DatabaseLock


def _checks(tmp_path: Path, target: Target) -> Path:
    checks = tmp_path / "checks.yaml"
    checks.write_text(f"checks:\n  - {{name: api, type: http, url: '{target.url}', schedule: every 1s}}\n")
    return checks


@pytest.mark.slow
async def test_a_second_prober_on_the_same_database_exits_2_and_a_killed_holder_frees_it(tmp_path: Path) -> None:
    target = await Target().start()
    checks = _checks(tmp_path, target)
    db = tmp_path / "prober.db"
    first = await start_daemon(str(checks), "--db", "prober.db", "--listen", "off", cwd=tmp_path)
    try:
        await wait_until(lambda: scalar(db, "select count(*) from results") >= 1, 20)
        second = await start_daemon(str(checks), "--db", "prober.db", "--listen", "off", cwd=tmp_path)
        output, _ = await asyncio.wait_for(second.communicate(), 20)
        text = output.decode()
        assert second.returncode == 2, text
        assert f"database prober.db is in use by another prober (pid {first.pid})" in text
        # the first goes on alone: one result per second, not two
        before = scalar(db, "select count(*) from results")
        await asyncio.sleep(3)
        grown = scalar(db, "select count(*) from results") - before
        assert grown >= 1, "the first daemon stopped probing"
        assert grown <= 4, f"{grown} results in 3 s of a 1 s check: a second daemon is probing too"

        first.send_signal(signal.SIGKILL)
        await first.wait()
        third = await start_daemon(str(checks), "--db", "prober.db", "--listen", "off", cwd=tmp_path)
        try:
            count = scalar(db, "select count(*) from results")
            await wait_until(lambda: scalar(db, "select count(*) from results") > count, 20)
        finally:
            code, out = await stop_daemon(third)
        assert code == 0, out
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
        await target.stop()


def test_the_lock_is_exclusive_within_a_process_too_and_released_on_release(tmp_path: Path) -> None:
    db = tmp_path / "prober.db"
    with DatabaseLock(db) as held:
        assert held.held
        with pytest.raises(DatabaseInUseError, match=r"is in use by another prober \(pid \d+\)"):
            DatabaseLock(db).acquire()
    again = DatabaseLock(db)
    again.acquire()  # the healthy twin: free once released
    assert again.held
    again.release()
    assert (tmp_path / "prober.db.lock").exists(), "the lock file is kept for the next holder"
