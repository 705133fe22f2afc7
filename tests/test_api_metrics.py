"""GET /metrics: Prometheus exposition parsed back by prometheus-client's own parser."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from api_helpers import NOW, FakeScheduler, fake_daemon, result, serve
from prometheus_client.parser import text_string_to_metric_families
from store_seed import open_incident, record_notification

from prober.api.metrics import family_name
from prober.scheduling.stats import CheckStats, LagSummary, SchedulerStats

CONFIG = """
version: 1
maintenance:
  - {name: always, schedule: "every 1m", duration: 2m, checks: ["edge-*"]}
checks:
  - {name: api, type: http, url: "https://api.example.com/"}
  - {name: cert, type: tls, host: api.example.com}
  - {name: live, type: hls, url: "https://cdn.example.com/live.m3u8"}
  - {name: chat, type: websocket, url: "wss://chat.example.com/ws", locations: [eu, us]}
  - {name: home, type: browser, url: "https://www.example.com/"}
  - {name: edge-node, type: http, url: "https://edge.example.com/"}
"""

NOT_AFTER = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)


def results() -> list:
    return [
        result(
            "api",
            latency=0.2,
            metrics={
                "status": 200,
                "latency": 0.2,
                "dns": 0.01,
                "connect": 0.02,
                "tls": 0.03,
                "ttfb": 0.15,
                "transfer": 0.05,
                "redirects": 1,
                "cert_days_remaining": 10.0,
                "body_contains": "ok",
                "headers": {"x": "y"},
            },
        ),
        result(
            "cert",
            type="tls",
            metrics={
                "days_remaining": 69.0,
                "not_after": "2027-01-31T12:00:00Z",
                "tls_version": "TLSv1.3",
                "chain_valid": True,
                "handshake": 0.012,
            },
        ),
        result(
            "live",
            "down",
            type="hls",
            metrics={
                "stale_for": 31.5,
                "pdt_drift": 7.25,
                "fresh": False,
                "playlist_status": 200,
                "made_up_metric": 5,
                "target_duration": 6,
                "segment_fetch": 0.2,
            },
        ),
        result("chat", type="websocket", location="eu", metrics={"open_latency": 0.031, "connected": True}),
        result("chat", "degraded", type="websocket", location="us", metrics={"open_latency": 0.9, "connected": True}),
        result("home", type="browser", metrics={"lcp": 1.25, "cls": 0.02, "page_errors": 0, "title": "Home"}),
        result("edge-node", "down"),
    ]


def samples(text: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def value(found: dict[str, list], name: str, **labels: str) -> float:
    matches = [s.value for s in found[name] if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matches) == 1, (name, labels, found.get(name))
    return float(matches[0])


async def test_metrics_parse_and_every_check_and_location_appears(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, results()) as daemon, serve(daemon) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    found = samples(text)
    pairs = {(s.labels["check"], s.labels["location"]) for s in found["probe_success"]}
    assert pairs == {
        ("api", "default"),
        ("cert", "default"),
        ("live", "default"),
        ("chat", "eu"),
        ("chat", "us"),
        ("home", "default"),
        ("edge-node", "default"),
    }
    assert value(found, "probe_success", check="live") == 0
    assert value(found, "probe_success", check="chat", location="us") == 1  # degraded is still a success
    assert value(found, "probe_status", check="chat", location="us") == 1
    assert value(found, "probe_status", check="live") == 2
    assert value(found, "probe_duration_seconds", check="api") == 0.201
    assert value(found, "probe_http_status_code", check="api", type="http") == 200
    assert value(found, "probe_http_redirects", check="api") == 1
    assert value(found, "probe_http_duration_seconds", check="api", phase="resolve") == 0.01
    assert abs(value(found, "probe_http_duration_seconds", check="api", phase="processing") - 0.09) < 1e-9
    assert value(found, "probe_hls_stale_seconds", check="live", type="hls") == 31.5
    assert value(found, "probe_hls_pdt_drift_seconds", check="live") == 7.25
    assert value(found, "probe_hls_fresh", check="live") == 0
    assert value(found, "probe_ws_open_latency_seconds", check="chat", location="eu") == 0.031
    assert value(found, "probe_browser_lcp_seconds", check="home") == 1.25
    assert value(found, "probe_tls_cert_remaining_seconds", check="cert") == 69 * 86400
    assert value(found, "probe_tls_version_info", check="cert", version="TLSv1.3") == 1
    assert value(found, "probe_maintenance", check="edge-node") == 1
    assert value(found, "probe_maintenance", check="api") == 0
    assert value(found, "prober_checks_configured") == 6
    assert value(found, "probe_last_run_timestamp_seconds", check="api") == NOW.timestamp()
    assert not any("made_up_metric" in name for name in found)  # only metrics a probe declares


async def test_ssl_earliest_cert_expiry_comes_from_not_after_or_cert_days_remaining(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, results()) as daemon, serve(daemon) as client:
        found = samples(await (await client.get("/metrics")).text())
    assert value(found, "probe_ssl_earliest_cert_expiry", check="cert") == NOT_AFTER.timestamp()
    assert value(found, "probe_ssl_earliest_cert_expiry", check="api") == (NOW + timedelta(days=10)).timestamp()
    assert {s.labels["check"] for s in found["probe_ssl_earliest_cert_expiry"]} == {"cert", "api"}


def scheduler_stats() -> SchedulerStats:
    lag = LagSummary(p50=0.002, p99=0.08, max=0.5, samples=100)
    check = CheckStats(
        name="api",
        type="http",
        schedule="every 1m",
        runs=5,
        completed=5,
        errors=0,
        skipped=0,
        missed=0,
        running=False,
        waiting=False,
        next_run=None,
        last_scheduled=None,
        last_lag=0.004,
        lag=lag,
    )
    return SchedulerStats(
        checks={"api": check}, runs=12, completed=11, errors=1, skipped=2, missed=0, in_flight=1, waiting=0, lag=lag
    )


async def test_scheduler_lag_open_incidents_and_failed_notifications_are_exported(tmp_path: Path) -> None:
    stats = scheduler_stats()
    async with fake_daemon(tmp_path, CONFIG, results()) as daemon:
        daemon.scheduler = FakeScheduler(stats)
        incident = await open_incident(daemon.store, "live", ["default"], "stale", NOW)
        for attempt, outcome in enumerate(("retrying", "failed", "failed", "delivered", "dropped"), start=1):
            await record_notification(
                daemon.store, incident, "live", "opened", "json://hooks.example/****", attempt, outcome, None, NOW
            )
        async with serve(daemon) as client:
            found = samples(await (await client.get("/metrics")).text())
    assert value(found, "prober_schedule_lag_seconds", check="api", type="http", location="default") == 0.004
    assert value(found, "prober_scheduler_lag_seconds", quantile="0.99") == 0.08
    assert value(found, "prober_scheduler_runs_total") == 12
    assert value(found, "prober_scheduler_errors_total") == 1
    assert value(found, "prober_incident_open", check="live") == 1
    assert value(found, "prober_notifications_failed_total", check="live", outcome="failed") == 2
    assert value(found, "prober_notifications_failed_total", check="live", outcome="dropped") == 1
    assert value(found, "prober_store_results_total") == 7
    assert not any(name.startswith("prober_push_") for name in found), "a hub exports no push counters"


async def test_an_agent_exports_its_push_counters_by_hub(tmp_path: Path) -> None:
    from prober.agent import PushStats

    async with fake_daemon(tmp_path, CONFIG, results()) as daemon:
        daemon.push_stats = {  # type: ignore[attr-defined]
            "http://hub-0:8080": PushStats(
                sent=40, accepted=38, duplicates=2, batches=3, failed_attempts=5, rejected=4
            ),
            "http://hub-1:8080": PushStats(sent=7, accepted=7, batches=1, failed_attempts=9),
        }
        async with serve(daemon) as client:
            found = samples(await (await client.get("/metrics")).text())
    hub0, hub1 = {"hub": "http://hub-0:8080"}, {"hub": "http://hub-1:8080"}
    assert value(found, "prober_push_results_total", **hub0) == 40
    assert value(found, "prober_push_duplicates_total", **hub0) == 2
    assert value(found, "prober_push_batches_total", **hub0) == 3
    assert value(found, "prober_push_failures_total", **hub0) == 5
    assert value(found, "prober_push_rejected_total", **hub0) == 4
    assert value(found, "prober_push_results_total", **hub1) == 7
    assert value(found, "prober_push_failures_total", **hub1) == 9, "a failing hub's counter is its own"


async def test_openmetrics_is_served_when_the_scraper_asks_for_it(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, results()) as daemon, serve(daemon) as client:
        response = await client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        text = await response.text()
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert text.rstrip().endswith("# EOF")
    assert 'probe_success{check="api",location="default",type="http"} 1.0' in text


def test_exported_names_follow_blackbox_exporter_and_carry_their_unit() -> None:
    assert family_name("http", "status", "") == "probe_http_status_code"
    assert family_name("hls", "stale_for", "s") == "probe_hls_stale_seconds"
    assert family_name("websocket", "open_latency_p95", "s") == "probe_ws_open_latency_p95_seconds"
    assert family_name("http", "body_size", "bytes") == "probe_http_body_size_bytes"
    assert family_name("hls", "segment_bytes", "bytes") == "probe_hls_segment_bytes"
    assert family_name("tls", "days_remaining", "days") == "probe_tls_cert_remaining_seconds"
    assert family_name("http", "cert_days_remaining", "days") == "probe_http_cert_remaining_seconds"


DOCKER = Path(__file__).parent.parent / "docker"


async def test_alert_rules_and_grafana_dashboard_use_only_metrics_prober_exports(tmp_path: Path) -> None:
    stats = scheduler_stats()
    async with fake_daemon(tmp_path, CONFIG, results()) as daemon:
        daemon.scheduler = FakeScheduler(stats)
        incident = await open_incident(daemon.store, "live", ["default"], "stale", NOW)
        await record_notification(
            daemon.store, incident, "live", "opened", "json://x/****", 1, "failed", "refused", NOW
        )
        async with serve(daemon) as client:
            exported = set(samples(await (await client.get("/metrics")).text()))
    rules = yaml.safe_load((DOCKER / "prometheus-alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((DOCKER / "grafana-dashboard.json").read_text())
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    expressions += [variable["definition"] for variable in dashboard["templating"]["list"] if "definition" in variable]
    used = {name for expr in expressions for name in re.findall(r"\b(probe_[a-z0-9_]+|prober_[a-z0-9_]+)", expr)}
    assert len(used) > 15
    assert used - exported == set()


async def test_metrics_cost_does_not_grow_with_notification_history(tmp_path: Path) -> None:
    """200,000 recorded notification attempts (was 2.2 s a scrape): the failed counters come from the
    trigger-kept notification_failures rows, so a scrape never reads the notifications table, stays
    fast, and the counters do not drop when old attempts are pruned."""
    import sqlite3
    import time

    from prober.config.models import RetentionConfig

    outcomes = ("delivered", "retrying", "failed", "dropped", "abandoned")
    rows = [
        ("live" if index % 3 else "api", "opened", "json://hooks.example/****", 1, 0, outcomes[index % 5], None,
         (NOW - timedelta(days=index % 30)).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
        for index in range(200_000)
    ]  # fmt: skip

    def fill(db) -> None:
        db.conn.executemany(
            'INSERT INTO notifications ("check", kind, url, attempt, ok, outcome, error, at) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    expected: dict[tuple[str, str], int] = {}
    for check, *_, outcome, _, _ in rows:
        if outcome in ("failed", "dropped", "abandoned"):
            expected[(check, outcome)] = expected.get((check, outcome), 0) + 1
    async with fake_daemon(tmp_path, CONFIG, results()) as daemon:
        await daemon.store._writer.run(fill)
        statements: list[str] = []
        async with serve(daemon, cache_ttl=0) as client:
            timings = []
            for attempt in range(5):
                if attempt == 4:  # the last scrape's queries
                    daemon.store._db.conn.set_trace_callback(statements.append)
                began = time.perf_counter()
                text = await (await client.get("/metrics")).text()
                timings.append(time.perf_counter() - began)
            daemon.store._db.conn.set_trace_callback(None)
            found = samples(text)
            for (check, outcome), count in expected.items():
                assert value(found, "prober_notifications_failed_total", check=check, outcome=outcome) == count
            assert not [sql for sql in statements if re.search(r"\bFROM notifications\b", sql)], statements
            selects = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
            assert len(selects) <= 5, f"a few queries per scrape, whatever the history: {selects}"
            assert min(timings) < 0.25, f"best scrape {min(timings) * 1000:.0f} ms"
            pruned = await daemon.store.prune(RetentionConfig(raw=86400, rollup=10 * 86400), now=NOW)
            assert pruned["notifications"] > 100_000
            after = samples(await (await client.get("/metrics")).text())
    for (check, outcome), count in expected.items():
        assert value(after, "prober_notifications_failed_total", check=check, outcome=outcome) == count
    with sqlite3.connect(tmp_path / "prober.db") as connection:
        left = connection.execute("SELECT count(*) FROM notifications").fetchone()[0]
    assert left < 200_000 - 100_000
