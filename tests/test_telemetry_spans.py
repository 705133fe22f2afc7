"""The child spans of hls, websocket and browser runs, exported to a real OTLP receiver on loopback: each
playlist and segment fetch, each WebSocket connection of a batch, the page load and each browser step,
with parent/child relations; a Socket.IO token never leaves; a browser page load carries the traceparent
of the exported run span."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from otlp_receiver import OtlpReceiver, Span
from ws_servers import TOKEN, socketio_server

from prober.config.loader import load_config
from prober.results import Result
from prober.scheduling.runner import Runner
from prober.telemetry import TelemetrySettings, start_exporter


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    server = await OtlpReceiver().start()
    yield server
    await server.stop()


async def _traced(tmp_path: Path, check: dict[str, Any], receiver: OtlpReceiver) -> tuple[Result, list[Span]]:
    """Run one check with tracing on, export it, and return the result and the spans received."""
    path = tmp_path / f"{check['name']}.yaml"
    path.write_text(yaml.safe_dump({"checks": [check]}))
    runner = Runner(tracing=True)
    try:
        result = await runner.run(load_config([path]).checks[0])
    finally:
        await runner.resources.aclose()
    settings = TelemetrySettings(metrics=False, traces_endpoint=f"{receiver.endpoint}/v1/traces")
    exporter = start_exporter(settings, location="test", instance_id="t-1")
    exporter.submit(result, None)
    await asyncio.to_thread(exporter.shutdown, 5)
    assert exporter.dropped == {"spans": 0, "metrics": 0}
    assert result.trace is not None
    run_id = f"{result.trace.span_id:016x}"
    run = [s for s in receiver.spans if s.span_id == run_id]
    assert len(run) == 1, "the run span must be exported once, with the ids the probe was given"
    return result, [s for s in receiver.spans if s.parent_span_id == run_id]


async def test_every_connection_of_a_websocket_batch_is_a_child_span_and_the_token_stays_home(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    async with socketio_server() as server:
        check = {
            "name": "chat", "type": "websocket", "url": server.url, "protocol": "socketio", "namespace": "/private",
            "auth": {"token": TOKEN}, "connections": 3, "batch_size": 2, "timeout": "3s",
        }  # fmt: skip
        result, children = await _traced(tmp_path, check, receiver)
    assert result.status == "up", result.error
    connections = sorted(
        (s for s in children if s.name == "connection"), key=lambda s: s.attributes["prober.connection"]
    )
    assert [s.attributes["prober.connection"] for s in connections] == [1, 2, 3]
    assert all(s.status_code == 0 and s.end >= s.start > 0 for s in connections)
    assert connections[0].attributes["server.address"] == "127.0.0.1"
    assert TOKEN.encode() not in receiver.raw(), "the Socket.IO auth token reached the collector"


async def test_a_refused_websocket_connection_is_an_error_span(
    tmp_path: Path, receiver: OtlpReceiver, free_port: int
) -> None:
    check = {"name": "ws-gone", "type": "websocket", "url": f"ws://127.0.0.1:{free_port}/", "timeout": "2s"}
    result, children = await _traced(tmp_path, check, receiver)
    assert result.status == "down"
    (connection,) = [s for s in children if s.name == "connection"]
    assert connection.status_code == 2 and "refused" in connection.status_message


async def _vod_origin() -> tuple[web.AppRunner, str]:
    segment = b"\x47" + b"\x00" * 187
    playlist = (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        + "".join(f"#EXTINF:2.0,\nseg{n}.ts\n" for n in range(3))
        + "#EXT-X-ENDLIST\n"
    )
    app = web.Application()

    async def media(_: web.Request) -> web.Response:
        return web.Response(text=playlist, content_type="application/vnd.apple.mpegurl")

    async def ts(_: web.Request) -> web.Response:
        return web.Response(body=segment * 10, content_type="video/mp2t")

    app.router.add_get("/vod.m3u8", media)
    app.router.add_get("/seg{n}.ts", ts)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/vod.m3u8?token=seg-token-77Xq"


async def test_each_hls_playlist_and_segment_fetch_is_a_child_span(tmp_path: Path, receiver: OtlpReceiver) -> None:
    origin, url = await _vod_origin()
    try:
        check = {"name": "vod", "type": "hls", "url": url, "segments": 2, "timeout": "5s"}
        _, children = await _traced(tmp_path, check, receiver)
    finally:
        await origin.cleanup()
    playlists = [s for s in children if s.name == "playlist"]
    segments = [s for s in children if s.name == "segment"]
    assert len(playlists) >= 1 and len(segments) == 2, [s.name for s in children]
    assert playlists[0].attributes["http.response.status_code"] == 200
    assert all(
        s.attributes["http.response.status_code"] == 200 and s.attributes["prober.bytes"] == 1880 for s in segments
    )
    assert {s.attributes["url.full"].rsplit("/", 1)[1] for s in segments} == {"seg1.ts", "seg2.ts"}
    assert b"seg-token-77Xq" not in receiver.raw(), "a token in the playlist URL reached the collector"


class PageTarget:
    """A loopback page whose document request keeps its headers; the page asks for one image."""

    def __init__(self) -> None:
        self.document_headers: list[dict[str, str]] = []
        self.image_headers: list[dict[str, str]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> PageTarget:
        app = web.Application()

        async def page(request: web.Request) -> web.Response:
            self.document_headers.append({k.lower(): v for k, v in request.headers.items()})
            html = '<html><body><button id="go">Go</button><img src="/pixel.gif"></body></html>'
            return web.Response(text=html, content_type="text/html")

        async def pixel(request: web.Request) -> web.Response:
            self.image_headers.append({k.lower(): v for k, v in request.headers.items()})
            return web.Response(body=b"GIF89a", content_type="image/gif")

        app.router.add_get("/", page)
        app.router.add_get("/pixel.gif", pixel)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/"
        return self


@pytest.mark.slow
async def test_a_browser_page_load_carries_the_runs_traceparent_and_each_step_is_a_span(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    target = await PageTarget().start()
    try:
        check = {
            "name": "shop", "type": "browser", "url": target.url, "timeout": "20s",
            "steps": [{"click": "#go"}, {"wait_for": "#go"}],
        }  # fmt: skip
        result, children = await _traced(tmp_path, check, receiver)
    finally:
        assert target.runner is not None
        await target.runner.cleanup()
    assert result.status == "up", result.error
    assert result.trace is not None
    sent = target.document_headers[0]["traceparent"]
    assert sent == result.trace.traceparent and target.document_headers[0]["tracestate"] == "prober=synthetic"
    assert target.image_headers and "traceparent" not in target.image_headers[0], "only the page load carries it"
    names = [s.name for s in sorted(children, key=lambda s: s.start)]
    assert names[0] == "page load" and names[1:] == ["step 1: click '#go'", "step 2: wait_for '#go'"], names
