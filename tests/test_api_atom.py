"""`/feed.atom` read by feedparser (what feed readers use) from a real daemon: an incident opens and resolves
under one entry id, an announcement is an entry, and the status page links the feed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import feedparser  # type: ignore[import-untyped]
import pytest
from daemon_helpers import Target, wait_until

from prober.api.atom import atom_feed, incident_entry_id
from prober.daemon.service import Daemon, DaemonOptions


async def _get(url: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.read()


def _parsed(body: bytes) -> Any:
    feed = feedparser.parse(body)
    assert not feed.bozo, f"feedparser found the feed malformed: {feed.get('bozo_exception')}"
    return feed


@pytest.mark.slow
async def test_an_incident_is_one_entry_updated_when_it_resolves_beside_an_announcement(
    tmp_path: Path, free_port: int
) -> None:
    target = await Target().start()
    config = tmp_path / "checks.yaml"
    document = {
        "status_page": {"title": "Acme status"},
        "announcements": [{"title": "Database upgrade <Sunday>", "message": "Expect a minute of 503s."}],
        "checks": [
            {"name": "api", "type": "http", "url": target.url, "schedule": "every 200ms", "alert": {"after": 1}}
        ],
    }
    config.write_text(json.dumps(document))
    daemon = Daemon(DaemonOptions(paths=[str(config)], db=tmp_path / "p.db", listen=f"127.0.0.1:{free_port}"))
    task = asyncio.create_task(daemon.run())
    base = f"http://127.0.0.1:{free_port}"
    try:
        await wait_until(lambda: hasattr(daemon, "scheduler"), 10)  # the API listens before checks start
        page = await _get(f"{base}/")
        assert b'<link rel="alternate" type="application/atom+xml"' in page[2] and b'href="feed.atom"' in page[2]
        await target.stop()
        assert daemon.store is not None
        store = daemon.store
        await wait_until(lambda: bool(store.incidents(limit=1, open_only=True)), 10)
        await asyncio.sleep(1.1)  # the response cache
        status, content_type, body = await _get(f"{base}/feed.atom")
        assert status == 200 and content_type.startswith("application/atom+xml")
        opened = _parsed(body)
        assert opened.feed.title == "Acme status"
        incidents = [entry for entry in opened.entries if entry.title.endswith(": api")]
        assert [entry.title for entry in incidents] == ["Down: api"]
        entry_id = incidents[0].id
        assert entry_id == incident_entry_id(base, store.incidents(limit=1)[0]["id"])
        assert "connection refused" in incidents[0].summary
        announcement = [entry for entry in opened.entries if entry.title == "Database upgrade <Sunday>"]
        assert announcement and announcement[0].summary == "Expect a minute of 503s."

        target = await Target(target.port).start()
        await wait_until(lambda: not store.incidents(limit=1, open_only=True), 10)
        await asyncio.sleep(1.1)
        resolved = _parsed((await _get(f"{base}/feed.atom"))[2])
        again = [entry for entry in resolved.entries if entry.id == entry_id]
        assert len(again) == 1, "the resolved incident must keep its entry id (one item in a reader)"
        assert again[0].title == "Resolved: api"
        assert again[0].updated_parsed > incidents[0].updated_parsed
        assert "Resolved at" in again[0].summary
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 15)
        await target.stop()


def test_text_that_looks_like_markup_stays_text() -> None:
    incident = {
        "id": 7, "check": "api", "started_at": "2024-05-01T10:00:00.000Z", "resolved_at": None,
        "locations": [], "error": "</content><entry>injected", "downtime_seconds": None,
    }  # fmt: skip
    body = atom_feed("S & Co", "http://x", [incident], [], "2024-05-01T10:00:01.000Z")
    feed = _parsed(body)
    assert feed.feed.title == "S & Co"
    assert len(feed.entries) == 1 and "</content><entry>injected" in feed.entries[0].summary
    assert feed.entries[0].id == incident_entry_id("http://x/", 7)
