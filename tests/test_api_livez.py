"""/livez says only that the process answers (Kubernetes liveness); /healthz is readiness and may say 503.

A kubelet restarting a pod whose database cannot be written frees no disk and throws away the results held in
memory, so the liveness endpoint must stay 200 while /healthz reports the database problem.
"""

from __future__ import annotations

from pathlib import Path

from api_helpers import fake_daemon, history, serve

CONFIG = """
version: 1
checks:
  - {name: api, type: http, url: "https://api.example.com/"}
"""


async def test_livez_stays_200_while_healthz_reports_the_database_missing(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, history("api", "u")) as daemon, serve(daemon) as client:
        alive = await client.get("/livez")
        document = await alive.json()
        assert alive.status == 200 and document["status"] == "alive", document
        assert document["uptime_seconds"] >= 0 and alive.headers["Cache-Control"] == "no-store"
        store, daemon.store = daemon.store, None  # type: ignore[assignment]
        try:
            assert (await client.get("/healthz")).status == 503
            still = await client.get("/livez")
            assert still.status == 200, await still.text()
            assert set(await still.json()) == {"status", "uptime_seconds"}  # nothing about the store
        finally:
            daemon.store = store


async def test_livez_answers_only_get_and_head(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG) as daemon, serve(daemon) as client:
        assert (await client.head("/livez")).status == 200
        refused = await client.post("/livez")
        assert refused.status == 405, await refused.text()
