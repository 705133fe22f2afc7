"""`/metrics` passes Debian's `promtool check metrics` (the Prometheus linter), for a hub and an agent that carry a
result of every registered check type with every metric it exports.

A real hub `Daemon` and a real agent `Daemon` on 127.0.0.1: the agent's database is seeded with one result per
check type (the contract test's SAMPLES give each type's definition; every exported metric has a value of the
kind its export reads), the agent pushes them to the hub through the ingest path, and both `/metrics` are
scraped once the hub has them all. The agent also probes a loopback target, so its scheduler, push counters
and runtime families are live. Beside the lint: each family's HELP says what its samples are (one text per
family, however many metrics or types feed it), and values exported in another unit are converted.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from daemon_helpers import Target, query, wait_until
from loopback import free_port
from prometheus_client.parser import text_string_to_metric_families
from test_contract import SAMPLES

from prober.agent import PushSettings
from prober.daemon.service import Daemon, DaemonOptions
from prober.probes import PROBES
from prober.probes.registry import CERT_EXPIRY_HELP, Export
from prober.results import Result
from prober.store import Store

pytestmark = pytest.mark.slow

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
TOKEN = "eu-west-promtool-token-7c2e"
AT = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
"""When the seeded results ran: a minute ago by the real clock (the hub refuses results older than it keeps)."""
DAYS = 12.5
FAST = PushSettings(batch_size=500, min_delay=0.05, max_delay=0.3, poll_interval=0.1, request_timeout=5)


def value_for(export: Export) -> Any:
    """A metric value of the kind the export reads: an ISO time, a text, or a number."""
    if export.kind == "timestamp":
        return (AT + timedelta(days=DAYS)).isoformat().replace("+00:00", "Z")
    if export.kind == "info":
        return "TLSv1.3"
    return DAYS


def sampled() -> list[str]:
    """The registered types with a sample definition (`test_every_type_is_scraped` fails for any other)."""
    return sorted(set(PROBES) & set(SAMPLES))


def sample_results() -> list[Result]:
    results = []
    for type_name in sampled():
        metrics = {metric: value_for(exports[0]) for metric, exports in PROBES[type_name].exports.items() if exports}
        results.append(
            Result(
                check=f"sample-{type_name}",
                type=type_name,
                location="eu-west",
                started_at=AT,
                duration_ms=12.0,
                status="up",
                metrics=metrics,
            )
        )
    return results


def write_checks(path: Path, target: Target, *, samples: bool) -> Path:
    """The hub's file declares a check of every type (run at eu-west, so never by the hub itself); the agent's
    only the loopback one it runs: the others' results come from its seeded database."""
    checks: list[dict[str, Any]] = [
        {"name": "api", "type": "http", "url": target.url, "schedule": "every 200ms", "locations": ["eu-west"]}
    ]
    for type_name in sampled() if samples else ():
        checks.append(
            {"name": f"sample-{type_name}", "type": type_name, **SAMPLES[type_name], "locations": ["eu-west"]}
        )
    document = {"version": 1, "ingest": {"tokens": {"eu-west": TOKEN}}, "checks": checks}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Scraped:
    hub: str
    agent: str


async def serve(options: DaemonOptions) -> tuple[Daemon, asyncio.Task[None]]:
    daemon = Daemon(options)
    task = asyncio.create_task(daemon.run())
    return daemon, task


@pytest.fixture
async def scraped(tmp_path: Path) -> AsyncIterator[Scraped]:
    target = await Target().start()
    hub_checks = write_checks(tmp_path / "hub.yaml", target, samples=True)
    agent_checks = write_checks(tmp_path / "agent.yaml", target, samples=False)
    agent_db = tmp_path / "agent.db"
    seeded = sample_results()
    async with Store(agent_db, synchronous="NORMAL") as store:
        await store.write_many(seeded)
    hub_port, agent_port = free_port(), free_port()
    hub, hub_task = await serve(
        DaemonOptions(paths=[str(hub_checks)], db=tmp_path / "hub.db", listen=f"127.0.0.1:{hub_port}", stop_grace=2)
    )
    agent, agent_task = await serve(
        DaemonOptions(
            paths=[str(agent_checks)],
            db=agent_db,
            location="eu-west",
            listen=f"127.0.0.1:{agent_port}",
            push_url=f"http://127.0.0.1:{hub_port}",
            token=TOKEN,
            push_settings=FAST,
            stop_grace=2,
        )
    )
    try:

        def arrived() -> bool:
            for task in (hub_task, agent_task):
                if task.done():
                    task.result()  # raise what stopped it
            try:
                rows = query(tmp_path / "hub.db", 'SELECT DISTINCT "check" FROM results')
            except Exception:
                return False
            return {f"sample-{t}" for t in sampled()} | {"api"} <= {row[0] for row in rows}

        await wait_until(arrived, 20)
        async with aiohttp.ClientSession() as session:
            texts = []
            for port in (hub_port, agent_port):
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    assert response.status == 200
                    texts.append(await response.text())
        yield Scraped(hub=texts[0], agent=texts[1])
    finally:
        for daemon, task in ((agent, agent_task), (hub, hub_task)):
            daemon.stop()
            await task
        await target.stop()


