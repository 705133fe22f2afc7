"""The API served by a real `prober run` process: the feed, metrics and page show what the daemon
measured, and a result pushed to ingest by another location goes through the daemon like its own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from daemon_helpers import Target, start_daemon, stop_daemon
from prometheus_client.parser import text_string_to_metric_families

from prober.results import Result


@pytest.mark.slow
async def test_prober_run_serves_the_feed_metrics_page_and_accepts_ingest(free_port: int, tmp_path: Path) -> None:
    target = await Target().start()
    port = free_port
    checks = tmp_path / "checks.yaml"
    checks.write_text(
        f"""
ingest:
  tokens: {{eu: "eu-token-for-the-test-1"}}
checks:
  - {{name: api, type: http, group: API, url: "{target.url}", schedule: every 1s, locations: [default, eu]}}
"""
    )
    base = f"http://127.0.0.1:{port}"
    proc = await start_daemon(
        str(checks), "--db", str(tmp_path / "prober.db"), "--listen", f"127.0.0.1:{port}", cwd=tmp_path
    )
    try:
        async with aiohttp.ClientSession() as session:
            feed: dict = {}

            async def api_up() -> bool:
                nonlocal feed
                try:
                    async with session.get(base + "/api/v1/status") as response:
                        feed = await response.json() if response.status == 200 else {}
                except aiohttp.ClientError:
                    return False
                locations = feed.get("checks", [{}])[0].get("locations", []) if feed else []
                return any(item["status"] == "up" for item in locations)

            for _ in range(150):  # the daemon starts, probes, commits; the feed then shows it up
                if await api_up():
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"the feed never showed the check up: {feed}")
            assert feed["checks"][0]["name"] == "api" and feed["groups"][0]["name"] == "API"

            pushed = Result(
                check="api",
                type="http",
                location="eu",
                started_at=datetime.now(UTC),
                duration_ms=12.0,
                status="up",
                metrics={"status": 200, "latency": 0.011},
            )
            async with session.post(
                base + "/api/v1/ingest",
                json={"results": [pushed.to_json()]},
                headers={"Authorization": "Bearer eu-token-for-the-test-1"},
            ) as response:
                assert response.status == 200, await response.text()
                assert await response.json() == {"accepted": 1, "duplicates": 0}

            async with session.get(base + "/metrics") as response:
                families = {f.name: f for f in text_string_to_metric_families(await response.text())}
            locations = {s.labels["location"] for s in families["probe_success"].samples}
            assert locations == {"default", "eu"}
            assert any(s.labels.get("check") == "api" for s in families["prober_schedule_lag_seconds"].samples)

            async with session.get(base + "/") as response:
                assert response.status == 200 and "<title>" in await response.text()
            async with session.get(base + "/healthz") as response:
                health = await response.json()
                assert health["status"] == "ok" and "scheduler" in health
    finally:
        code, output = await stop_daemon(proc)
        await target.stop()
    assert code == 0, output
