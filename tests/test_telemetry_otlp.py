"""OpenTelemetry export against a real OTLP/HTTP receiver on loopback (decoded with opentelemetry-proto):
the spans of a check run with their phases, the traceparent the target receives, the metrics with their
names, units and resource, redaction, and a collector that is down costing nothing of probing."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from daemon_helpers import scalar, wait_until
from otlp_receiver import OtlpReceiver

from prober.daemon.service import Daemon, DaemonOptions

pytestmark = pytest.mark.slow  # each waits for a real daemon's spans and a metrics export (2-3 s)

PASSWORD = "hunter2-pass-9f3k"
BEARER = "bearer-secret-7Hq2xLp"


class TracedTarget:
    """A loopback aiohttp target that keeps the trace headers of every request it answers."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> TracedTarget:
        app = web.Application()

        async def health(request: web.Request) -> web.Response:
            self.seen.append({key.lower(): value for key, value in request.headers.items()})
            return web.json_response({"ok": True})

        app.router.add_get("/health", health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    server = await OtlpReceiver().start()
    yield server
    await server.stop()


@pytest.fixture
async def target() -> AsyncIterator[TracedTarget]:
    server = await TracedTarget().start()
    yield server
    await server.stop()


def _config(tmp_path: Path, endpoint: str, checks: list[dict[str, Any]], interval: str = "1s") -> Path:
    path = tmp_path / "checks.yaml"
    document = {"telemetry": {"endpoint": endpoint, "metrics_interval": interval}, "checks": checks}
    path.write_text(json.dumps(document))
    return path


def _http_check(target: TracedTarget, name: str = "api", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "http",
        "url": f"http://probe:{PASSWORD}@127.0.0.1:{target.port}/health",
        "headers": {"Authorization": f"Bearer {BEARER}"},
        "schedule": "every 1s",
        **extra,
    }


async def _run_daemon(config: Path, db: Path, listen: str | None = None) -> tuple[Daemon, asyncio.Task[None]]:
    daemon = Daemon(DaemonOptions(paths=[str(config)], db=db, listen=listen, stop_grace=3))
    return daemon, asyncio.create_task(daemon.run())


async def _stop(daemon: Daemon, task: asyncio.Task[None]) -> None:
    daemon.stop()
    await asyncio.wait_for(task, 20)


async def test_http_run_is_one_span_with_its_phases_and_the_target_sees_its_trace_id(
    tmp_path: Path, receiver: OtlpReceiver, target: TracedTarget
) -> None:
    config = _config(tmp_path, receiver.endpoint, [_http_check(target)])
    daemon, task = await _run_daemon(config, tmp_path / "prober.db")
    try:
        await wait_until(lambda: any(s.name == "http api" for s in receiver.spans), 15)
        await wait_until(lambda: any(p.name == "probe_http_duration_seconds" for p in receiver.points), 15)
    finally:
        await _stop(daemon, task)
    runs = [s for s in receiver.spans if s.name == "http api"]
    run = runs[0]
    assert run.attributes["prober.check"] == "api"
    assert run.attributes["prober.type"] == "http"
    assert run.attributes["prober.location"] == "default"
    assert run.attributes["prober.status"] == "up"
    assert run.attributes["user_agent.synthetic.type"] == "test"
    assert run.parent_span_id == ""
    assert run.resource["service.name"] == "prober"
    assert run.resource["prober.location"] == "default"
    assert run.resource["service.instance.id"]
    children = [s for s in receiver.spans if s.parent_span_id == run.span_id]
    names = sorted(s.name for s in children)
    assert names == ["GET", "connect"], names  # an IP address: no DNS; http: no TLS
    request = next(s for s in children if s.name == "GET")
    assert all(s.trace_id == run.trace_id for s in children)
    assert run.start <= request.start <= request.end <= run.end
    assert request.kind == 3  # SPAN_KIND_CLIENT
    assert request.attributes["http.request.method"] == "GET"
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["server.address"] == "127.0.0.1"
    assert request.attributes["server.port"] == target.port
    assert request.attributes["url.full"] == f"http://probe:****@127.0.0.1:{target.port}/health"
    # The traceparent the target received names the exported run span.
    exported = {(s.trace_id, s.span_id) for s in runs}
    received = [headers["traceparent"] for headers in target.seen]
    assert received and all(value.startswith("00-") for value in received)
    assert any((value.split("-")[1], value.split("-")[2]) in exported for value in received), (received, exported)
    assert all("prober=" in headers["tracestate"] for headers in target.seen)
    raw = receiver.raw()
    assert PASSWORD.encode() not in raw and BEARER.encode() not in raw
    points = [p for p in receiver.points if p.name == "probe_http_duration_seconds"]
    assert {p.attributes["phase"] for p in points} >= {"connect", "processing", "transfer"}
    assert all(p.unit == "s" and p.attributes["check"] == "api" for p in points)
    assert all(p.resource["service.name"] == "prober" for p in points)
    codes = [p for p in receiver.points if p.name == "probe_http_status_code"]
    assert codes and codes[-1].value == 200 and codes[-1].unit == ""
    sizes = [p for p in receiver.points if p.name == "probe_http_body_size_bytes"]
    assert sizes and sizes[-1].unit == "By"
    runs_counter = [p for p in receiver.points if p.name == "prober_check_runs"]
    assert runs_counter and runs_counter[-1].kind == "sum" and runs_counter[-1].temporality == 2  # cumulative


async def test_trace_context_false_sends_no_traceparent_but_the_run_is_still_exported(
    tmp_path: Path, receiver: OtlpReceiver, target: TracedTarget
) -> None:
    config = _config(tmp_path, receiver.endpoint, [_http_check(target, "quiet", trace_context=False)])
    daemon, task = await _run_daemon(config, tmp_path / "prober.db")
    try:
        await wait_until(lambda: any(s.name == "http quiet" for s in receiver.spans), 15)
    finally:
        await _stop(daemon, task)
    assert target.seen and all("traceparent" not in headers for headers in target.seen)


async def test_a_down_run_is_an_error_span_with_error_type(
    tmp_path: Path, receiver: OtlpReceiver, free_port: int
) -> None:
    check = {"name": "gone", "type": "http", "url": f"http://127.0.0.1:{free_port}/", "schedule": "every 1s"}
    config = _config(tmp_path, receiver.endpoint, [check])
    daemon, task = await _run_daemon(config, tmp_path / "prober.db")
    try:
        await wait_until(lambda: any(s.name == "http gone" for s in receiver.spans), 15)
    finally:
        await _stop(daemon, task)
    run = next(s for s in receiver.spans if s.name == "http gone")
    assert run.status_code == 2  # STATUS_CODE_ERROR
    assert "connection refused" in run.status_message
    assert run.attributes["prober.status"] == "down"
    assert run.attributes["error.type"] == "ClientConnectorError"
    request = next(s for s in receiver.spans if s.parent_span_id == run.span_id and s.name == "GET")
    assert request.status_code == 2 and request.attributes["error.type"] == "ClientConnectorError"


async def test_collector_down_for_30s_loses_no_result_and_counts_the_drops(
    tmp_path: Path, receiver: OtlpReceiver, target: TracedTarget, free_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")
    config = _config(tmp_path, receiver.endpoint, [_http_check(target, f"c{i}") for i in range(3)])
    db = tmp_path / "prober.db"
    daemon, task = await _run_daemon(config, db, listen=f"127.0.0.1:{free_port}")
    count = lambda: scalar(db, "select count(*) from results")  # noqa: E731

    def dropped() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{free_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("prober_otel_dropped_total")
        )

    try:
        await wait_until(lambda: len(receiver.spans) > 0, 15)
        await receiver.stop()
        before = count()
        await asyncio.sleep(30)
        during = count() - before
        assert during >= 3 * 25, f"only {during} results were stored while the collector was down"
        lost = await asyncio.to_thread(dropped)
        assert lost > 0, "prober_otel_dropped_total did not count the spans the collector never took"
        assert daemon.runtime.loop_lag.worst < 0.5, f"the loop was held {daemon.runtime.loop_lag.worst:.2f}s"
        received = len(receiver.spans)
        await receiver.start()  # the same port
        await wait_until(lambda: len(receiver.spans) > received, 20)
    finally:
        await _stop(daemon, task)
