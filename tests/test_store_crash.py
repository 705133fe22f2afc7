"""Crash safety: a process writing results is killed with SIGKILL; nothing it was told was written is lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from prober.store import Store

WRITER = r"""
import asyncio, sys
from datetime import UTC, datetime
from prober.results import Result
from prober.store import Store

def result(check, i):
    return Result(check=check, type="http", location="default", started_at=datetime.now(UTC), duration_ms=12.0,
                  status="down" if i % 5 == 0 else "up", metrics={"latency": 0.012, "status": 200})

async def main(path):
    async with Store(path) as store:
        async def one_by_one(n):
            i = 0
            while True:
                r = result(f"c{n}", i)
                await store.write(r)
                sys.stdout.write(r.id + "\n")
                sys.stdout.flush()
                i += 1
        async def in_batches():
            i = 0
            while True:
                batch = [result("agent", i + k) for k in range(25)]
                i += 25
                await store.write_many(batch)
                sys.stdout.write("".join(r.id + "\n" for r in batch))
                sys.stdout.flush()
        await asyncio.gather(in_batches(), *(one_by_one(n) for n in range(20)))

asyncio.run(main(sys.argv[1]))
"""


def write_until_killed(path: Path, confirmed_before_kill: int) -> list[str]:
    """Run the writer, SIGKILL it once it has confirmed enough writes; return every id it confirmed."""
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while len(lines) < confirmed_before_kill and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    rest = process.stdout.read()  # printed before the kill, still in the pipe
    errors = process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL, errors
    assert len(lines) >= confirmed_before_kill, f"the writer confirmed only {len(lines)} writes:\n{errors}"
    text = "".join(lines) + rest
    complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]  # a line cut by the kill
    return complete.split()


def test_kill_9_while_writing_loses_no_confirmed_result_and_leaves_a_sound_file(tmp_path: Path) -> None:
    path = tmp_path / "prober.db"
    confirmed = write_until_killed(path, 1500)
    confirmed += write_until_killed(path, 1500)  # the second run opens the file the first left behind

    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {row[0] for row in connection.execute("SELECT id FROM results")}
        missing = set(confirmed) - stored
        assert not missing, f"{len(missing)} confirmed results are missing, e.g. {sorted(missing)[:3]}"
        # rollups and current state are committed in the same transactions as the results
        [(rolled_up,)] = connection.execute("SELECT sum(count) FROM rollups_hourly")
        assert rolled_up == len(stored)
        newest = dict(connection.execute('SELECT "check", id FROM results GROUP BY "check" HAVING max(started_at)'))
        current = dict(connection.execute('SELECT "check", result_id FROM current_state'))
        assert current.keys() == newest.keys()
        started = dict(connection.execute("SELECT id, started_at FROM results"))
        assert all(started[current[check]] == started[newest[check]] for check in current)
    finally:
        connection.close()

    with Store(path, create=False) as store:
        assert len(store.checks()) == 21
