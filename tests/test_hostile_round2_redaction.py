"""One rule decides what in a URL is secret, and every place that shows a URL follows it.

Before, the rule cut both ways: a descriptive path segment of 24+ characters (`main-stage-live-commerce`)
counted as a secret and then the whole URL did too (`the playlist **** is not a valid HLS playlist`),
while a random segment the runner masked in results was shown in clear in the API's `target`. Here each
realistic stream or API URL (words joined by `-`, `_`, `.`; dates; ids; UUIDs; tokens; JWTs) is rendered
in a result (a real hls check against a loopback server), a log line, a notification, the API's target
fields (`/api/v1/status`, `/api/v1/checks/NAME`, which the public pages render) and `/metrics`, and must
read the same, as expected, everywhere.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from api_helpers import NOW, fake_daemon, serve

from prober.alerts import Transition
from prober.config.loader import load_config
from prober.notify.message import format_message
from prober.redact import LOG_SECRETS, looks_random, redact_url
from prober.results import Result
from prober.scheduling.runner import Runner

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzdHJlYW0ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
UUID = "3f2b8c1e-9d4a-4b7e-8f1a-2c3d4e5f6a7b"

# (id, the URL's path and query as configured, as it must be shown, what must never be shown)
TABLE: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("words-dash", "/live/main-stage-live-commerce/index.m3u8", "/live/main-stage-live-commerce/index.m3u8", ()),
    ("words-underscore", "/hls/spring_gala_2026_main/playlist.m3u8", "/hls/spring_gala_2026_main/playlist.m3u8", ()),
    ("words-dot", "/vod/keynote.day-one.1080p.m3u8", "/vod/keynote.day-one.1080p.m3u8", ()),
    ("camel-words", "/cam/Camera01-Lobby-1080p60/chunklist.m3u8", "/cam/Camera01-Lobby-1080p60/chunklist.m3u8", ()),
    ("date", "/archive/2026-06-01/event_42/stream.m3u8", "/archive/2026-06-01/event_42/stream.m3u8", ()),
    ("numeric-id", "/api/v2/orders/1234567890123/status.m3u8", "/api/v2/orders/1234567890123/status.m3u8", ()),
    ("uuid", f"/v1/streams/{UUID}/master.m3u8", f"/v1/streams/{UUID}/master.m3u8", ()),
    (
        "hex-hash",
        "/assets/5f4dcc3b5aa765d61d8327deb882cf99/a.m3u8",
        "/assets/5f4dcc3b5aa765d61d8327deb882cf99/a.m3u8",
        (),
    ),
    ("short-id", "/v1/users/Abc12345xyz/feed.m3u8", "/v1/users/Abc12345xyz/feed.m3u8", ()),
    ("path-token", "/live/aZ3kP9qW2xL7mN4vB8cD/index.m3u8", "/live/****/index.m3u8", ("aZ3kP9qW2xL7mN4vB8cD",)),
    (
        "path-jwt",
        f"/play/{JWT}/index.m3u8",
        "/play/****/index.m3u8",
        (JWT, "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
    ),
    (
        "query-token",
        "/live/index.m3u8?token=abc123def456&quality=hd",
        "/live/index.m3u8?token=****&quality=hd",
        ("abc123def456",),
    ),
    (
        "akamai-hdnts",
        "/live/main-stage/index.m3u8?hdnts=exp=1700000000~acl=/*~hmac=5f4dcc3b5aa765d61d8327deb882cf99",
        "/live/main-stage/index.m3u8?hdnts=****",
        ("5f4dcc3b5aa765d61d8327deb882cf99",),
    ),
    (
        "random-query-value",
        "/live/index.m3u8?sid=Qm9vZ2llV29vZ2llMjAyNg3x&quality=hd",
        "/live/index.m3u8?sid=****&quality=hd",
        ("Qm9vZ2llV29vZ2llMjAyNg3x",),
    ),
]
PASSWORD = "Viewer-Pa55-word"


def _cases() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """The table, plus each descriptive row again behind a password (only the password is masked)."""
    with_password = [
        (f"{name}.password", path, path, (PASSWORD,)) for name, path, shown, _ in TABLE[:3] if path == shown
    ]
    return TABLE + with_password


CASES = _cases()


@pytest.fixture
async def not_a_playlist() -> AsyncIterator[int]:
    """A loopback server answering every path with an HTML page: every hls check fails quoting its URL."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def _url(port: int, name: str, path: str) -> str:
    userinfo = f"viewer:{PASSWORD}@" if name.endswith(".password") else ""
    return f"http://{userinfo}127.0.0.1:{port}{path}"


