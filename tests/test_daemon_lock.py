"""One daemon per database: a second `prober run` on a database in use exits 2 naming the first one's pid.

Real processes: the lock must hold across processes, and be gone the moment its holder dies (kill -9).
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from daemon_helpers import Target, scalar, start_daemon, stop_daemon, wait_until

from prober.store.lock import DatabaseInUse, lock_database


def _checks(path: Path, target: Target) -> Path:
    path.write_text(
        f"checks:\n  - {{name: api, type: http, url: '{target.url}', schedule: every 200ms, timeout: 1s}}\n"
    )
    return path


@pytest.mark.slow
async def test_a_second_daemon_on_the_same_database_exits_2_and_the_lock_dies_with_its_holder(
    tmp_path: Path,
) -> None:
    target = await Target().start()
    checks = _checks(tmp_path / "checks.yaml", target)
    count = lambda: scalar(tmp_path / "prober.db", "select count(*) from results")  # noqa: E731
    first = await start_daemon(str(checks), "--db", "prober.db", "--listen", "off", cwd=tmp_path)
    try:
        await wait_until(lambda: count() >= 2, 20)
        second = await start_daemon(str(checks), "--db", "prober.db", "--listen", "off", cwd=tmp_path)
        output, _ = await asyncio.wait_for(second.communicate(), 30)
        assert second.returncode == 2
        text = output.decode()
        assert f"database prober.db is in use by another prober (pid {first.pid})" in text, text
        assert "Traceback" not in text

        # Another path to the same file is the same database.
        third = await start_daemon(
            str(checks), "--db", str(tmp_path / "." / "prober.db"), "--listen", "off", cwd=tmp_path
        )
        await asyncio.wait_for(third.communicate(), 30)
        assert third.returncode == 2

        first.send_signal(signal.SIGKILL)
        await first.wait()
        after_crash = await start_daemon(str(checks), "--db", "prober.db", "--listen", "off", cwd=tmp_path)
        try:
            before = count()
            await wait_until(lambda: count() >= before + 2, 20)  # it started and probes
        finally:
            code, log = await stop_daemon(after_crash)
        assert code == 0, log
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
        await target.stop()


async def test_daemons_on_different_databases_both_run(tmp_path: Path) -> None:
    target = await Target().start()
    checks = _checks(tmp_path / "checks.yaml", target)
    daemons = [
        await start_daemon(str(checks), "--db", name, "--listen", "off", cwd=tmp_path) for name in ("a.db", "b.db")
    ]
    try:
        for name in ("a.db", "b.db"):
            await wait_until(lambda name=name: scalar(tmp_path / name, "select count(*) from results") >= 1, 20)
    finally:
        for proc in daemons:
            code, log = await stop_daemon(proc)
            assert code == 0, log
        await target.stop()


def test_the_lock_is_released_and_can_be_taken_again(tmp_path: Path) -> None:
    db = tmp_path / "prober.db"
    held = lock_database(db)
    # flock locks belong to the open file description, so a second open in this process conflicts too.
    with pytest.raises(DatabaseInUse, match=r"in use by another prober \(pid \d+\)"):
        lock_database(db)
    held.release()
    held.release()  # idempotent
    lock_database(db).release()
