"""Announcements (top-level `announcements:` in the check files): validation, which are shown when, and how
they reach the feed (/api/v1/status, checked against the shipped JSON Schema) and the Statuspage summary."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import jsonschema
import pytest
from api_helpers import NOW, fake_daemon, history, serve, write_config
from daemon_helpers import Target
from store_seed import open_incident

from prober.api import SCHEMA_PATH
from prober.config.announcements import UPCOMING, shown_announcements
from prober.config.loader import ConfigError, load_config
from prober.config.models import Announcement
from prober.daemon.service import Daemon, DaemonOptions

CHECKS = """
checks:
  - {name: api-health, type: http, url: "https://api.example.com/health"}
  - {name: api-search, type: http, url: "https://api.example.com/search"}
  - {name: web, type: http, url: "https://www.example.com/"}
"""


def load(tmp_path: Path, announcements: str) -> list[Announcement]:
    path = tmp_path / "checks.yaml"
    path.write_text("version: 1\nannouncements:\n" + announcements + CHECKS, encoding="utf-8")
    return load_config([path]).announcements


def problems(tmp_path: Path, announcements: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, announcements)
    return [str(problem) for problem in caught.value.problems]


def test_an_announcement_reads_title_message_severity_globs_and_its_window_in_utc(tmp_path: Path) -> None:
    [first, second] = load(
        tmp_path,
        "  - title: Database upgrade\n"
        "    message: Writes pause for a minute.\n"
        "    severity: maintenance\n"
        "    checks: ['api-*']\n"
        "    from: 2026-11-29T03:00:00Z\n"  # a YAML timestamp
        "    until: '2026-11-29T05:30:00+02:00'\n"  # text with an offset
        "  - {title: Hello, from: '2026-11-29 03:00'}\n",  # no zone: UTC
    )
    assert first.title == "Database upgrade" and first.severity == "maintenance" and first.checks == ["api-*"]
    assert first.starts == datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    assert first.until == datetime(2026, 11, 29, 3, 30, tzinfo=UTC)
    assert second.severity == "info" and second.message == "" and second.checks == [] and second.until is None
    assert second.starts == datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def test_a_bad_announcement_is_a_validation_error_naming_the_field(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "  - {title: A, severity: critical}\n"
        "  - {title: B, frm: '2026-11-29T03:00:00Z'}\n"
        "  - {title: C, from: '2026-11-29T03:00:00Z', until: '2026-11-29T02:00:00Z'}\n"
        "  - {title: D, from: next sunday}\n"
        "  - {message: no title}\n",
    )
    assert len(found) == 5, found
    assert "field 'announcements[0].severity': Input should be 'info', 'maintenance' or 'outage'" in found[0]
    assert "field 'announcements[1].frm': unknown key 'frm'; valid keys: checks, from, message" in found[1]
    assert "field 'announcements[2].until': 'until' must be later than 'from'" in found[2]
    assert "field 'announcements[3].from': expected an ISO 8601 time like 2026-12-06T03:00:00Z" in found[3]
    assert "field 'announcements[4].title': required key is missing" in found[4]
    assert problems(tmp_path, "  {title: not a list}\n") == [
        f"{tmp_path / 'checks.yaml'}: field 'announcements': expected a list of announcements"
    ]


def test_shown_inside_the_window_and_maintenance_ones_ahead_of_time(tmp_path: Path) -> None:
    start, end = NOW + timedelta(hours=1), NOW + timedelta(hours=2)
    items = load(
        tmp_path,
        f"  - {{title: outage, severity: outage, from: '{start.isoformat()}', until: '{end.isoformat()}'}}\n"
        f"  - {{title: planned, severity: maintenance, checks: [api-*], from: '{start.isoformat()}',"
        f" until: '{end.isoformat()}'}}\n"
        f"  - {{title: far, severity: maintenance, from: '{(NOW + UPCOMING + timedelta(hours=3)).isoformat()}'}}\n"
        "  - {title: always}\n",
    )
    names = ["api-health", "api-search", "web"]

    def titles(at: datetime) -> list[tuple[str, bool]]:
        return [(item.announcement.title, item.active) for item in shown_announcements(items, at, names)]

    assert titles(NOW) == [("always", True), ("planned", False)]  # the outage is not announced early
    assert titles(start) == [("outage", True), ("planned", True), ("always", True)]  # `from` is inclusive
    assert titles(end - timedelta(milliseconds=1)) == [("outage", True), ("planned", True), ("always", True)]
    assert titles(end) == [("always", True)]  # `until` is exclusive
    assert titles(NOW + timedelta(days=7, minutes=1)) == [("always", True), ("far", False)]
    planned = shown_announcements(items, start, names)[1]
    assert planned.affected == ("api-health", "api-search")
    assert shown_announcements(items, start, names)[0].affected == ()  # no globs: about the whole page
    with pytest.raises(ValueError, match="timezone"):
        shown_announcements(items, NOW.replace(tzinfo=None), names)


CONFIG = (
    """
