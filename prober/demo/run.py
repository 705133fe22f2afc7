"""`prober demo`: sample targets on loopback and a daemon watching them, so the product can be seen with no network.

The targets are small on purpose and behave like real services: an API with a readiness endpoint, one endpoint
that fails for a minute every few minutes (so a newcomer sees a check go down, an incident open and resolve), a
slow one (degraded), a TLS server with a certificate from a private CA made at start, a live HLS stream whose
playlist advances with the clock, a live HTTP-FLV stream of a real picture and sound (a moving test pattern and
a quiet tone, encoded in real time in-process with PyAV, one encoder shared by every viewer: `prober.demo.stream`), a
live DASH stream whose `$Number$` segments appear with the clock, a WebSocket echo server, a Redis-like
`PING`/`+PONG` port and a DNS server for the zone `demo.test` (`prober.demo.services`), and a heartbeat that the
demo's own cron-like job pings (skipping a few rounds now and then). A webhook receiver stands in for Slack: the
failing check notifies it through Apprise (`json://`), and the demo prints every message it receives. The check
file also has an announcement and a weekly maintenance window, so the status page shows both. Everything listens
on 127.0.0.1 only. Used by `prober demo` and by tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import logging
import ssl
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from prober.demo.services import start_dns_server, start_line_server
from prober.demo.stream import FlvFanout, LiveEncoder, dash_routes

__all__ = [
    "DemoTargets",
    "Outages",
    "demo_checks_yaml",
    "demo_job",
    "print_notification",
    "run_demo",
    "start_targets",
]

log = logging.getLogger("prober.demo")

SEGMENT_SECONDS = 2.0
DEMO_PING_TOKEN = "demo-nightly-export-ping"
"""The demo heartbeat's token (a demo secret: it is on loopback only)."""
WINDOW = 6


@dataclass(frozen=True, slots=True)
class Outages:
    """When the flaky demo endpoint fails: `first` seconds after it is first asked (so a slow start cannot
    skip an outage), then every `every` seconds, for `length` seconds each time (by default a minute of
    failure every four minutes, the first 30 s after the checks start)."""

    first: float = 30.0
    every: float = 240.0
    length: float = 60.0

    def failing(self, elapsed: float) -> bool:
        return elapsed >= self.first and (elapsed - self.first) % self.every < self.length


@dataclass(slots=True)
class DemoTargets:
    http_port: int
    tls_port: int
    ca_file: Path
    started: float
    hook_port: int = 0
    tcp_port: int = 0
    """The Redis-like line server (`PING` -> `+PONG`)."""
    dns_port: int = 0
    """The DNS server for `demo.test` (UDP and TCP)."""
    encoder: LiveEncoder | None = None
    """The live encoder behind `/live/stream.flv`."""
    notifications: list[dict[str, Any]] = field(default_factory=list)
    """Every message the webhook receiver got, in arrival order (Apprise's JSON: title, message, type)."""


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


def _api_app(outages: Outages) -> web.Application:
    app = web.Application()

    async def ready(_: web.Request) -> web.Response:
        return web.json_response(
            {"status": "healthy", "checks": {"database": {"status": "healthy", "latency_ms": 4}, "cache": "ok"}}
        )

    first_asked: list[float] = []

    async def flaky(_: web.Request) -> web.Response:
        # Down for a minute every few minutes, so the demo shows incidents opening and resolving.
        if not first_asked:
            first_asked.append(time.monotonic())
        if outages.failing(time.monotonic() - first_asked[0]):
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


def print_notification(body: dict[str, Any]) -> None:
    """How the demo shows a message its webhook receiver got: one block on stdout."""
    kind = str(body.get("type", "info")).upper()
    title = str(body.get("title", "")).strip()
    message = str(body.get("message", "")).strip().replace("\n", "\n    ")
    print(f"\n>>> webhook received a {kind} notification: {title}\n    {message}\n", flush=True)


def _hook_app(targets: DemoTargets, show: Callable[[dict[str, Any]], None]) -> web.Application:
    """The stand-in for Slack: takes Apprise `json://` deliveries, keeps and shows each one."""
    app = web.Application(client_max_size=1024 * 1024)

    async def hook(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response({"error": "expected a JSON body"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "expected a JSON object"}, status=400)
        targets.notifications.append(body)
        show(body)
        return web.json_response({"ok": True})

    app.router.add_post("/hook", hook)
    return app


async def start_targets(
    stack: AsyncExitStack,
    directory: Path,
    *,
    outages: Outages = Outages(),
    show: Callable[[dict[str, Any]], None] = print_notification,
) -> DemoTargets:
    """Start every demo target and the webhook receiver on 127.0.0.1 (ports chosen by the system); stopped
    when `stack` closes. `show` is called with every notification the receiver gets."""
    started = time.time()
    ca_file, cert_file, key_file = _make_certificates(directory)
    app = _api_app(outages)
    fanout = FlvFanout()
    app.router.add_get("/live/stream.flv", fanout.handle)
    dash_routes(app, started)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    encoder = LiveEncoder(fanout, asyncio.get_running_loop())
    encoder.start()
    stack.push_async_callback(encoder.stop)  # before the runner's cleanup: it ends the endless FLV responses
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_context.load_cert_chain(cert_file, key_file)
    tls_site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls_context)
    await tls_site.start()
    targets = DemoTargets(_port(site), _port(tls_site), ca_file, started, encoder=encoder)
    targets.tcp_port = await start_line_server(stack)
    targets.dns_port = await start_dns_server(stack)
    hook_runner = web.AppRunner(_hook_app(targets, show), access_log=None)
    await hook_runner.setup()
    stack.push_async_callback(hook_runner.cleanup)
    hook_site = web.TCPSite(hook_runner, "127.0.0.1", 0)
    await hook_site.start()
    targets.hook_port = _port(hook_site)
    return targets


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
notifiers:
  demo-webhook:
    urls: ["json://127.0.0.1:{targets.hook_port}/hook"]
