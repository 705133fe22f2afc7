"""No secret ever leaves the API: check URL passwords, headers, notifier URLs and ingest tokens are absent
from every endpoint's answer, even when a probe quoted them in an error, a metric or a detail."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from api_helpers import NOW, fake_daemon, result, serve
from store_seed import open_incident, record_notification

from prober.results import Result

PASSWORD = "hunter2-S3cret"
HEADER_TOKEN = "tokABCdef123456"
NOTIFIER_TOKEN = "XyZsecretZyX123abc"
NOTIFIER_PASSWORD = "NotifPass99"
INGEST_TOKEN = "ingestTok42xyzQQ"
FORM_PASSWORD = "correct-horse-Battery9"
SECRETS = (PASSWORD, HEADER_TOKEN, NOTIFIER_TOKEN, NOTIFIER_PASSWORD, INGEST_TOKEN, FORM_PASSWORD)

CONFIG = f"""
version: 1
notifiers:
  oncall:
    urls:
      - "slack://T1AAAA/B2BBBB/{NOTIFIER_TOKEN}"
      - "json://alert:{NOTIFIER_PASSWORD}@127.0.0.1:9/notify"
ingest:
  tokens: {{eu: "{INGEST_TOKEN}"}}
checks:
  - name: api
    type: http
    url: "https://admin:{PASSWORD}@127.0.0.1:9/health?api_key={HEADER_TOKEN}x"
    headers: {{Authorization: "Bearer {HEADER_TOKEN}"}}
    alert: {{notify: [oncall]}}
  - name: login
    type: browser
    url: "https://127.0.0.1:9/login"
    steps:
      - {{fill: "#password", value: "{FORM_PASSWORD}"}}
"""

URL = f"https://admin:{PASSWORD}@127.0.0.1:9/health"


def leaky_results() -> list[Result]:
    down = result(
        "api",
        "down",
        error=f"connection refused by {URL} (Authorization: Bearer {HEADER_TOKEN})",
        metrics={"status": 0, "latency": 0.1, "note": f"sent {HEADER_TOKEN}"},
    )
    down.details = {"request": {"url": URL, "password": FORM_PASSWORD}}
    login = result(
        "login",
        "down",
        type="browser",
        error=f"typed {FORM_PASSWORD} into #password, got 500",
        metrics={"title": f"Welcome {FORM_PASSWORD}", "lcp": 1.0},
    )
    return [result("api", at=NOW - timedelta(minutes=5)), down, login]


async def test_no_endpoint_answers_with_a_secret(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, leaky_results()) as daemon:
        await open_incident(daemon.store, "api", ["default"], f"down: {URL}", NOW - timedelta(minutes=1))
        await record_notification(
            daemon.store, None, "api", "opened", "slack://T1AAAA/B2BBBB/****", 1, "failed", "timeout", NOW
        )
        async with serve(daemon) as client:
            gets = [
                "/",
                "/static/app.js",
                "/static/style.css",
                "/static/common.js",
                "/static/check.js",
                "/checks/api",
                "/checks/login",
                "/api/v1/checks/api",
                "/api/v1/checks/login",
                "/api/v1/checks.schema.json",
                "/api/v1/status",
                "/api/v1/status.schema.json",
                "/api/v1/history",
                "/api/v1/checks/api/results?since=all",
                "/api/v1/checks/login/results",
                "/api/v1/incidents",
                "/api/v2/summary.json",
                "/api/v2/status.json",
                "/metrics",
                "/badge/api.svg",
                "/badge/api.svg?window=24h",
                "/healthz",
            ]
            bodies: dict[str, str] = {}
            for path in gets:
                response = await client.get(path)
                assert response.status == 200, path
                bodies[path] = await response.text() + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
            for token in ("wrong", INGEST_TOKEN[:-1], f"{INGEST_TOKEN} "):
                response = await client.post(
                    "/api/v1/ingest", json={"results": []}, headers={"Authorization": f"Bearer {token}x"}
                )
                bodies[f"ingest {token}"] = await response.text()
            foreign = result("api", location="us").to_json()
            response = await client.post(
                "/api/v1/ingest", json={"results": [foreign]}, headers={"Authorization": f"Bearer {INGEST_TOKEN}"}
            )
            assert response.status == 403
            bodies["ingest 403"] = await response.text()
    for path, text in bodies.items():
        for secret in SECRETS:
            assert secret not in text, f"{path} leaks {secret!r}"
    assert "https://admin:****@127.0.0.1:9/health" in bodies["/api/v1/status"]
    assert "****" in bodies["/api/v1/checks/api/results?since=all"]
    assert "connection refused by" in bodies["/api/v1/checks/api/results?since=all"]  # the sentence stays readable