version: 1
maintenance:
  - {name: nightly, schedule: "0 1 * * *", duration: 20m, checks: ["api-*"]}
announcements:
  - {title: Payments degraded, message: "Card payments are slow.", severity: outage, checks: ["api-*"]}
  - {title: Upgrade, severity: maintenance, from: "2026-11-24T03:00:00Z", until: "2026-11-24T03:30:00Z"}
"""
    + CHECKS
)


async def test_the_feed_lists_announcements_and_the_schema_covers_every_new_field(tmp_path: Path) -> None:
    results = [*history("api-health", "uud"), *history("api-search", "uug"), *history("web", "uuu")]
    results[-4].error = "warning: latency was 353ms, expected < 300ms"
    async with fake_daemon(tmp_path, CONFIG, results) as daemon, serve(daemon) as client:
        await open_incident(daemon.store, "api-health", ["default"], "HTTP status 503, expected 2xx", NOW)
        feed = await (await client.get("/api/v1/status")).json()
        summary = await (await client.get("/api/v2/summary.json")).json()
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(feed)
    payments, upgrade = feed["announcements"]
    assert payments == {
        "id": payments["id"],
        "title": "Payments degraded",
        "message": "Card payments are slow.",
        "severity": "outage",
        "checks": ["api-*"],
        "affected": ["api-health", "api-search"],
        "from": None,
        "until": None,
        "active": True,
    }
    assert upgrade["active"] is False and upgrade["from"] == "2026-11-24T03:00:00.000Z"
    checks = {check["name"]: check for check in feed["checks"]}
    assert checks["api-health"]["reason"] == {
        "status": "down",
        "text": "HTTP status 503, expected 2xx",
        "location": "default",
        "since": "2026-11-23T12:30:00.000Z",
    }
    assert checks["api-search"]["reason"]["text"] == "warning: latency was 353ms, expected < 300ms"
    assert checks["web"]["reason"] is None and checks["web"]["page"] == "checks/web"
    assert checks["api-health"]["scheduled_maintenance"] == {
        "name": "nightly",
        "starts_at": "2026-11-24T01:00:00.000Z",
        "ends_at": "2026-11-24T01:20:00.000Z",
    }
    assert checks["web"]["scheduled_maintenance"] is None
    assert feed["incidents"][0]["duration_seconds"] == 0
    incidents = {item["name"]: item for item in summary["incidents"]}
    assert incidents["Payments degraded"]["impact"] == "major"
    assert incidents["Payments degraded"]["incident_updates"][0]["body"] == "Card payments are slow."
    assert [item["name"] for item in incidents["Payments degraded"]["components"]] == ["api-health", "api-search"]
    assert "Upgrade" not in incidents
    scheduled = {item["name"]: item for item in summary["scheduled_maintenances"]}
    assert scheduled["Upgrade"]["scheduled_for"] == "2026-11-24T03:00:00.000Z"
    assert scheduled["Upgrade"]["status"] == "scheduled"


async def test_a_reloaded_configuration_changes_the_announcements_at_once(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, history("web", "u")) as daemon, serve(daemon, cache_ttl=0) as client:
        before = await (await client.get("/api/v1/status")).json()
        daemon.config = write_config(tmp_path, CONFIG.replace("Payments degraded", "Payments restored"))
        after = await (await client.get("/api/v1/status")).json()
        daemon.config = write_config(tmp_path, "version: 1\n" + CHECKS)
        none = await (await client.get("/api/v1/status")).json()
    assert before["announcements"][0]["title"] == "Payments degraded"
    assert after["announcements"][0]["title"] == "Payments restored"
    assert none["announcements"] == []


async def test_the_daemon_shows_edited_announcements_after_reloading_its_files(tmp_path: Path, free_port: int) -> None:
    target = await Target().start()
    port = free_port
    checks = tmp_path / "checks.yaml"

    def write(title: str) -> None:
        checks.write_text(
            f"version: 1\nannouncements:\n  - {{title: {title}}}\n"
            f"checks:\n  - {{name: api, type: http, url: '{target.url}', schedule: every 1s}}\n"
        )

    async def titles(session: aiohttp.ClientSession) -> list[str]:
        async with session.get(f"http://127.0.0.1:{port}/api/v1/status") as response:
            return [item["title"] for item in (await response.json())["announcements"]]

    write("Before")
    daemon = Daemon(DaemonOptions(paths=[str(checks)], db=tmp_path / "prober.db", listen=f"127.0.0.1:{port}",
                                  watch_interval=0.1))  # fmt: skip
    task = asyncio.create_task(daemon.run())
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    if await titles(session) == ["Before"]:
                        break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            assert await titles(session) == ["Before"]
            write("After")
            for _ in range(100):
                if await titles(session) == ["After"]:
                    break
                await asyncio.sleep(0.1)
            assert await titles(session) == ["After"]
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 15)
        await target.stop()
