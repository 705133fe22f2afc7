"""Supervised background work: an injected failure in the tick, the file watcher or a notifier lane is
logged once, the task restarts with backoff, and /metrics counts it in prober_task_restarts_total{task}.
Also the event-loop lag histogram: a loop held for 300 ms shows up in prober_event_loop_lag_seconds."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from daemon_helpers import Target, scalar, wait_until
from prometheus_client.parser import text_string_to_metric_families
from webhook_receiver import WebhookReceiver

import prober.daemon.service as daemon_module
from prober.daemon.service import Daemon, DaemonOptions
from prober.daemon.supervise import Supervisor
from prober.notify.notifier import Notifier


async def _metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def test_a_task_that_raises_is_logged_once_per_failure_and_restarted_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = Supervisor(base_delay=0.05, max_delay=0.2)
    calls: list[float] = []

    async def flaky() -> None:
        calls.append(time.monotonic())
        if len(calls) <= 3:
            raise RuntimeError(f"injected failure {len(calls)}")

    with caplog.at_level(logging.ERROR, logger="prober.supervise"):
        await asyncio.wait_for(supervisor.run("flaky", flaky), 5)
    assert len(calls) == 4 and supervisor.restarts == {"flaky": 3}
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[0] >= 0.04 and gaps[1] >= 0.09 and gaps[2] >= 0.18, gaps  # 50 ms, 100 ms, 200 ms (capped)
    failures = [r for r in caplog.records if "background task flaky failed" in r.getMessage()]
    assert len(failures) == 3 and all(r.exc_info for r in failures)

    healthy: list[int] = []

    async def fine() -> None:
        healthy.append(1)

    await supervisor.run("fine", fine)  # the healthy twin: runs once, no restart
    assert healthy == [1] and supervisor.restarts["fine"] == 0


@pytest.mark.slow
async def test_tick_and_watcher_failures_restart_them_count_them_and_a_later_edit_still_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, free_port: int
) -> None:
    target = await Target().start()
    checks = tmp_path / "checks.yaml"
    checks.write_text(f"checks:\n  - {{name: one, type: http, url: '{target.url}', schedule: every 1s}}\n")
    failures = {"tick": 0, "watch": 0}
    real_stamp = Daemon._stamp

    def failing_stamp(self: Daemon) -> Any:
        if failures["watch"] < 1:
            failures["watch"] += 1
            raise OSError("injected: the check folder could not be listed")
        return real_stamp(self)

    real_repeats = daemon_module.due_repeats

    def failing_repeats(*args: Any, **kwargs: Any) -> Any:
        if failures["tick"] < 2:
            failures["tick"] += 1
            raise RuntimeError("injected: the tick hit a bug")
        return real_repeats(*args, **kwargs)

    monkeypatch.setattr(Daemon, "_stamp", failing_stamp)
    monkeypatch.setattr(daemon_module, "due_repeats", failing_repeats)
    port = free_port
    db = tmp_path / "prober.db"
    options = DaemonOptions(
        paths=[str(checks)], db=db, listen=f"127.0.0.1:{port}", watch_interval=0.2, tick_interval=0.2
    )
    daemon = Daemon(options)
    daemon.supervisor = Supervisor(base_delay=0.1, max_delay=0.5)
    monkeypatch.setattr(Daemon, "_stamp", real_stamp)  # the first stamp (at start) works
    with caplog.at_level(logging.ERROR, logger="prober.supervise"):
        task = asyncio.create_task(daemon.run())
        try:
            await wait_until(lambda: scalar(db, "select count(*) from results") >= 1, 20)
            monkeypatch.setattr(Daemon, "_stamp", failing_stamp)
            # the tick only calls due_repeats for a check with alert.repeat: add one with a valid edit
            checks.write_text(
                f"checks:\n  - {{name: one, type: http, url: '{target.url}', schedule: every 1s}}\n"
                f"  - {{name: two, type: http, url: '{target.url}', schedule: every 1s, "
                "alert: {repeat: 1h}}\n"
            )
            await wait_until(lambda: scalar(db, "select count(*) from results where \"check\" = 'two'") >= 1, 20)
            await wait_until(lambda: failures["tick"] >= 2 and daemon.supervisor.restarts.get("tick") == 2, 20)
            samples = await _metrics(port)
            assert samples[("prober_task_restarts_total", (("task", "watch"),))] == 1
            assert samples[("prober_task_restarts_total", (("task", "tick"),))] == 2
            assert samples[("prober_task_restarts_total", (("task", "prune"),))] == 0  # the healthy twin
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 20)
            await target.stop()
    logged = [r.getMessage() for r in caplog.records if r.name == "prober.supervise"]
    assert sum("background task watch failed" in m for m in logged) == 1
    assert sum("background task tick failed" in m for m in logged) == 2


async def test_a_notifier_lane_that_hits_a_bug_restarts_and_still_delivers_the_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from test_notify import transition

    real = Notifier._deliver
    calls = {"n": 0}

    async def buggy(self: Notifier, lane: Any, job: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("injected: a bug in delivery")
        await real(self, lane, job)

    monkeypatch.setattr(Notifier, "_deliver", buggy)
    supervisor = Supervisor(base_delay=0.05)
    async with WebhookReceiver() as hook:
        notifier = Notifier(supervisor=supervisor)
        notifier.submit(transition("opened"), [hook.url])
        notifier.submit(transition("resolved"), [hook.url])
        received = await hook.wait_for(2, timeout=10)
        await notifier.aclose(1)
    assert [item["title"] for item in received] == ["DOWN: api-health", "RESOLVED: api-health"]
    assert supervisor.restarts["notify"] == 1


@pytest.mark.slow
async def test_a_loop_held_for_300ms_shows_in_the_event_loop_lag_histogram(free_port: int, tmp_path: Path) -> None:
    target = await Target().start()
    checks = tmp_path / "checks.yaml"
    checks.write_text(f"checks:\n  - {{name: one, type: http, url: '{target.url}', schedule: every 1s}}\n")
    port = free_port
    daemon = Daemon(DaemonOptions(paths=[str(checks)], db=tmp_path / "prober.db", listen=f"127.0.0.1:{port}"))
    task = asyncio.create_task(daemon.run())
    try:
        await wait_until(lambda: daemon.runtime.loop_lag.count >= 10, 20)
        before = await _metrics(port)
        over = ("prober_event_loop_lag_seconds_bucket", (("le", "0.25"),))
        total = ("prober_event_loop_lag_seconds_bucket", (("le", "+Inf"),))
        slow_before = before[total] - before[over]
        time.sleep(0.45)  # hold the loop, as a catastrophic regex would (the probe sleeps 0.1 s: lag >= 0.35 s)
        await asyncio.sleep(1.2)  # past the API's 1 s response cache
        after = await _metrics(port)
        assert after[total] - after[over] == slow_before + 1, "exactly one wake-up came more than 250 ms late"
        assert after[("prober_event_loop_lag_seconds_count", ())] > before[("prober_event_loop_lag_seconds_count", ())]
        lag_sum = ("prober_event_loop_lag_seconds_sum", ())
        assert after[lag_sum] - before[lag_sum] >= 0.25
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
        await target.stop()
