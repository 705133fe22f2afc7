"""Real live-media servers for the flv and rtmp tests: ffmpeg sources, nginx with the RTMP module, and an
aiohttp relay that pipes an ffmpeg FLV stream to its clients the way SRS or nginx-flv do (optionally
stalling, dropping keyframes or sending garbage). Everything listens on 127.0.0.1 and is stopped by the
fixture that started it. Missing tools fail the test with the apt-get line, never skip it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from prober.config.loader import CheckSpec, load_config
from prober.probes.media.flv import FlvReader

RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

SOURCES: dict[str, tuple[str, ...]] = {
    "healthy": ("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440"),
    "frozen": ("-f", "lavfi", "-i", "smptebars=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440"),
    "black": ("-f", "lavfi", "-i", "color=c=black:size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440"),
    "silent": ("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono"),
    "half_speed": ("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-vf", "setpts=0.5*PTS"),
}
"""Named ffmpeg inputs: a moving picture with a tone, and its frozen, black, silent and slow twins."""


def tool(name: str, package: str) -> str:
    found = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if found is None:
        pytest.fail(f"{name} is not installed, and this test needs it: apt-get install {package}")
    return found


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def encode_args(source: str, *, gop: int = 25) -> list[str]:
    """ffmpeg arguments: read `source` in real time and encode it as FLV-ready H.264 (+ AAC)."""
    args = [tool("ffmpeg", "ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-re", *SOURCES[source]]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(gop), "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-b:a", "64k"] if "-i" in SOURCES[source][4:] else ["-an"]
    return args


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def load_check(tmp_path: Path, check: Mapping[str, Any], name: str = "stream") -> CheckSpec:
    """Write one check to a YAML file and load it as `prober` does."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "checks": [{"name": name, **check}]}), encoding="utf-8")
    (spec,) = load_config([path]).checks
    return spec


@dataclass
class RtmpServer:
    port: int

    def url(self, stream: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{stream}"


@contextlib.asynccontextmanager
async def nginx_rtmp(tmp_path: Path) -> AsyncIterator[RtmpServer]:
    """Debian's nginx with libnginx-mod-rtmp on a free loopback port, `application live`."""
    nginx = tool("nginx", "nginx libnginx-mod-rtmp")
    if not os.path.exists(RTMP_MODULE):
        pytest.fail(f"{RTMP_MODULE} is missing: apt-get install libnginx-mod-rtmp")
    root = tmp_path / "nginx"
    (root / "logs").mkdir(parents=True)
    port = free_tcp_port()
    (root / "nginx.conf").write_text(
        f"load_module {RTMP_MODULE};\ndaemon off;\npid {root}/nginx.pid;\nerror_log {root}/logs/error.log;\n"
        "events {}\n"
        f"rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; record off; }} }} }}\n"
    )
    process = await asyncio.create_subprocess_exec(
        nginx, "-p", str(root), "-c", str(root / "nginx.conf"), stdin=asyncio.subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            assert time.monotonic() < deadline, (root / "logs" / "error.log").read_text()
            await asyncio.sleep(0.05)
        yield RtmpServer(port)
    finally:
        # SIGTERM: the master stops its workers too (SIGKILL would leave them listening behind it)
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=5)
        except TimeoutError:
            await stop(process)


async def publish(server: RtmpServer, stream: str, source: str = "healthy") -> asyncio.subprocess.Process:
    """ffmpeg publishing `source` to the server as `stream`; returns once the server plays it."""
    process = await asyncio.create_subprocess_exec(
        *encode_args(source), "-f", "flv", server.url(stream), stdin=asyncio.subprocess.DEVNULL
    )
    await asyncio.sleep(1.5)
    assert process.returncode is None, f"ffmpeg could not publish {source} to {server.url(stream)}"
    return process


@dataclass
class Relay:
    """An HTTP-FLV origin: `url` serves ffmpeg's FLV of `source`, altered by `mode`."""

    url: str
    sent: list[int]


@contextlib.asynccontextmanager
async def flv_relay(source: str = "healthy", mode: str = "pass", *, after: float = 0.0) -> AsyncIterator[Relay]:
    """An aiohttp relay piping one ffmpeg FLV encode to each client, as SRS does.

    mode: pass (as is); stall (nothing more after `after` seconds, connection kept open); no_keyframes
    (video keyframes dropped); garbage (the FLV header, then random bytes).
    """
    sent: list[int] = []

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "video/x-flv"})
        await response.prepare(request)
        if mode == "garbage":
            await response.write(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00")
            for _ in range(20):
                await response.write(os.urandom(4096))
                await asyncio.sleep(0.05)
            await asyncio.sleep(30)
            return response
        process = await asyncio.create_subprocess_exec(
            *encode_args(source), "-f", "flv", "-", stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE
        )
        assert process.stdout is not None
        drop = KeyframeDropper()
        began = time.monotonic()
        try:
            while chunk := await process.stdout.read(4096):
                if mode == "stall" and time.monotonic() - began > after:
                    continue  # keep draining ffmpeg (a paused pipe would never see its end), send nothing
                if mode == "no_keyframes":
                    chunk = drop(chunk)
                sent.append(len(chunk))
                await response.write(chunk)
        except ConnectionResetError:
            pass  # the client went away: the read is over
        finally:
            await stop(process)
        return response

    app = web.Application()
    app.router.add_get("/live/{name}.flv", stream)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    try:
        yield Relay(f"http://127.0.0.1:{port}/live/stream.flv", sent)
    finally:
        await runner.cleanup()


class KeyframeDropper:
    """Re-emits an FLV stream without its video keyframes (sequence headers kept)."""

    def __init__(self) -> None:
        self.reader = FlvReader()
        self.data = bytearray()
        self.header_sent = False

    def __call__(self, chunk: bytes) -> bytes:
        self.data += chunk
        kept = bytearray()
        tags = self.reader.feed(chunk, 0.0)
        if not self.header_sent and self.reader.header is not None:
            kept += self.reader.header
            self.header_sent = True
        for tag in tags:
            if tag.kind == "video" and tag.keyframe and not tag.config:
                continue
            kept += self.data[tag.offset : tag.offset + tag.size]
        return bytes(kept)
