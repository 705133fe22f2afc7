"""Raw results, incidents and health endpoints, and how the per-check numbers are kept fresh."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from api_helpers import NOW, fake_daemon, history, result, serve
from store_seed import open_incident, resolve_incident

from prober.api.summaries import SummaryCache

CONFIG = """
version: 1
checks:
  - {name: api, type: http, url: "https://api.example.com/"}
  - {name: web, type: http, url: "https://www.example.com/", locations: [eu, us]}
"""


async def test_results_are_newest_first_and_follow_since_limit_and_location(tmp_path: Path) -> None:
    results = [
        *history("api", "uuduu", step=timedelta(minutes=20)),
        *history("web", "ud", location="eu"),
        *history("web", "uu", location="us"),
    ]
    async with fake_daemon(tmp_path, CONFIG, results) as daemon, serve(daemon) as client:
        recent = await (await client.get("/api/v1/checks/api/results?since=1h")).json()
        assert [item["started_at"] for item in recent["results"]] == [
            "2026-11-23T12:30:00.000Z",
            "2026-11-23T12:10:00.000Z",
            "2026-11-23T11:50:00.000Z",
            "2026-11-23T11:30:00.000Z",  # `since` is inclusive
        ]
        assert recent["results"][2]["status"] == "down" and recent["results"][2]["error"]
        assert recent["results"][0]["assertions"][0]["metric"] == "status"
        everything = await (await client.get("/api/v1/checks/api/results?since=all&limit=2")).json()
        assert len(everything["results"]) == 2
        iso = await (await client.get("/api/v1/checks/api/results?since=2026-11-23T11:20:00Z")).json()
        assert len(iso["results"]) == 4
        eu = await (await client.get("/api/v1/checks/web/results?location=eu")).json()
        assert {item["location"] for item in eu["results"]} == {"eu"}
        assert (await client.get("/api/v1/checks/nope/results")).status == 404
        assert (await client.get("/api/v1/checks/api/results?since=yesterday")).status == 400
        bad_limit = await client.get("/api/v1/checks/api/results?limit=0", headers={"Origin": "https://x.example"})
        assert bad_limit.status == 400 and bad_limit.headers["Access-Control-Allow-Origin"] == "*"
        assert "limit must be between 1 and 1000" in (await bad_limit.json())["error"]
        assert (await client.get("/api/v1/checks/api/results?limit=many")).status == 400


async def test_incidents_are_newest_first_with_filters(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG) as daemon:
        old = await open_incident(daemon.store, "api", ["default"], "timed out after 10s", NOW - timedelta(days=2))
        await resolve_incident(daemon.store, old, NOW - timedelta(days=2) + timedelta(minutes=5))
        await open_incident(daemon.store, "web", ["eu", "us"], "connection refused", NOW - timedelta(hours=1))
        async with serve(daemon) as client:
            everything = (await (await client.get("/api/v1/incidents")).json())["incidents"]
            open_only = (await (await client.get("/api/v1/incidents?open=true")).json())["incidents"]
            api_only = (await (await client.get("/api/v1/incidents?check=api")).json())["incidents"]
            assert (await client.get("/api/v1/incidents?open=maybe")).status == 400
    assert [item["check"] for item in everything] == ["web", "api"]
    assert everything[1]["downtime_seconds"] == 300 and everything[1]["open"] is False
    assert [item["check"] for item in open_only] == ["web"] and open_only[0]["locations"] == ["eu", "us"]
    assert [item["id"] for item in api_only] == [old.id]


async def test_healthz_reports_liveness_and_503_without_a_database(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, history("api", "u")) as daemon, serve(daemon) as client:
        response = await client.get("/healthz")
        document = await response.json()
        assert response.status == 200 and document["status"] == "ok"
        assert document["checks"] == 2 and document["location"] == "default"
        store, daemon.store = daemon.store, None  # type: ignore[assignment]
        try:
            assert (await client.get("/healthz")).status == 503
            feed = await client.get("/api/v1/status")
            assert feed.status == 503 and "database" in (await feed.json())["error"]
        finally:
            daemon.store = store


async def test_numbers_of_checks_with_new_results_are_recomputed_at_once_others_within_the_budget(
    tmp_path: Path,
) -> None:
    async with fake_daemon(tmp_path, CONFIG, history("api", "uu")) as daemon:
        store = daemon.store
        cache = SummaryCache(budget=1, max_age=600)
        markers = {"api": (("default", "a"),), "web": (), "other": ()}
        first = cache.refresh(store, markers, NOW)
        assert cache.recomputed == 3 and first["api"].uptime["24h"] == 100.0
        assert cache.refresh(store, markers, NOW) == first and cache.recomputed == 0
        await store.write(result("api", "down", at=NOW + timedelta(seconds=1)))
        changed = cache.refresh(store, {**markers, "api": (("default", "b"),)}, NOW)
        assert cache.recomputed == 1 and changed["api"].uptime["24h"] == pytest.approx(200 / 3, abs=1e-3)
        next_hour = NOW + timedelta(hours=1)
        later = {**markers, "api": (("default", "b"),)}
        counts = []
        for _ in range(4):
            cache.refresh(store, later, next_hour)
            counts.append(cache.recomputed)
        assert counts == [1, 1, 1, 0]  # three checks from the previous hour, one per refresh, then none
