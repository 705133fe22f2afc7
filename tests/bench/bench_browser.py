"""Benchmark: browser checks through prober against the same page loaded by a bare Playwright script.

Run on demand (not collected by pytest):  .venv/bin/python tests/bench/bench_browser.py [-n 50] [-c 2] [--rounds 5]

Both sides load the same simple page (a heading, a paragraph, one image) from a local aiohttp server that
runs in its own process, so its CPU is not counted, with a fresh browser context per load and at most
`-c` loads at once:
  * prober — Runner + browser probe: shared Chromium pool, injected Web Vitals observers, event recorders,
             DevTools byte counting, vitals/title reads, conditions, Result;
  * bare   — async Playwright: new_context, new_page, goto(wait_until=load), close. Nothing measured.
Each side launches its own Chromium first (launch not counted) and warms up with 3 loads. The `-n` loads
of each side are split into `--rounds` alternating rounds and the totals compared, because the machine may
be shared and noisy: slow spells then hit both sides alike.
CPU is that of the whole process tree (this Python, Playwright's node driver, every Chromium process,
including renderers that already exited, via their parents' reaped-children times). Peak memory is sampled
every 100 ms during one more, untimed prober phase (the bare script's browser closed by then) as the sum
of PSS (and of RSS) over that tree; "idle" is the same tree just before, Chromium launched, no page open.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

SERVER = textwrap.dedent(
    """
    import base64, sys
    from aiohttp import web
    PIXEL = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
    PAGE = ("<!doctype html><html><head><meta charset=utf-8><title>Bench page</title></head><body>"
            "<h1 id=main>Welcome to the shop</h1><p>Everything is fine.</p>"
            "<img src=/pixel.png width=300 height=200></body></html>")
    async def page(request):
        return web.Response(text=PAGE, content_type="text/html")
    async def pixel(request):
        return web.Response(body=PIXEL, content_type="image/png")
    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/pixel.png", pixel)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
    """
)

TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry))
    return tree


def process_tree(root: int, exclude: set[int]) -> list[int]:
    tree, found, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        if pid in exclude:
            continue
        found.append(pid)
        todo.extend(tree.get(pid, []))
    return found


def tree_cpu(exclude: set[int]) -> float:
    """CPU seconds of this process and its descendants, including reaped descendants (cutime/cstime)."""
    total = 0
    for pid in process_tree(os.getpid(), exclude):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])
    return total / TICKS


def tree_memory(exclude: set[int]) -> tuple[int, int]:
    """(PSS, RSS) in bytes summed over this process tree."""
    pss = rss = 0
    for pid in process_tree(os.getpid(), exclude):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return pss, rss


@dataclass
class Phase:
    wall: float = 0.0
    cpu: float = 0.0
    loads: int = 0

    def add(self, wall: float, cpu: float, loads: int) -> None:
        self.wall += wall
        self.cpu += cpu
        self.loads += loads


async def measured(run: Callable[[], Awaitable[None]], exclude: set[int], loads: int, phase: Phase) -> None:
    cpu, wall = tree_cpu(exclude), time.perf_counter()
    await run()
    phase.add(time.perf_counter() - wall, tree_cpu(exclude) - cpu, loads)


class ProberSide:
    def __init__(self, url: str, artifacts: Path) -> None:
        from prober.config.loader import load_config
        from prober.scheduling.runner import Runner

        path = artifacts / "bench.yaml"
        path.write_text(
            f"version: 1\nchecks:\n  - {{name: bench, type: browser, url: '{url}', timeout: 20s}}\n",
            encoding="utf-8",
        )
        self.spec = load_config([path]).checks[0]
        self.runner = Runner(artifacts_dir=artifacts)

    async def loads(self, n: int, concurrency: int) -> None:
        bound = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with bound:
                result = await self.runner.run(self.spec)
            assert result.status == "up", result.error

        await asyncio.gather(*(one() for _ in range(n)))

    async def close(self) -> None:
        await self.runner.resources.aclose()


class BareSide:
    def __init__(self, url: str) -> None:
        self.url = url

    async def start(self, executable: str) -> None:
        from playwright.async_api import async_playwright

        from prober.probes.browser.pool import CHROMIUM_ARGS  # the flags prober itself launches Chromium with

        self.playwright = await async_playwright().start()
        self.browser = await self.playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))

    async def loads(self, n: int, concurrency: int) -> None:
        bound = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with bound:
                context = await self.browser.new_context(viewport={"width": 1280, "height": 720})
                page = await context.new_page()
                response = await page.goto(self.url, wait_until="load")
                assert response is not None and response.status == 200
                await context.close()

        await asyncio.gather(*(one() for _ in range(n)))

    async def close(self) -> None:
        if self.browser.is_connected():
            await self.browser.close()
            await self.playwright.stop()


async def sample_memory(exclude: set[int], peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        pss, rss = tree_memory(exclude)
        peak[0], peak[1] = max(peak[0], pss), max(peak[1], rss)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def bench(url: str, n: int, concurrency: int, rounds: int, server_pid: int) -> None:
    executable = os.environ.get("PROBER_CHROMIUM", "/usr/bin/chromium")
    exclude = {server_pid}
    with tempfile.TemporaryDirectory() as tmp:
        prober_side = ProberSide(url, Path(tmp))
        bare_side = BareSide(url)
        await bare_side.start(executable)
        await bare_side.loads(3, concurrency)
        await prober_side.loads(3, concurrency)  # launches the pool's Chromium
        prober, bare = Phase(), Phase()
        peak = [0, 0]
        try:
            for index in range(rounds):
                share = n // rounds + (1 if index < n % rounds else 0)
                await measured(functools.partial(bare_side.loads, share, concurrency), exclude, share, bare)
                await measured(functools.partial(prober_side.loads, share, concurrency), exclude, share, prober)
            await bare_side.close()
            await asyncio.sleep(1)  # let the closed contexts' renderers exit
            idle_pss, idle_rss = tree_memory(exclude)
            # Memory in a phase of its own: reading smaps costs CPU that must not count as prober's.
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample_memory(exclude, peak, stop))
            await prober_side.loads(n, concurrency)
            stop.set()
            await sampler
        finally:
            await prober_side.close()
            await bare_side.close()  # idempotent

    print(
        f"{n} loads per side of {url} in {rounds} alternating rounds, at most {concurrency} at once, fresh context each"
    )
    print(f"{'':8} {'wall s':>8} {'cpu s':>8} {'ms/load':>8} {'cpu ms/load':>12}")
    for name, phase in (("bare", bare), ("prober", prober)):
        print(
            f"{name:8} {phase.wall:8.2f} {phase.cpu:8.2f} {phase.wall / phase.loads * 1000:8.1f}"
            f" {phase.cpu / phase.loads * 1000:12.1f}"
        )
    print(f"ratio prober/bare: wall {prober.wall / bare.wall:.2f}x, cpu {prober.cpu / bare.cpu:.2f}x (goal <= 1.2x)")
    print(
        f"memory of prober's process tree (Python + driver + Chromium): idle PSS {idle_pss / 2**20:.0f} MiB"
        f" (RSS sum {idle_rss / 2**20:.0f} MiB); peak with {concurrency} concurrent pages PSS"
        f" {peak[0] / 2**20:.0f} MiB (RSS sum {peak[1] / 2**20:.0f} MiB)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=50, help="loads per side, in all (default 50)")
    parser.add_argument("-c", "--concurrency", type=int, default=2, help="loads at once (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds the loads are split into (default 5)")
    args = parser.parse_args(argv)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        wait_port(port)
        asyncio.run(bench(f"http://127.0.0.1:{port}/", args.n, args.concurrency, args.rounds, server.pid))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
