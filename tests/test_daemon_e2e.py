"""End-to-end: `prober run` as a real process against a loopback target, with Apprise delivering to a local
webhook receiver. Exactly one DOWN and one RESOLVED per outage; nothing lost or repeated across kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from pathlib import Path

import pytest
from concurrent_cases import run_cases
from daemon_helpers import Target, query, scalar, start_daemon, stop_daemon, wait_until
from webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.slow


def _write_checks(path: Path, target: Target, hook: str, extra: str = "") -> Path:
    path.write_text(
        f"""
notifiers:
  hook: {{urls: ["{hook}"]}}
checks:
  - name: api
    type: http
    url: {target.url}
    schedule: every 1s
    timeout: 800ms
    alert: {{after: 2, recover_after: 1, notify: [hook]}}
{extra}
"""
    )
    return path


def _titles(receiver: WebhookReceiver) -> list[str]:
    return [str(body.get("title")) for body in receiver.received]


async def an_outage_sends_exactly_one_down_and_one_resolved_message(tmp_path: Path) -> None:
    target = await Target().start()
    async with WebhookReceiver() as receiver:
        checks = _write_checks(tmp_path / "checks.yaml", target, receiver.url)
        db = tmp_path / "prober.db"
        proc = await start_daemon(str(checks), "--db", str(db), "--listen", "off", cwd=tmp_path)
        try:
            await wait_until(lambda: scalar(db, "select count(*) from results where status = 'up'") >= 2, 15)
            await target.stop()
            stopped = time.monotonic()
            await receiver.wait_for(1, timeout=6)
            took = time.monotonic() - stopped
            assert took <= 3.5, f"the DOWN message took {took:.2f}s (2 runs of 1s + 1s allowed, plus slack)"
            down = receiver.received[0]
            assert down["title"] == "DOWN: api"
            assert down["type"] == "failure"
            assert "connection refused" in down["message"]

            await target.start()
            await receiver.wait_for(2, timeout=6)
            resolved = receiver.received[1]
            assert resolved["title"] == "RESOLVED: api"
            assert resolved["type"] == "success"
            assert "downtime" in resolved["message"]
            await asyncio.sleep(2.5)  # further healthy runs must not send anything more
            assert _titles(receiver) == ["DOWN: api", "RESOLVED: api"]
        finally:
            code, output = await stop_daemon(proc)
            await target.stop()
        assert code == 0, output
        incidents = query(db, "select resolved_at is not null from incidents")
        assert incidents == [(1,)]


async def test_kill_9_in_a_busy_run_loses_nothing_and_repeats_no_notification(tmp_path: Path) -> None:
    target = await Target().start()
    async with WebhookReceiver() as receiver:
        busy = "\n".join(
            f"  - {{name: busy-{i}, type: http, url: '{target.url}', schedule: every 1s, timeout: 800ms}}"
            for i in range(150)
        )
        failing = (
            "  - {name: broken, type: http, url: 'http://127.0.0.1:1/', schedule: every 1s, "
            "alert: {after: 2, notify: [hook]}}"
        )
        checks = _write_checks(tmp_path / "checks.yaml", target, receiver.url, busy + "\n" + failing)
        db = tmp_path / "prober.db"
        proc = await start_daemon(str(checks), "--db", str(db), "--listen", "off", cwd=tmp_path)
        try:
            await receiver.wait_for(1, timeout=10)
            assert _titles(receiver) == ["DOWN: broken"]
            await wait_until(lambda: scalar(db, "select count(*) from results") >= 400, 20)
            committed = {row[0] for row in query(db, "select id from results")}
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

        integrity = query(db, "pragma integrity_check")
        assert integrity == [("ok",)]
        after_kill = {row[0] for row in query(db, "select id from results")}
        assert committed <= after_kill, f"{len(committed - after_kill)} committed results were lost"

        proc = await start_daemon(str(checks), "--db", str(db), "--listen", "off", cwd=tmp_path)
        try:
            before = scalar(db, "select count(*) from results")
            await wait_until(lambda: scalar(db, "select count(*) from results") >= before + 300, 20)
            await asyncio.sleep(1.5)
            assert _titles(receiver) == ["DOWN: broken"], "the open incident was announced again after restart"
            open_incidents = query(db, 'select "check" from incidents where resolved_at is null')
            assert open_incidents == [("broken",)]
        finally:
            code, output = await stop_daemon(proc)
            await target.stop()
        assert code == 0, output
        assert query(db, "pragma integrity_check") == [("ok",)]


async def a_dead_notifier_never_delays_probing_and_its_failures_are_recorded(tmp_path: Path) -> None:
    target = await Target().start()
    await target.stop()  # the port now refuses: the check is down, the incident opens
    closed = Target()
    await closed.start()
    dead_port = closed.port
    await closed.stop()
    checks = _write_checks(tmp_path / "checks.yaml", target, f"json://127.0.0.1:{dead_port}/hook")
    db = tmp_path / "prober.db"
    proc = await start_daemon(str(checks), "--db", str(db), "--listen", "off", cwd=tmp_path)
    try:
        await wait_until(lambda: scalar(db, "select count(*) from notifications") >= 2, 12)
        first = scalar(db, "select count(*) from results")
        with contextlib.suppress(AssertionError):  # stop waiting once two runs are in, at most 3 s
            await wait_until(lambda: scalar(db, "select count(*) from results") - first >= 2, 3)
        later = scalar(db, "select count(*) from results")
        assert later - first >= 2, f"only {later - first} runs in 3s while notifications were failing"
    finally:
        code, output = await stop_daemon(proc)
    assert code == 0, output
    attempts = query(db, "select attempt, ok, outcome, url from notifications order by id")
    assert len(attempts) >= 2
    assert all(ok == 0 for _, ok, _, _ in attempts)
    assert [row[0] for row in attempts][:2] == [1, 2], "a failed delivery must be retried"
    assert attempts[0][2] == "retrying"
    assert "Could not send 'DOWN: api'" in output, "failed deliveries must be logged"
    assert json.dumps(attempts)  # recorded rows are plain data


async def a_recovery_after_a_restart_is_announced_once_and_the_outage_is_not_announced_again(
    tmp_path: Path,
) -> None:
    target = await Target().start()
    port = target.port
    await target.stop()  # down from the start
    async with WebhookReceiver() as receiver:
        checks = _write_checks(tmp_path / "checks.yaml", target, receiver.url)
        db = tmp_path / "prober.db"
        proc = await start_daemon(str(checks), "--db", str(db), "--listen", "off", cwd=tmp_path)
        try:
            await receiver.wait_for(1, timeout=8)
        finally:
            code, output = await stop_daemon(proc)
        assert code == 0, output
        assert _titles(receiver) == ["DOWN: api"]

        target = await Target(port).start()  # the target recovers while prober is stopped
        proc = await start_daemon(str(checks), "--db", str(db), "--listen", "off", cwd=tmp_path)
        try:
            await receiver.wait_for(2, timeout=8)
            await asyncio.sleep(1.5)
            assert _titles(receiver) == ["DOWN: api", "RESOLVED: api"]
            assert "downtime" in receiver.received[1]["message"]
        finally:
            code, output = await stop_daemon(proc)
            await target.stop()
        assert code == 0, output
    assert query(db, "select resolved_at is not null from incidents") == [(1,)]


async def a_busy_listen_port_stops_the_start_with_a_clear_error_and_exit_code_2(tmp_path: Path) -> None:
    holder = await Target().start()  # something already listens on this port
    checks = _write_checks(tmp_path / "checks.yaml", holder, "json://127.0.0.1:9/hook")
    db = tmp_path / "prober.db"
    proc = await start_daemon(str(checks), "--db", str(db), "--listen", f"127.0.0.1:{holder.port}", cwd=tmp_path)
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        await holder.stop()
    text = output.decode(errors="replace")
    assert proc.returncode == 2, text
    assert "prober could not start" in text and "address already in use" in text.lower(), text
    assert scalar(db, "select count(*) from results") == 0, "no check may run when the API cannot listen"


async def test_outages_dead_notifiers_restarts_and_a_busy_port_each_behave_in_their_own_daemon(tmp_path: Path) -> None:
    """Four independent cases, each with its own `prober run`, target and receiver, run at once; the busy
    kill -9 case above stays alone (150 checks a second)."""
    cases = {
        "outage": an_outage_sends_exactly_one_down_and_one_resolved_message,
        "dead-notifier": a_dead_notifier_never_delays_probing_and_its_failures_are_recorded,
        "restart": a_recovery_after_a_restart_is_announced_once_and_the_outage_is_not_announced_again,
        "busy-port": a_busy_listen_port_stops_the_start_with_a_clear_error_and_exit_code_2,
    }
    for name in cases:
        (tmp_path / name).mkdir()
    await run_cases(*(case(tmp_path / name) for name, case in cases.items()))
