"""`prober demo` end to end, in-process: the sample targets come up on loopback and the daemon judges them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from daemon_helpers import query, wait_until

from prober.demo.run import DemoTargets, Outages, print_notification, run_demo


@pytest.mark.slow
async def test_the_demo_checks_its_own_targets_serves_the_status_page_and_shows_an_incident_open_and_resolve(
    free_port: int, tmp_path: Path
) -> None:
    """One demo run for both halves (the outage only touches orders-api, which the first half does not read).

    orders-api fails for 12 s from 1 s after its first check: the runs 5 s and 10 s in are down and open an
    incident, two up runs resolve it, and the demo's own webhook receiver gets both messages from Apprise and
    shows them."""
    db = tmp_path / "demo.db"
    listen = f"127.0.0.1:{free_port}"
    ready, stopping = asyncio.Event(), asyncio.Event()
    shown: list[dict[str, Any]] = []
    found: list[DemoTargets] = []
    task = asyncio.create_task(
        run_demo(
            db,
            listen,
            ready=ready,
            stopping=stopping,
            outages=Outages(first=1, every=600, length=12),
            show=shown.append,
            started=found.append,
        )
    )
    try:
        await asyncio.wait_for(ready.wait(), 20)
        # The demo checks its own targets and serves the status page.
        statuses = lambda: dict(query(db, 'select "check", status from current_state'))  # noqa: E731
        named = {"shop-landing", "api-readiness", "search-api", "api-certificate", "live-stream", "chat-websocket"}
        named |= {"live-stream-flv", "live-stream-dash", "cache-port", "shop-dns"}
        await wait_until(lambda: named | {"nightly-export"} <= set(statuses()), 40, interval=0.2)
        current = statuses()
        assert current["shop-landing"] == "up"
        assert current["api-readiness"] == "up"
        assert current["search-api"] == "degraded"  # 350 ms answers against a 250 ms warning
        assert current["api-certificate"] == "degraded"  # 45 days left against a 60-day warning
        assert current["live-stream"] == "up"
        assert current["chat-websocket"] == "up"
        assert current["cache-port"] == "up"  # PING answered +PONG
        assert current["shop-dns"] == "up"  # shop.demo.test A 127.0.0.1, authoritative
        assert current["live-stream-dash"] == "up"
        assert current["live-stream-flv"] == "up"
        flv = json.loads(query(db, "select metrics from results where \"check\" = 'live-stream-flv'")[0][0])
        assert flv["codec"] == "h264" and flv["audio_codec"] == "aac" and (flv["width"], flv["height"]) == (320, 180)
        assert flv["has_video"] is True and flv["frozen"] is False and flv["black_ratio"] < 0.5
        assert flv["has_audio"] is True and flv["audio_silent"] is False
        assert flv["timestamp_rate"] > 0.9 and flv["first_keyframe"] < 1
        await wait_until(lambda: len(query(db, "select id from pings")) >= 2, 20, interval=0.2)  # the demo job
        assert statuses()["nightly-export"] == "up"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{listen}/api/v1/status") as response:
                assert response.status == 200
                feed = await response.json()
            async with session.get(f"http://{listen}/") as response:
                assert response.status == 200
                assert "<html" in (await response.text()).lower()
        assert {check["name"] for check in feed["checks"]} >= set(current)
        assert feed["title"] == "prober demo"  # from the demo's status_page key
        # The incident opens and resolves, and the webhook messages are shown.
        await wait_until(lambda: len(shown) >= 2, 60, interval=0.2)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{listen}/api/v1/status") as response:
                feed = await response.json()
            async with session.get(f"http://{listen}/api/v1/checks/orders-api") as response:
                page = await response.json()
    finally:
        stopping.set()
        await asyncio.wait_for(task, 20)
    down, resolved = shown[:2]
    assert down["type"] == "failure" and "orders-api" in down["title"] and down["title"].startswith("DOWN")
    assert resolved["type"] == "success" and resolved["title"].startswith("RESOLVED")
    assert "503" in down["message"]
    assert found[0].notifications == shown
    incidents = [item for item in feed["incidents"] if item["check"] == "orders-api"]
    assert incidents and incidents[0]["open"] is False and incidents[0]["downtime_seconds"] > 0
    assert page["incidents"][0]["id"] == incidents[0]["id"]
    assert any("503" in (item["error"] or "") for item in page["failures"])
    assert feed["announcements"][0]["title"] == "Welcome to the prober demo"
    assert feed["maintenance"][0]["name"] == "weekly-deploy"


def test_a_notification_is_printed_as_one_readable_block(capsys: pytest.CaptureFixture[str]) -> None:
    print_notification({"type": "failure", "title": "DOWN: orders-api", "message": "HTTP 503\nsince 12:00"})
    out = capsys.readouterr().out
    assert ">>> webhook received a FAILURE notification: DOWN: orders-api" in out
    assert "    HTTP 503\n    since 12:00" in out


async def test_the_demo_job_pings_its_heartbeat_and_skips_some_rounds() -> None:
    """The demo's cron-like job: a start and an end (exit code 0, a log line) each round, nothing in the last
    `skipped` rounds of every `rounds`, so the demo's heartbeat goes late now and then."""
    from aiohttp import web

    from prober.demo.run import demo_job

    seen: list[tuple[float, str, str]] = []

    async def ping(request: web.Request) -> web.Response:
        seen.append((asyncio.get_running_loop().time(), request.match_info["action"], await request.text()))
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_post("/ping/t/{action}", ping)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    job = asyncio.create_task(demo_job(f"http://127.0.0.1:{port}/ping/t", every=0.3, rounds=4, skipped=2, first=0))
    try:
        await wait_until(lambda: len(seen) >= 6, 10, interval=0.05)
    finally:
        job.cancel()
        await runner.cleanup()
    actions = [action for _, action, _ in seen[:6]]
    assert actions == ["start", "0", "start", "0", "start", "0"]
    assert seen[1][2].startswith("exported ")
    gaps = [later[0] - earlier[0] for earlier, later in zip(seen[1:5:2], seen[2:6:2], strict=True)]
    assert gaps[0] < 0.6 < 0.8 < gaps[1]  # round 1 follows round 0; rounds 2 and 3 are skipped