maintenance:
  - {{name: weekly-deploy, schedule: "0 3 * * sun", duration: 30m, checks: ["shop-*"]}}
announcements:
  - title: Welcome to the prober demo
    message: "Every target here runs on your machine. orders-api fails for a minute every few minutes: watch it go
      down, an incident open and resolve, and the webhook notifications in the terminal."
    severity: info
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
    alert: {{after: 2, recover_after: 2, notify: [demo-webhook]}}
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
  - name: live-stream-flv
    type: flv
    group: streaming
    description: a moving test pattern and a quiet tone, encoded live in-process and read as a web player does
    url: {base}/live/stream.flv
    schedule: every 15s
    timeout: 8s
    duration: 4s
    content: true
  - name: live-stream-dash
    type: dash
    group: streaming
    url: {base}/dash/live.mpd
    schedule: every 10s
  - name: cache-port
    type: tcp
    group: network
    host: 127.0.0.1
    port: {targets.tcp_port}
    steps: [{{send: "PING\\r\\n"}}, {{expect: "+PONG"}}]
    expect: {{response: "< 500ms"}}
  - name: shop-dns
    type: dns
    group: network
    query: shop.demo.test
    server: 127.0.0.1:{targets.dns_port}
    expect: {{answers: {{contains: 127.0.0.1}}, authoritative: true}}
  - name: nightly-export
    type: heartbeat
    group: jobs
    description: the demo's own cron-like job pings it every 10 s and skips a few pings every 2 minutes
    token: {DEMO_PING_TOKEN}
    schedule: every 10s
    grace: 5s
    max_runtime: 8s
"""


async def demo_job(
    ping_url: str, *, every: float = 10.0, rounds: int = 12, skipped: int = 3, first: float = 2.0
) -> None:
    """The demo's cron-like job: every `every` seconds it reports a start and, a moment later, its end (exit code 0
    and a line of log) to the heartbeat `nightly-export`; the last `skipped` of every `rounds` rounds it does not
    run at all, so the heartbeat goes late, an incident opens, and the next run resolves it."""
    import aiohttp

    await asyncio.sleep(first)  # the daemon's listener is up by then
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        round_ = 0
        while True:
            if round_ % rounds < rounds - skipped:
                try:
                    async with session.post(f"{ping_url}/start"):
                        pass
                    await asyncio.sleep(min(0.5, every / 4))
                    async with session.post(f"{ping_url}/0", data=f"exported {round_ * 7 % 50 + 100} rows\n"):
                        pass
                except (aiohttp.ClientError, TimeoutError):
                    log.debug("the demo job could not ping its heartbeat")
            round_ += 1
            await asyncio.sleep(every)


async def run_demo(
    db: Path | None,
    listen: str,
    ready: asyncio.Event | None = None,
    stopping: asyncio.Event | None = None,
    *,
    outages: Outages = Outages(),
    show: Callable[[dict[str, Any]], None] = print_notification,
    started: Callable[[DemoTargets], None] | None = None,
) -> None:
    """Start the targets and a daemon watching them; serve the status page on `listen` until stopped.
    `started` is called with the running targets (tests read their notifications)."""
    from prober.daemon.service import Daemon, DaemonOptions

    with tempfile.TemporaryDirectory(prefix="prober-demo-") as tmp:
        directory = Path(tmp)
        async with AsyncExitStack() as stack:
            targets = await start_targets(stack, directory, outages=outages, show=show)
            if started is not None:
                started(targets)
            checks = directory / "demo-checks.yaml"
            checks.write_text(demo_checks_yaml(targets))
            daemon = Daemon(DaemonOptions(paths=[str(checks)], db=db or directory / "demo.db", listen=listen))
            if stopping is not None:
                daemon.stopping = stopping
            task = asyncio.create_task(daemon.run())
            job = asyncio.create_task(demo_job(f"http://{listen}/ping/{DEMO_PING_TOKEN}"))
            stack.callback(job.cancel)
            log.info(
                f"demo targets on 127.0.0.1:{targets.http_port} (http, HLS, HTTP-FLV, DASH, WebSocket), "
                f":{targets.tls_port} (tls), :{targets.tcp_port} (tcp) and :{targets.dns_port} (dns)"
            )
            log.info(f"status page: http://{listen}/   feed: http://{listen}/api/v1/status   metrics: /metrics")
            log.info(
                f"orders-api fails for {outages.length:.0f} s every {outages.every / 60:.0f} min (the first time "
                f"{outages.first:.0f} s after its first check); its notifications go to the webhook on "
                f"127.0.0.1:{targets.hook_port} and are printed here"
            )
            if ready is not None:
                ready.set()
            await task
