"""The status feed /api/v1/status: its schema, statuses, uptime and latency numbers, caching, CORS."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from api_helpers import NOW, FakeDaemon, fake_daemon, history, result, serve, write_config
from fake_clock import FakeClock
from store_seed import open_incident, resolve_incident

from prober.api import SCHEMA_PATH
from prober.api.app import API_KEY
from prober.store import Store
from prober.store.rollups import hour_floor

sys.path.insert(0, str(Path(__file__).parent / "bench"))
from gen_feed_db import generate_async

CONFIG = """
version: 1
maintenance:
  - name: always
    schedule: "every 1m"
    duration: 2m
    checks: ["db-*"]
checks:
  - {name: api-health, type: http, group: api, url: "https://api.example.com/health", description: Public API}
  - name: api-login
    type: http
    group: api
    url: https://api.example.com/login
    locations: [eu, us, ap]
    alert: {quorum: 2}
  - {name: web-home, type: browser, group: web, url: "https://www.example.com/"}
  - {name: db-primary, type: tls, host: db.example.com, port: 5432}
  - {name: never-ran, type: http, url: "https://new.example.com/"}
"""


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def sample_results() -> list:
    return [
        *history("api-health", "uuuuudduuu"),
        *history("api-login", "uuuu", location="eu"),
        *history("api-login", "uuud", location="us"),
        *history("api-login", "uuuu", location="ap"),
        *history("web-home", "uuug", type="browser"),
        *history("db-primary", "uudd", type="tls", metrics={"days_remaining": 30.0}),
    ]


async def test_feed_matches_the_shipped_json_schema_and_shows_every_configured_check(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, sample_results()) as daemon:
        incident = await open_incident(
            daemon.store, "api-health", ["default"], "HTTP status 503", NOW - timedelta(hours=1)
        )
        await resolve_incident(daemon.store, incident, NOW - timedelta(minutes=40))
        await open_incident(daemon.store, "db-primary", ["default"], "certificate expired", NOW - timedelta(minutes=5))
        async with serve(daemon) as client:
            response = await client.get("/api/v1/status")
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("application/json")
            feed = await response.json()
    validator().validate(feed)
    assert [check["name"] for check in feed["checks"]] == [
        "api-health",
        "api-login",
        "web-home",
        "db-primary",
        "never-ran",
    ]
    assert [group["name"] for group in feed["groups"]] == ["api", "web", None]
    assert feed["incidents"][0]["check"] == "db-primary" and feed["incidents"][0]["open"] is True
    assert feed["incidents"][1]["open"] is False and feed["incidents"][1]["downtime_seconds"] == 1200
    checks = {check["name"]: check for check in feed["checks"]}
    assert checks["db-primary"]["incident"]["error"] == "certificate expired"
    assert checks["api-health"]["target"] == "https://api.example.com/health"
    assert checks["db-primary"]["target"] == "db.example.com:5432"


async def test_check_status_is_down_only_when_quorum_locations_are_down(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, sample_results()) as daemon, serve(daemon, cache_ttl=0) as client:
        checks = {check["name"]: check for check in (await (await client.get("/api/v1/status")).json())["checks"]}
        assert checks["api-login"]["status"] == "degraded"  # 1 of 3 down, quorum 2
        assert [loc["status"] for loc in checks["api-login"]["locations"]] == ["up", "down", "up"]
        await daemon.store.write(result("api-login", "down", location="eu", at=NOW + timedelta(seconds=1)))
        checks = {check["name"]: check for check in (await (await client.get("/api/v1/status")).json())["checks"]}
        assert checks["api-login"]["status"] == "down"
        assert checks["api-health"]["status"] == "up"
        assert checks["web-home"]["status"] == "degraded"


async def test_maintenance_and_unknown_checks_and_the_overall_status(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, sample_results()) as daemon, serve(daemon) as client:
        feed = await (await client.get("/api/v1/status")).json()
    checks = {check["name"]: check for check in feed["checks"]}
    assert checks["db-primary"]["status"] == "maintenance"
    assert checks["db-primary"]["last_status"] == "down"
    assert checks["db-primary"]["maintenance"]["name"] == "always"
    assert checks["never-ran"]["status"] == "unknown" and checks["never-ran"]["last_status"] is None
    assert checks["never-ran"]["locations"] == [
        {
            "location": "default",
            "status": "unknown",
            "started_at": None,
            "duration_ms": None,
            "error": None,
            "since": None,
            "consecutive_down": 0,
        }
    ]
    assert checks["never-ran"]["uptime"] == {"24h": None, "7d": None, "30d": None, "90d": None}
    assert feed["status"] == "degraded"  # api-login and web-home; db-primary is in maintenance
    assert feed["summary"] == {"up": 1, "degraded": 2, "down": 0, "maintenance": 1, "unknown": 1, "total": 5}
    assert feed["maintenance"][0]["active"] is True


async def test_uptime_and_latency_match_a_straightforward_computation_from_raw_results(tmp_path: Path) -> None:
    made = await generate_async(tmp_path / "gen.db", checks=6, days=9, per_hour=3, now=NOW, seed=7)
    config = write_config(tmp_path, made.config.read_text())
    async with Store(made.db) as store:
        async with serve(FakeDaemon(store, config)) as client:
            feed = await (await client.get("/api/v1/status")).json()
        validator().validate(feed)
        for check in feed["checks"]:
            raw = store.results(check["name"], limit=100_000)
            assert raw, check["name"]
            for window, days in (("24h", 1), ("7d", 7), ("30d", 30), ("90d", 90)):
                start = hour_floor(NOW - timedelta(days=days))
                counted = [item for item in raw if start <= item.started_at <= NOW]
                expected = 100 * sum(item.status != "down" for item in counted) / len(counted)
                assert check["uptime"][window] == pytest.approx(expected, abs=1e-4), (check["name"], window)
            latencies = sorted(
                item.metrics.get("latency", item.duration_ms / 1000)
                for item in raw
                if hour_floor(NOW - timedelta(days=1)) <= item.started_at
            )
            p50 = latencies[len(latencies) // 2]
            assert check["latency"]["p50"] == pytest.approx(p50, rel=0.3), check["name"]


async def test_daily_history_gives_each_days_uptime_oldest_first(tmp_path: Path) -> None:
    day = NOW.replace(hour=6, minute=0)
    results = [
        *history("api-health", "uuuu", end=day),  # today: 100 %
        *history("api-health", "uuud", end=day - timedelta(days=1)),  # yesterday: 75 %
        *history("api-health", "dd", end=day - timedelta(days=3)),  # 0 %
    ]
    async with fake_daemon(tmp_path, CONFIG, results) as daemon, serve(daemon) as client:
        response = await client.get("/api/v1/history?days=5")
        data = await response.json()
        assert (await client.get("/api/v1/history?days=500")).status == 400
    assert data["days"] == [(NOW - timedelta(days=offset)).date().isoformat() for offset in range(4, -1, -1)]
    assert data["checks"]["api-health"] == [None, 0.0, None, 75.0, 100.0]
    assert data["checks"]["never-ran"] == [None] * 5


async def test_a_new_result_shows_in_the_feed_after_at_most_one_second(tmp_path: Path) -> None:
    ages = FakeClock()
    async with fake_daemon(tmp_path, CONFIG, sample_results()) as daemon, serve(daemon, cache_clock=ages) as client:
        first = await (await client.get("/api/v1/status")).json()
        await daemon.store.write(result("api-health", "down", at=NOW + timedelta(seconds=5)))
        ages.advance(0.99)
        cached = await (await client.get("/api/v1/status")).json()
        assert cached == first  # inside the second: the same answer, not recomputed
        ages.advance(0.02)
        fresh = await (await client.get("/api/v1/status")).json()
    health = {check["name"]: check for check in fresh["checks"]}["api-health"]
    assert health["status"] == "down"
    assert health["uptime"]["24h"] == pytest.approx(100 * 8 / 11, abs=1e-3)


async def test_concurrent_requests_share_one_computation(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, sample_results()) as daemon, serve(daemon) as client:
        bodies = await asyncio.gather(*(client.get("/api/v1/status") for _ in range(20)))
        texts = {await response.text() for response in bodies}
        app = client.app
        assert app is not None and app[API_KEY].feed.builds == 1
    assert len(texts) == 1


async def test_read_endpoints_allow_any_origin_and_ingest_does_not(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, sample_results()) as daemon, serve(daemon) as client:
        for path in (
            "/api/v1/status",
            "/api/v1/incidents",
            "/api/v2/summary.json",
            "/badge/api-health.svg",
            "/api/v1/checks/api-health/results",
            "/api/v1/history",
        ):
            response = await client.get(path, headers={"Origin": "https://elsewhere.example"})
            assert response.status == 200, path
            assert response.headers["Access-Control-Allow-Origin"] == "*", path
            assert "max-age=1" in response.headers["Cache-Control"], path
        preflight = await client.options("/api/v1/status", headers={"Origin": "https://x.example"})
        assert preflight.status == 204 and preflight.headers["Access-Control-Allow-Origin"] == "*"
        ingest = await client.post("/api/v1/ingest", json={"results": []}, headers={"Origin": "https://x.example"})
        assert "Access-Control-Allow-Origin" not in ingest.headers


@pytest.mark.slow
async def test_feed_for_200_checks_answers_uncached_in_well_under_50_ms(tmp_path: Path) -> None:
    """The full-size figure (1,000 checks × 30 days) is tests/bench/bench_feed.py's; this guards the order
    of magnitude on a small database. The median, because other processes share the machine."""
    made = await generate_async(tmp_path / "gen.db", checks=200, days=2, per_hour=1, now=NOW)
    config = write_config(tmp_path, made.config.read_text())
    async with Store(made.db) as store, serve(FakeDaemon(store, config), cache_ttl=0) as client:
        await client.get("/api/v1/status")  # first build computes every check's numbers
        timings = []
        for _ in range(30):
            began = time.perf_counter()
            response = await client.get("/api/v1/status")
            await response.read()
            timings.append(time.perf_counter() - began)
    timings.sort()
    assert timings[15] < 0.05, f"median {timings[15] * 1000:.1f} ms"