def promtool(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


async def test_a_hubs_and_an_agents_metrics_pass_promtool_with_every_check_type(scraped: Scraped) -> None:
    for who, text in (("hub", scraped.hub), ("agent", scraped.agent)):
        checked = promtool(text)
        assert checked.returncode == 0, (
            f"promtool check metrics on the {who}'s /metrics:\n{checked.stderr}{checked.stdout}"
        )
        samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
        types = {sample.labels["type"] for sample in samples if sample.name == "probe_success"}
        assert set(sampled()) <= types, f"the {who} exports no probe_success for {sorted(set(sampled()) - types)}"
        declared = {
            export.name for name in sampled() for exports in PROBES[name].exports.values() for export in exports
        }
        missing = declared - {sample.name for sample in samples}
        assert not missing, f"the {who} exports none of {sorted(missing)}"
    agent = families(scraped.agent)
    assert "prober_push_results" in agent, "the agent exports its push counters"
    assert "prober_scheduler_lag_seconds" in agent and agent["prober_scheduler_lag_seconds"].type == "summary"


def test_every_type_is_scraped() -> None:
    missing = sorted(set(PROBES) - set(SAMPLES))
    assert not missing, (
        f"add a sample definition of {missing} to SAMPLES in tests/test_contract.py: /metrics is linted with one"
    )


async def test_a_promtool_failure_is_real_not_a_tool_that_always_passes() -> None:
    """The healthy twin of the lint: the same promtool refuses what this issue found on /metrics before."""
    bad = (
        "# HELP probe_tls_days_remaining days until the leaf certificate expires\n"
        "# TYPE probe_tls_days_remaining gauge\nprobe_tls_days_remaining 69\n"
        "# HELP prober_scheduler_lag_quantile_seconds start lag\n# TYPE prober_scheduler_lag_quantile_seconds gauge\n"
        'prober_scheduler_lag_quantile_seconds{quantile="0.5"} 0.1\n'
    )
    checked = promtool(bad)
    assert checked.returncode != 0
    assert 'use base unit "seconds" instead of "days"' in checked.stderr
    assert 'non-summary metrics should not have "quantile" label' in checked.stderr


async def test_each_family_has_one_help_that_says_what_its_samples_are(scraped: Scraped) -> None:
    found = families(scraped.hub)
    assert found["probe_ssl_earliest_cert_expiry"].documentation == CERT_EXPIRY_HELP
    phases = found["probe_http_duration_seconds"]
    assert "each phase" in phases.documentation and "name resolution" not in phases.documentation
    assert {s.labels["phase"] for s in phases.samples} == {"resolve", "connect", "tls", "processing", "transfer"}
    remaining = found["probe_tls_cert_remaining_seconds"]
    assert "in seconds" in remaining.documentation
    assert [s.value for s in remaining.samples] == [DAYS * 86400]
    expiry = {s.labels["type"]: s.value for s in found["probe_ssl_earliest_cert_expiry"].samples}
    assert expiry["tls"] == expiry["http"] == (AT + timedelta(days=DAYS)).timestamp()
    for probe in PROBES.values():  # one HELP per family: every export sharing a name declares the same text
        for exports in probe.exports.values():
            for export in exports:
                if export.name in ("probe_ssl_earliest_cert_expiry", "probe_http_duration_seconds"):
                    assert export.help == found[export.name].documentation, (probe.type_name, export)
