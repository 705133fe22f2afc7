"""`prober demo`: sample targets on loopback and a daemon watching them, so the product can be seen with no network.

The targets are small on purpose and behave like real services: an API with a readiness endpoint, one endpoint
that fails for a while every few minutes (so incidents appear), a slow one (degraded), a TLS server with a
certificate from a private CA made at start, a live HLS stream whose playlist advances with the clock, and a
WebSocket echo server. Everything listens on 127.0.0.1 only. Used by `prober demo` and by tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import ssl
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from aiohttp import WSMsgType, web

__all__ = ["DemoTargets", "demo_checks_yaml", "run_demo", "start_targets"]

log = logging.getLogger("prober.demo")

SEGMENT_SECONDS = 2.0
WINDOW = 6


@dataclass(slots=True)
class DemoTargets:
    http_port: int
    tls_port: int
    ca_file: Path
    started: float


def _make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a localhost certificate from it, valid for 45 days (so the expiry warning shows)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prober demo CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=45))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, cert_file, key_file


def _api_app(started: float) -> web.Application:
    app = web.Application()

    async def ready(_: web.Request) -> web.Response:
        return web.json_response(
            {"status": "healthy", "checks": {"database": {"status": "healthy", "latency_ms": 4}, "cache": "ok"}}
        )

    async def flaky(_: web.Request) -> web.Response:
        # Down for 40 s out of every 3 minutes, so the demo shows incidents opening and resolving.
        if (time.time() - started) % 180 >= 140:
            return web.json_response({"status": "unhealthy", "error": "upstream timeout"}, status=503)
        return web.json_response({"status": "healthy"})

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(0.35)
        return web.json_response({"status": "healthy"})

    async def landing(_: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><title>Demo shop</title><h1>Welcome to the demo shop</h1>", content_type="text/html"
        )

    async def playlist(_: web.Request) -> web.Response:
        now = time.time()
        newest = int(now // SEGMENT_SECONDS)
        first = newest - WINDOW + 1
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{int(SEGMENT_SECONDS)}",
            f"#EXT-X-MEDIA-SEQUENCE:{first}",
        ]
        for sequence in range(first, newest + 1):
            start = dt.datetime.fromtimestamp((sequence - 1) * SEGMENT_SECONDS, dt.UTC)
            lines.append("#EXT-X-PROGRAM-DATE-TIME:" + start.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
            lines.append(f"#EXTINF:{SEGMENT_SECONDS:.3f},")
            lines.append(f"segment-{sequence}.ts")
        return web.Response(text="\n".join(lines) + "\n", content_type="application/vnd.apple.mpegurl")

    async def master(_: web.Request) -> web.Response:
        text = (
            "#EXTM3U\n"
            "#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nlow/index.m3u8\n"
            "#EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720\nhigh/index.m3u8\n"
        )
        return web.Response(text=text, content_type="application/vnd.apple.mpegurl")

    async def segment(request: web.Request) -> web.Response:
        size = 24_000 if request.match_info["variant"] == "low" else 60_000
        return web.Response(body=b"\x47" + bytes(size - 1), content_type="video/mp2t")

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str('{"type": "welcome", "room": "lobby"}')
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str(message.data)
        return ws

    app.router.add_get("/", landing)
    app.router.add_get("/ready", ready)
    app.router.add_get("/orders/health", flaky)
    app.router.add_get("/search/health", slow)
    app.router.add_get("/live/master.m3u8", master)
    app.router.add_get("/live/{variant}/index.m3u8", playlist)
    app.router.add_get("/live/{variant}/segment-{sequence}.ts", segment)
    app.router.add_get("/ws", echo)
    return app


async def start_targets(stack: AsyncExitStack, directory: Path) -> DemoTargets:
    """Start every demo target on 127.0.0.1 (ports chosen by the system); stopped when `stack` closes."""
    started = time.time()
    ca_file, cert_file, key_file = _make_certificates(directory)
    runner = web.AppRunner(_api_app(started), access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_context.load_cert_chain(cert_file, key_file)
    tls_site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls_context)
    await tls_site.start()
    return DemoTargets(_port(site), _port(tls_site), ca_file, started)


def _port(site: web.TCPSite) -> int:
    server = site._server
    sockets = getattr(server, "sockets", None)
    assert sockets, "the demo site is not listening"
    return int(sockets[0].getsockname()[1])


def demo_checks_yaml(targets: DemoTargets) -> str:
    base = f"http://127.0.0.1:{targets.http_port}"
    return f"""\
version: 1
status_page: {{title: "prober demo"}}
defaults:
  schedule: every 10s
  timeout: 5s
  alert: {{after: 2, recover_after: 1}}
checks:
  - name: shop-landing
    type: http
    group: web
    url: {base}/
    expect: {{status: 200, body_contains: "Welcome"}}
  - name: api-readiness
    type: http
    group: api
    url: {base}/ready
    expect: {{json: {{status: healthy, checks.database.status: healthy, checks.database.latency_ms: "< 100"}}}}
  - name: orders-api
    type: http
    group: api
    url: {base}/orders/health
    schedule: every 5s
    expect: {{status: 200, json: {{status: healthy}}}}
  - name: search-api
    type: http
    group: api
    url: {base}/search/health
    expect: {{latency: "< 2s"}}
    warn: {{latency: "< 250ms"}}
  - name: api-certificate
    type: tls
    group: api
    host: 127.0.0.1
    port: {targets.tls_port}
    server_name: localhost
    ca_file: {targets.ca_file}
    schedule: every 15s
    expect: {{days_remaining: ">= 14"}}
    warn: {{days_remaining: ">= 60"}}
  - name: live-stream
    type: hls
    group: streaming
    url: {base}/live/master.m3u8
    schedule: every 5s
    expect: {{pdt_drift: "< 30s", segment_fetch: "< 2s"}}
  - name: chat-websocket
    type: websocket
    group: streaming
    url: ws://127.0.0.1:{targets.http_port}/ws
    connections: 5
    expect: {{message_json: {{type: welcome}}, open_latency_p95: "< 1s"}}
"""


async def run_demo(
    db: Path | None, listen: str, ready: asyncio.Event | None = None, stopping: asyncio.Event | None = None
) -> None:
    """Start the targets and a daemon watching them; serve the status page on `listen` until stopped."""
    from prober.daemon import Daemon, DaemonOptions

    with tempfile.TemporaryDirectory(prefix="prober-demo-") as tmp:
        directory = Path(tmp)
        async with AsyncExitStack() as stack:
            targets = await start_targets(stack, directory)
            checks = directory / "demo-checks.yaml"
            checks.write_text(demo_checks_yaml(targets))
            daemon = Daemon(DaemonOptions(paths=[str(checks)], db=db or directory / "demo.db", listen=listen))
            if stopping is not None:
                daemon.stopping = stopping
            task = asyncio.create_task(daemon.run())
            log.info(f"demo targets on 127.0.0.1:{targets.http_port} (http) and :{targets.tls_port} (tls)")
            log.info(f"status page: http://{listen}/   feed: http://{listen}/api/v1/status   metrics: /metrics")
            if ready is not None:
                ready.set()
            await task
