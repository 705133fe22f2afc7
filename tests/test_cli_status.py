"""`prober status` and `prober history` on a real database: the reason of every check that is not up, and a
latency sparkline; `prober check`'s live progress line, on a terminal only and never on stdout."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api_helpers import result
from click.testing import CliRunner
from http_targets import http_target, write_checks
from store_seed import open_incident

from prober.cli.commands import cli
from prober.cli.render import SPARK, sparkline
from prober.store import Store

ENV = {"COLUMNS": "220", "NO_COLOR": "1"}


async def _fill(db: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    results = []
    for minutes in range(30, -1, -5):
        at = now - timedelta(minutes=minutes)
        results.append(result("api", at=at, latency=0.04 + minutes / 1000))
        slow = minutes <= 10
        results.append(
            result(
                "search",
                "degraded" if slow else "up",
                at=at,
                latency=0.4 if slow else 0.1,
                error="warning: latency was 400ms, expected < 300ms" if slow else None,
            )
        )
        results.append(result("orders", "down" if minutes <= 5 else "up", at=at, location="eu"))
        results.append(result("orders", at=at, location="us"))
    async with Store(db) as store:
        await store.write_many(results)
        await open_incident(store, "orders", ["eu"], "HTTP status 503, expected 2xx", now - timedelta(minutes=5))


def test_status_prints_the_reason_of_every_check_that_is_not_up(tmp_path: Path) -> None:
    db = tmp_path / "prober.db"
    asyncio.run(_fill(db))
    outcome = CliRunner().invoke(cli, ["status", "--db", str(db)], env=ENV)
    assert outcome.exit_code == 0, outcome.output
    text = outcome.output
    assert "2 of 3 check(s) are not up:" in text
    lines = [line.strip() for line in text.splitlines()]
    orders = next(line for line in lines if line.startswith("orders down"))
    assert orders.startswith("orders down at eu since ") and orders.endswith(": HTTP status 503, expected 2xx")
    search = next(line for line in lines if line.startswith("search degraded"))
    assert "since 10m" in search or "since 1" in search, search
    assert search.endswith(": warning: latency was 400ms, expected < 300ms")
    assert not any(line.startswith("api ") for line in lines[lines.index("2 of 3 check(s) are not up:") :])


def test_status_says_so_when_every_check_is_up_and_json_is_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "prober.db"

    async def fill() -> None:
        async with Store(db) as store:
            await store.write(result("api", at=datetime.now(UTC)))

    asyncio.run(fill())
    outcome = CliRunner().invoke(cli, ["status", "--db", str(db)], env=ENV)
    assert outcome.exit_code == 0 and "All 1 check(s) are up." in outcome.output
    as_json = CliRunner().invoke(cli, ["status", "--db", str(db), "--json"], env=ENV)
    rows = [json.loads(line) for line in as_json.output.splitlines()]
    assert [row["check"] for row in rows] == ["api"] and rows[0]["error"] is None


def test_history_prints_a_latency_sparkline_oldest_first(tmp_path: Path) -> None:
    db = tmp_path / "prober.db"
    asyncio.run(_fill(db))
    outcome = CliRunner().invoke(cli, ["history", "api", "--db", str(db)], env=ENV)
    assert outcome.exit_code == 0, outcome.output
    first = outcome.output.splitlines()[0]
    assert first.startswith("latency ")
    spark = first.split()[1]
    assert set(spark) <= set(SPARK)
    assert len(spark) == 7  # one character per result: 7 results, 30 min back every 5 min
    assert spark[0] == "█" and spark[-1] == "▁"  # latency fell over the half hour
    assert "40ms … 70ms, median 55ms" in first, first
    as_json = CliRunner().invoke(cli, ["history", "api", "--db", str(db), "--json"], env=ENV)
    assert all(json.loads(line)["check"] == "api" for line in as_json.output.splitlines())  # no sparkline


def test_the_sparkline_groups_results_and_marks_down_ones() -> None:
    now = datetime.now(UTC)
    many = [result("api", "down" if index == 50 else "up", at=now, latency=0.09 * (index % 2)) for index in range(120)]
    line, low, high = sparkline(many, width=60)
    assert len(line.plain) == 60 and (low, high) == (0.0, 0.09)
    assert set(line.plain) == {"█"}  # two results per character, the slower one shown
    styles = [span.style for span in line.spans]
    assert styles.count("red") == 1 and styles[25] == "red"
    flat, _, _ = sparkline([result("api", at=now, latency=0.05)] * 3)
    assert flat.plain == "▁▁▁"


def _run_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run prober with stderr on a pseudo-terminal and stdout on a pipe; return code, stdout, terminal text."""
    controller, terminal = pty.openpty()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PROBER_", "NO_COLOR"))}
    env.update({"TERM": "xterm-256color", "COLUMNS": "160"})
    process = subprocess.Popen(
        [sys.executable, "-m", "prober", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=terminal, env=env
    )
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    stdout = process.communicate(timeout=30)[0].decode()
    os.close(controller)
    return process.returncode, stdout, seen.decode(errors="replace")


@pytest.mark.slow
async def test_check_shows_live_progress_on_a_terminal_and_keeps_json_stdout_clean(tmp_path: Path) -> None:
    async with http_target() as target:
        checks = [
            {"name": "fast", "type": "http", "url": target.url("/health")},
            {"name": "broken", "type": "http", "url": target.url("/unavailable")},
            {"name": "slow", "type": "http", "url": target.url("/slow-headers"), "timeout": "2s"},
        ]
        path = write_checks(tmp_path / "checks.yaml", checks)
        code, stdout, terminal = await asyncio.to_thread(_run_on_a_terminal, ["check", str(path), "--json"], tmp_path)
        piped = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "prober", "check", str(path), "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
        )  # fmt: skip
        plain_out, plain_err = await asyncio.wait_for(piped.communicate(), 60)
    assert code == 1, terminal[-3000:]  # broken (and slow, timed out) are down
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert sorted(item["check"] for item in lines) == ["broken", "fast", "slow"]
    assert "checking" in terminal and "running slow" in terminal and "1 down" in terminal, terminal[-2000:]
    assert "/3" in terminal
    assert plain_err == b"", (piped.returncode, plain_out, plain_err)  # not a terminal: no progress line at all
    assert sorted(json.loads(line)["check"] for line in plain_out.decode().splitlines()) == [
        "broken",
        "fast",
        "slow",
    ], (piped.returncode, plain_out)
