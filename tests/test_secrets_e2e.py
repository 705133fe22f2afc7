"""Secrets stop at one wall, seen from outside: the real `prober check` and `prober run` (hub and agent)
with planted secrets in failing checks of every type. Nothing secret may appear on stdout or stderr, in the
JSON log, in the database file's bytes (WAL included), in a webhook payload, in a screenshot's file name
or in an agent's outbox."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from daemon_helpers import scalar, start_daemon, stop_daemon, wait_until
from test_secrets import (
    FILL_VALUE,
    HEADER_TOKEN,
    LOAD_MODES,
    PASSWORD,
    RUNTIME_MODES,
    SECRETS,
    checks_for,
    loopback_servers,
)
from webhook_receiver import WebhookReceiver
from ws_servers import refused_port

NOTIFIER_PASSWORD = "NotifPw88zzQ"
INGEST_TOKEN = "IngestTok66yyW"
ALL_SECRETS = (*SECRETS, NOTIFIER_PASSWORD, INGEST_TOKEN)
CHROMIUM = Path("/usr/bin/chromium")


def assert_clean(data: bytes | str, where: str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    for secret in ALL_SECRETS:
        assert secret.encode() not in raw, f"{where} leaks {secret!r}"


def browser_check(port: int) -> dict[str, Any]:
    return {
        "name": "browser-refused",
        "type": "browser",
        "url": f"http://admin:{PASSWORD}@127.0.0.1:{port}/login?token=abc",
        "headers": {"Authorization": f"Bearer {HEADER_TOKEN}"},
        "steps": [{"fill": "#password", "value": FILL_VALUE}],
        "screenshot": "always",
        "timeout": "20s",  # Chromium's start on a loaded 2-core machine must not eat the page (no screenshot)
    }


def matrix(servers: dict[str, str]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    for mode in RUNTIME_MODES:
        checks += checks_for(mode, servers[mode])
    return checks


def write(path: Path, checks: list[dict[str, Any]], **top: Any) -> Path:
    path.write_text(yaml.safe_dump({"checks": checks, **top}))
    return path


def db_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file())


@pytest.mark.slow
async def test_prober_check_prints_no_secret_on_stdout_or_stderr(tmp_path: Path) -> None:
    async with loopback_servers() as servers:
        config = write(tmp_path / "checks.yaml", matrix(servers))
        for extra in (["--json"], []):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "prober", "check", str(config), *extra, cwd=tmp_path,
                env={**os.environ, "COLUMNS": "300"},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 1, err.decode()
            assert_clean(out, f"stdout of check {extra}")
            assert_clean(err, f"stderr of check {extra}")


async def test_prober_validate_names_a_refused_url_without_its_secrets(tmp_path: Path) -> None:
    async with loopback_servers() as servers:
        checks = [check for mode in LOAD_MODES for check in checks_for(mode, servers[mode])]
        config = write(tmp_path / "checks.yaml", checks)
        for command in ("validate", "check"):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "prober", command, str(config), cwd=tmp_path,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 2, (out + err).decode()
            assert b"admin:****@" in out + err
            assert_clean(out, f"stdout of {command}")
            assert_clean(err, f"stderr of {command}")


@pytest.mark.slow
async def test_prober_run_keeps_secrets_out_of_logs_database_webhooks_and_screenshots(tmp_path: Path) -> None:
    assert CHROMIUM.exists()
    async with loopback_servers() as servers, WebhookReceiver() as hook:
        checks = [
            {**check, "schedule": "every 2s", "alert": {"after": 1, "notify": ["hook"]}}
            for check in [*matrix(servers), browser_check(refused_port())]
        ]
        notifier = hook.url.replace("json://", f"json://alert:{NOTIFIER_PASSWORD}@", 1)
        config = write(tmp_path / "checks.yaml", checks, notifiers={"hook": {"urls": [notifier]}})
        db = tmp_path / "prober.db"
        proc = await start_daemon(
            str(config), "--db", str(db), "--listen", "off", "--log-format", "json", "--log-level", "debug",
            cwd=tmp_path,
        )  # fmt: skip
        try:
            await wait_until(lambda: len(hook.received) >= len(checks), timeout=60)
            await wait_until(lambda: scalar(db, "SELECT count(*) FROM results") >= 2 * len(checks), timeout=30)
        finally:
            code, output = await stop_daemon(proc)
    assert code == 0, output[-3000:]
    assert '"level": "debug"' in output  # the log is there to be grepped
    assert_clean(output, "the daemon's JSON log")
    assert_clean(db_bytes(db), "the database file")
    assert_clean(json.dumps(hook.received), "the webhook payloads")
    bodies = " ".join(str(item.get("message")) for item in hook.received)
    assert "DOWN" in json.dumps(hook.received) and "****" in bodies  # a quoted URL arrives masked
    shots = [path.name for path in (tmp_path / "artifacts").rglob("*.png")]
    assert shots, "the browser check saved a screenshot"
    assert_clean(" ".join(shots), "the screenshot file names")


@pytest.mark.slow
async def test_an_agent_outbox_holds_no_secret(tmp_path: Path) -> None:
    async with loopback_servers() as servers:
        checks = [{**check, "schedule": "every 2s"} for check in matrix(servers)]
        config = write(tmp_path / "checks.yaml", checks)
        token = tmp_path / "token"
        token.write_text(INGEST_TOKEN + "\n")
        db = tmp_path / "agent.db"
        hub = f"http://127.0.0.1:{refused_port()}"
        proc = await start_daemon(
            str(config), "--db", str(db), "--listen", "off", "--log-format", "json", "--log-level", "debug",
            "--push", hub, "--token-file", str(token), cwd=tmp_path,
        )  # fmt: skip
        try:
            await wait_until(lambda: scalar(db, "SELECT count(*) FROM results") >= len(checks), timeout=30)
        finally:
            code, output = await stop_daemon(proc)
    assert code == 0, output[-3000:]
    assert "push" in output.lower()  # it tried the (refused) hub and said so
    assert_clean(output, "the agent's JSON log")
    assert_clean(db_bytes(db), "the agent's outbox")
