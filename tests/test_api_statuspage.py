"""/api/v2/summary.json and /api/v2/status.json in the Atlassian Statuspage public API format."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from api_helpers import NOW, fake_daemon, history, serve
from store_seed import open_incident

CONFIG = """
version: 1
maintenance:
  - {name: db-upgrade, schedule: "every 1m", duration: 2m, checks: ["db-*"]}
checks:
  - {name: api-health, type: http, group: API, url: "https://api.example.com/health"}
  - {name: api-search, type: http, group: API, url: "https://api.example.com/search"}
  - {name: api-login, type: http, group: API, url: "https://api.example.com/login", locations: [eu, us]}
  - {name: web, type: http, url: "https://www.example.com/"}
  - {name: db-main, type: tls, host: db.example.com}
  - {name: new-one, type: http, url: "https://new.example.com/"}
"""

COMPONENT_KEYS = {
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "position",
    "description",
    "showcase",
    "start_date",
    "group_id",
    "page_id",
    "group",
    "only_show_if_degraded",
}


def results() -> list:
    return [
        *history("api-health", "uuu"),
        *history("api-search", "uug"),
        *history("api-login", "udd", location="eu"),
        *history("api-login", "uuu", location="us"),
        *history("web", "ddd"),
        *history("db-main", "ddd", type="tls"),
    ]


async def test_summary_maps_checks_to_components_groups_incidents_and_maintenance(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, results()) as daemon:
        await open_incident(
            daemon.store, "web", ["default"], "HTTP status 503, expected 2xx", NOW - timedelta(minutes=20)
        )
        async with serve(daemon) as client:
            summary = await (await client.get("/api/v2/summary.json")).json()
            status = await (await client.get("/api/v2/status.json")).json()
    assert set(summary) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    assert summary["page"]["name"] == "Status" and summary["page"]["url"].startswith("http://127.0.0.1:")
    components = {item["name"]: item for item in summary["components"]}
    assert "new-one" not in components  # no result yet: Statuspage has no "unknown"
    assert components["api-health"]["status"] == "operational"
    assert components["api-search"]["status"] == "degraded_performance"
    assert components["api-login"]["status"] == "partial_outage"  # down in eu only (quorum 1)
    assert components["web"]["status"] == "major_outage"
    assert components["db-main"]["status"] == "under_maintenance"
    group = components["API"]
    assert group["group"] is True and group["status"] == "partial_outage"
    assert sorted(group["components"]) == sorted(
        components[name]["id"] for name in ("api-health", "api-search", "api-login")
    )
    assert components["api-health"]["group_id"] == group["id"] and components["web"]["group_id"] is None
    for item in summary["components"]:
        assert set(item) >= COMPONENT_KEYS
    [incident] = summary["incidents"]
    assert incident["name"] == "web is down" and incident["status"] == "investigating"
    assert incident["impact"] == "critical" and incident["components"][0]["name"] == "web"
    assert "HTTP status 503" in incident["incident_updates"][0]["body"]
    [maintenance] = summary["scheduled_maintenances"]
    assert maintenance["name"] == "db-upgrade" and maintenance["status"] == "in_progress"
    assert summary["status"] == {"indicator": "major", "description": "Partial System Outage"}
    assert status == {"page": summary["page"], "status": summary["status"]}


async def test_all_operational_reads_none_and_every_component_down_reads_critical(tmp_path: Path) -> None:
    config = """
    version: 1
    checks:
      - {name: a, type: http, url: "https://a.example.com/"}
      - {name: b, type: http, url: "https://b.example.com/"}
    """
    later = NOW + timedelta(minutes=1)
    async with (
        fake_daemon(tmp_path, config, [*history("a", "uu"), *history("b", "du")]) as daemon,
        serve(daemon, cache_ttl=0) as client,
    ):
        status = await (await client.get("/api/v2/status.json")).json()
        assert status["status"] == {"indicator": "none", "description": "All Systems Operational"}
        await daemon.store.write_many([*history("a", "d", end=later), *history("b", "d", end=later)])
        status = await (await client.get("/api/v2/status.json")).json()
    assert status["status"] == {"indicator": "critical", "description": "Major Service Outage"}