def _shown(port: int, name: str, shown: str) -> str:
    userinfo = "viewer:****@" if name.endswith(".password") else ""
    return f"http://{userinfo}127.0.0.1:{port}{shown}"


def _config(port: int) -> str:
    checks = "".join(
        f"  - {{name: {name}, type: hls, url: '{_url(port, name, path)}', timeout: 3s}}\n" for name, path, _, _ in CASES
    )
    return f"version: 1\nchecks:\n{checks}"


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


def test_the_rule_in_one_function() -> None:
    for name, path, shown, _ in CASES:
        assert redact_url(_url(80, name, path)) == _shown(80, name, shown), name
    assert not looks_random("main-stage-live-commerce") and not looks_random(UUID)
    assert looks_random("aZ3kP9qW2xL7mN4vB8cD") and looks_random(JWT)


async def test_every_place_a_url_is_shown_renders_it_by_the_one_rule(
    tmp_path: Path, not_a_playlist: int, caplog: pytest.LogCaptureFixture
) -> None:
    port = not_a_playlist
    (tmp_path / "checks.yaml").write_text(_config(port))
    config = load_config([tmp_path / "checks.yaml"])
    runner = Runner(artifacts_dir=tmp_path / "artifacts")
    results: dict[str, Result] = {}
    try:
        for spec in config.checks:
            results[spec.name] = await runner.run(spec)
    finally:
        await runner.resources.aclose()

    logger = logging.getLogger("prober.test-redaction")
    logger.addFilter(LOG_SECRETS)  # the daemon's handlers carry the same filter (prober.daemon.logs)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            for name, path, _, _ in CASES:
                logger.info("fetching %s failed", _url(port, name, path))
    finally:
        logger.removeFilter(LOG_SECRETS)
    logs = [record.getMessage() for record in caplog.records]

    stored = [dataclasses.replace(result, started_at=NOW - timedelta(seconds=5)) for result in results.values()]
    async with fake_daemon(tmp_path, _config(port), stored) as daemon, serve(daemon) as client:
        status = await (await client.get("/api/v1/status")).json()
        targets = {item["name"]: item.get("target") for item in _checks_of(status)}
        pages = {name: await (await client.get(f"/api/v1/checks/{name}")).json() for name, *_ in CASES}
        metrics = await (await client.get("/metrics")).text()

    for index, (name, path, shown, secrets) in enumerate(CASES):
        raw, expected = _url(port, name, path), _shown(port, name, shown)
        result = results[name]
        assert result.status == "down"
        assert result.error is not None and f"the playlist {expected} is not a valid HLS playlist" in result.error, (
            name,
            result.error,
        )
        assert logs[index] == f"fetching {expected} failed", (name, logs[index])
        transition = Transition("opened", name, "i1", ("default",), f"GET {raw}: 503", NOW, NOW)
        message = format_message(transition)
        assert f"GET {expected}: 503" in message.body, (name, message.body)
        assert targets[name] == expected, (name, targets[name])
        assert pages[name]["check"]["target"] == expected, (name, pages[name]["check"]["target"])
        page_texts = "\n".join(_texts(pages[name]))
        assert f"the playlist {expected} is not a valid HLS playlist" in page_texts, name
        everything = "\n".join([result.error, str(result.details), logs[index], message.body, page_texts, metrics])
        for secret in secrets:
            assert secret not in everything, (name, secret)
        if not secrets:  # nothing to hide: the URL is never masked, whole or in part
            assert "****" not in "\n".join([result.error, logs[index], message.body, targets[name] or ""]), name
    assert "****" not in metrics or all(secret not in metrics for *_, secrets in CASES for secret in secrets)


def _checks_of(status: dict[str, Any]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = status["checks"]
    return checks
