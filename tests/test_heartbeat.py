"""The `heartbeat` check type: how late pings are judged (a fake clock and a list of pings), and the ping endpoint
of a real daemon on loopback (tokens, actions, bodies, rate limit, a restart)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from prober.config.loader import ConfigError, load_config
from prober.daemon.service import Daemon, DaemonOptions
from prober.pings import Ping, ping_action, read_forward_header
from prober.probes import PROBES
from prober.probes.heartbeat import HeartbeatCheck
from prober.redact import check_secrets
from prober.scheduling.runner import Runner
from prober.store import Store

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TOKEN = "job-Token-0123456789abcdef"


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment

    async def sleep_until(self, moment: datetime) -> None:
        self.moment = max(self.moment, moment)


class Pings:
    def __init__(self, *pings: Ping) -> None:
        self.items = sorted(pings, key=lambda ping: ping.received_at, reverse=True)

    async def recent_pings(self, check: str, limit: int) -> Sequence[Ping]:
        return [ping for ping in self.items if ping.check == check][:limit]


def ping(kind: str, ago: timedelta, code: int | None = None, body: str = "") -> Ping:
    return Ping(check="backup", kind=kind, received_at=NOW - ago, exit_code=code, body=body)  # type: ignore[arg-type]


def write_checks(path: Path, **extra: Any) -> Path:
    lines = [f"{key}: {value}" for key, value in {"schedule": '"every 1d"', "grace": "1h", **extra}.items()]
    path.write_text(
        "checks:\n  - name: backup\n    type: heartbeat\n    token: "
        + TOKEN
        + "\n"
        + "".join(f"    {line}\n" for line in lines)
    )
    return path


async def judge(tmp_path: Path, pings: Pings, now: datetime = NOW, **extra: Any) -> Any:
    spec = load_config([str(write_checks(tmp_path / "checks.yaml", **extra))]).checks[0]
    runner = Runner(clock=FixedClock(now), pings=pings)
    return await runner.run(spec)


async def test_a_ping_within_schedule_and_grace_is_up_with_its_age(tmp_path: Path) -> None:
    result = await judge(tmp_path, Pings(ping("success", timedelta(hours=3))))
    assert result.status == "up", result.error
    assert result.metrics["last_ping_age"] == 3 * 3600
    assert result.metrics["overdue"] == 0
    assert result.metrics["failed"] is False


async def test_a_late_ping_is_down_saying_how_late_and_since_when(tmp_path: Path) -> None:
    result = await judge(tmp_path, Pings(ping("success", timedelta(hours=26))))
    assert result.status == "down"
    assert result.metrics["overdue"] == 3600
    assert result.error.startswith("the heartbeat is 1h late")
    assert "last ping 1d2h ago" in result.error and "every 1d" in result.error and "grace 1h" in result.error


async def test_late_is_only_after_the_grace(tmp_path: Path) -> None:
    result = await judge(tmp_path, Pings(ping("success", timedelta(hours=24, minutes=59))))
    assert result.status == "up", result.error


async def test_a_fail_ping_is_down_with_its_exit_code_and_the_first_line_of_its_log(tmp_path: Path) -> None:
    pings = Pings(
        ping("start", timedelta(minutes=10)), ping("fail", timedelta(minutes=2), 3, "\npg_dump: disk full\nmore")
    )
    result = await judge(tmp_path, pings)
    assert result.status == "down"
    assert result.metrics["exit_code"] == 3 and result.metrics["failed"] is True
    assert result.metrics["last_duration"] == 480
    assert result.error.startswith("the job reported failure")
    assert "with exit code 3: pg_dump: disk full" in result.error
    assert result.details["log"] == "\npg_dump: disk full\nmore"


async def test_a_success_after_a_failure_recovers(tmp_path: Path) -> None:
    pings = Pings(ping("fail", timedelta(minutes=5)), ping("success", timedelta(minutes=1), 0))
    result = await judge(tmp_path, pings)
    assert result.status == "up" and result.metrics["exit_code"] == 0


async def test_a_started_job_past_max_runtime_is_down(tmp_path: Path) -> None:
    pings = Pings(ping("success", timedelta(hours=5)), ping("start", timedelta(minutes=40)))
    result = await judge(tmp_path, pings, max_runtime="30m")
    assert result.status == "down"
    assert result.metrics["running_for"] == 2400
    assert "the job started 40m ago and has not finished" in result.error
    healthy = await judge(tmp_path, pings, max_runtime="1h")
    assert healthy.status == "up" and healthy.metrics["running_for"] == 2400


async def test_a_cron_schedule_expects_the_ping_after_each_slot(tmp_path: Path) -> None:
    # Due at 02:00 each day; the last ping came yesterday at 02:03, so the 02:00 ping of today is 10 h late.
    pings = Pings(ping("success", timedelta(hours=33, minutes=57)))
    result = await judge(tmp_path, pings, schedule='"0 2 * * *"', grace="30m")
    assert result.status == "down"
    assert result.metrics["overdue"] == 9.5 * 3600
    assert result.details["next_due"] == "2026-03-02T02:00:00.000Z"
    on_time = await judge(tmp_path, Pings(ping("success", timedelta(hours=9, minutes=57))), schedule='"0 2 * * *"')
    assert on_time.status == "up"


async def test_a_check_never_pinged_waits_one_period_and_grace_from_its_first_run(tmp_path: Path) -> None:
    spec = load_config([str(write_checks(tmp_path / "checks.yaml"))]).checks[0]
    clock = FixedClock(NOW)
    runner = Runner(clock=clock, pings=Pings())
    first = await runner.run(spec)
    assert first.status == "up" and "last_ping_age" not in first.metrics
    assert first.details["waiting_since"] == "2026-03-02T12:00:00.000Z"
    clock.moment = NOW + timedelta(hours=25, minutes=1)
    late = await runner.run(spec)
    assert late.status == "down" and "no ping yet" in (late.error or "")


async def test_the_token_is_a_secret_and_must_be_long(tmp_path: Path) -> None:
    spec = load_config([str(write_checks(tmp_path / "checks.yaml"))]).checks[0]
    probe = PROBES["heartbeat"]
    assert TOKEN in check_secrets(spec.model, probe.secrets)
    assert TOKEN not in probe.target(spec.model)
    (tmp_path / "bad.yaml").write_text(
        "checks:\n  - {name: backup, type: heartbeat, token: short, schedule: every 1d}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config([str(tmp_path / "bad.yaml")])
    text = str(raised.value)
    assert "bad.yaml" in text and "backup" in text and "token" in text
    assert "a ping token must be 16 to 128 letters, digits, '-' or '_'" in text and "'short'" in text


def test_a_heartbeat_needs_a_schedule_and_a_positive_grace() -> None:
    with pytest.raises(ValueError, match="schedule"):
        HeartbeatCheck.model_validate({"name": "x", "type": "heartbeat", "token": TOKEN})
    with pytest.raises(ValueError, match="more than 0s and at most 30d, got 40d"):
        HeartbeatCheck.model_validate(
            {"name": "x", "type": "heartbeat", "token": TOKEN, "schedule": "every 1d", "grace": "40d"}
        )


def test_the_scheduler_measures_a_heartbeat_every_half_grace_between_1s_and_1m(tmp_path: Path) -> None:
    spec = load_config([str(write_checks(tmp_path / "checks.yaml"))]).checks[0]
    assert spec.run_schedule.interval == 60.0
    short = load_config([str(write_checks(tmp_path / "c.yaml", grace="10s"))]).checks[0]
    assert short.run_schedule.interval == 5.0
    assert short.model.schedule.interval == 86400.0


def test_ping_paths_and_forward_headers_are_read_strictly() -> None:
    assert ping_action("") == ("success", None)
    assert ping_action("start") == ("start", None)
    assert ping_action("fail") == ("fail", None)
    assert ping_action("0") == ("success", 0)
    assert ping_action("137") == ("fail", 137)
    for bad in ("256", "-1", "log", "1.5", "0x1"):
        assert ping_action(bad) is None, bad
    ping_id = "0123456789abcdef0123456789abcdef"
    assert read_forward_header(f"{ping_id} 2026-03-02T11:59:00.000Z", NOW) == (ping_id, NOW - timedelta(minutes=1))
    assert read_forward_header(f"{ping_id} 2026-03-02T13:00:00.000Z", NOW) == (ping_id, NOW)  # future: now
    assert read_forward_header(f"{ping_id} 2026-03-01T12:00:00.000Z", NOW) == (ping_id, NOW)  # too old: now
    assert read_forward_header("nope 2026-03-02T11:59:00Z", NOW) is None
    assert read_forward_header(f"{ping_id} yesterday", NOW) is None


# ---- the endpoint of a real daemon ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def daemon(tmp_path: Path, port: int, **extra: Any) -> AsyncIterator[Daemon]:
    checks = write_checks(tmp_path / "checks.yaml", **extra)
    running = Daemon(DaemonOptions(paths=[str(checks)], db=tmp_path / "p.db", listen=f"127.0.0.1:{port}"))
    task = asyncio.create_task(running.run())
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status in (200, 503):
                        break
            await asyncio.sleep(0.05)
    try:
        yield running
    finally:
        running.stop()
        await asyncio.wait_for(task, 15)


async def latest(db: Path, check: str = "backup") -> Any:
    with Store(db, create=False) as store:
        rows = store.results(check, limit=1)
        return rows[0] if rows else None


async def test_pings_reach_the_store_and_turn_the_check_down_and_up_at_once(tmp_path: Path, free_port: int) -> None:
    base = f"http://127.0.0.1:{free_port}"
    async with daemon(tmp_path, free_port) as running, aiohttp.ClientSession() as session:
        async with session.post(f"{base}/ping/{TOKEN}/start") as response:
            assert response.status == 200 and await response.text() == "OK"
        async with session.post(f"{base}/ping/{TOKEN}/2", data=b"rsync: connection unexpectedly closed\n") as response:
            assert response.status == 200
        assert running.store is not None
        for _ in range(100):
            result = running.store.results("backup", limit=1)
            if result and result[0].status == "down":
                break
            await asyncio.sleep(0.05)
        assert result[0].status == "down", result
        assert result[0].metrics["exit_code"] == 2
        assert "exit code 2: rsync: connection unexpectedly closed" in (result[0].error or "")
        async with session.get(f"{base}/ping/{TOKEN}") as response:
            assert response.status == 200
        for _ in range(100):
            result = running.store.results("backup", limit=1)
            if result[0].status == "up":
                break
            await asyncio.sleep(0.05)
        assert result[0].status == "up"
        assert TOKEN not in str(result[0].to_json())
        pings = running.store.pings("backup")
        assert [item.kind for item in pings] == ["success", "fail", "start"]
        assert pings[1].body == "rsync: connection unexpectedly closed\n"
        async with session.get(f"{base}/api/v1/checks/backup") as response:
            page = await response.text()
            data = json.loads(page)
        assert TOKEN not in page
        headline = {item["metric"]: item for item in data["headline"]}
        assert headline["last_ping"]["label"] == "Last ping" and headline["last_ping"]["unit"] == "ago"
        assert headline["last_ping"]["values"][0]["value"] == result[0].metrics["last_ping"]
        assert data["check"]["target"] == "/ping/****"
        async with session.get(f"{base}/metrics") as response:
            metrics = await response.text()
        assert 'probe_heartbeat_last_ping_age_seconds{check="backup"' in metrics
        assert TOKEN not in metrics
    # After a restart the pings are still there: the check is still up, its last ping still known.
    async with daemon(tmp_path, free_port) as running:
        assert running.store is not None
        assert [item.kind for item in running.store.pings("backup")] == ["success", "fail", "start"]


async def test_unknown_tokens_and_actions_are_404_without_saying_whether_a_check_exists(
    tmp_path: Path, free_port: int
) -> None:
    base = f"http://127.0.0.1:{free_port}"
    async with daemon(tmp_path, free_port) as running, aiohttp.ClientSession() as session:
        answers = []
        for path in (
            "/ping/not-a-token-0123456789",
            f"/ping/{TOKEN[:-1]}",
            f"/ping/{TOKEN}x",
            f"/ping/{TOKEN}/nonsense",
            f"/ping/{TOKEN}/256",
        ):
            async with session.get(base + path) as response:
                answers.append((response.status, await response.text()))
        assert answers == [(404, "not found")] * 5
        assert running.store is not None and running.store.pings("backup") == []


async def test_pings_over_the_rate_limit_are_refused_with_retry_after(tmp_path: Path, free_port: int) -> None:
    from prober.api.ping import RATE

    base = f"http://127.0.0.1:{free_port}"
    async with daemon(tmp_path, free_port) as running, aiohttp.ClientSession() as session:
        statuses = []
        for _ in range(RATE + 2):
            async with session.get(f"{base}/ping/{TOKEN}") as response:
                statuses.append(response.status)
                if response.status == 429:
                    assert int(response.headers["Retry-After"]) >= 1
                    assert "at most 30 a minute" in await response.text()
        assert statuses == [200] * RATE + [429, 429]
        assert running.store is not None and len(running.store.pings("backup")) == RATE


async def test_a_ping_body_is_kept_capped(tmp_path: Path, free_port: int) -> None:
    from prober.pings import MAX_BODY

    base = f"http://127.0.0.1:{free_port}"
    async with daemon(tmp_path, free_port) as running, aiohttp.ClientSession() as session:
        async with session.post(f"{base}/ping/{TOKEN}", data=b"x" * 500_000) as response:
            assert response.status == 200
        assert running.store is not None
        assert running.store.pings("backup")[0].body == "x" * MAX_BODY
