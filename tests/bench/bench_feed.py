"""Status feed benchmark: latency of GET /api/v1/status and /api/v1/history?days=90 over HTTP on a
1,000 checks × 90 days database.

    .venv/bin/python tests/bench/bench_feed.py [--db FILE] [--checks 1000] [--days 90] [--requests 200]

Without --db (or when the file does not exist) the database is generated first with gen_feed_db.py
(about 3 minutes for the full size; reuse it with --db). The API is served by `create_app` on
127.0.0.1 and queried with aiohttp, one request at a time, in four phases:

  1. cold: the first request after start (every check's uptime windows and latency computed);
  2. uncached, idle: the response cache off (cache_ttl=0), so every request builds the feed;
  3. uncached, live: the same while results arrive as from 1,000 checks on `every 1m` (about 17 per
     second, written through Store.write like the daemon does), so changed checks are recomputed;
  4. cached: cache_ttl=1 (as served), requests back to back while results arrive.

Also the daily history (/api/v1/history?days=90): cold (the first after start), uncached idle and
uncached live (response cache off, results arriving). Prints p50/p95/max per phase, and last the two
targets of docs/performance.md: status uncached p95 < 50 ms, history uncached p95 < 100 ms.
Not collected by pytest (not named test_*).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from gen_feed_db import check_name, check_type, generate  # this directory is on sys.path when run as a script

from prober.api import create_app
from prober.api.app import API_KEY
from prober.config.loader import Config, load_config
from prober.results import Result
from prober.store import Store


@dataclass
class Options:
    location: str = "default"


@dataclass
class Source:
    store: Store
    config: Config
    options: Options = field(default_factory=Options)

    async def accept(self, result: Result) -> bool:
        return await self.store.write(result)


def stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"p50 {p50 * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms   max {ordered[-1] * 1000:6.1f} ms   (n={len(ordered)})"
    )


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def timed_get(session: aiohttp.ClientSession, url: str) -> tuple[float, int]:
    began = time.perf_counter()
    async with session.get(url) as response:
        body = await response.read()
        assert response.status == 200, (url, response.status)
    return time.perf_counter() - began, len(body)


async def live_writes(store: Store, checks: int, per_second: float, stop: asyncio.Event) -> int:
    """Results for checks in turn, as a scheduler running every check once a minute would write them."""
    written = 0
    index = 0
    while not stop.is_set():
        name = check_name(index % checks)
        await store.write(
            Result(
                check=name,
                type=check_type(index % checks),
                location="default",
                started_at=datetime.now(UTC),
                duration_ms=42.0,
                status="up",
                metrics={"status": 200, "latency": 0.041},
            )
        )
        written += 1
        index += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1 / per_second)
    return written


class BuildTimer:
    """Wraps the app's FeedBuilder.build to record each build's CPU time (its worker thread's) and wall time."""

    def __init__(self, app: web.Application) -> None:
        builder = app[API_KEY].views.builder
        self.cpu: list[float] = []
        self.wall: list[float] = []
        original = builder.build

        def build() -> Any:
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return original()
            finally:
                self.cpu.append(time.thread_time() - cpu)
                self.wall.append(time.perf_counter() - wall)

        builder.build = build  # type: ignore[method-assign]

    def report(self, since: int = 0) -> str:
        return f"build CPU {stats(self.cpu[since:])}"


async def serve(source: Source, ttl: float) -> tuple[web.AppRunner, str, BuildTimer]:
    app = create_app(source, cache_ttl=ttl, warm_up=False)
    timer = BuildTimer(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    port = server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}", timer


async def run(args: argparse.Namespace) -> None:
    config = load_config([str(args.config)])
    async with Store(args.db, synchronous="NORMAL") as store, aiohttp.ClientSession() as session:
        source = Source(store, config)
        runner, base, timer = await serve(source, 0.0)
        try:
            cold, size = await timed_get(session, base + "/api/v1/status")
            print(f"checks {len(config.checks)}, feed {size:,} bytes, load average {os.getloadavg()[0]:.1f}")
            print(f"1. cold first build:   {cold * 1000:8.1f} ms")
            idle = [(await timed_get(session, base + "/api/v1/status"))[0] for _ in range(args.requests)]
            print(f"2. uncached, idle:     {stats(idle)}")
            print(f"                       {timer.report(1)}")
            mark = len(timer.cpu)
            stop = asyncio.Event()
            writer = asyncio.create_task(live_writes(store, args.checks, args.checks / 60, stop))
            live = []
            for _ in range(args.requests):
                live.append((await timed_get(session, base + "/api/v1/status"))[0])
                await asyncio.sleep(0.05)
            stop.set()
            written = await writer
            print(f"3. uncached, live:     {stats(live)}   ({written} results written meanwhile)")
            print(f"                       {timer.report(mark)}")
            history = base + "/api/v1/history?days=90"
            history_cold = (await timed_get(session, history))[0]
            print(f"   history cold:       {history_cold * 1000:8.1f} ms")
            history_idle = [(await timed_get(session, history))[0] for _ in range(args.requests)]
            print(f"   history uncached, idle: {stats(history_idle)}")
            stop = asyncio.Event()
            writer = asyncio.create_task(live_writes(store, args.checks, args.checks / 60, stop))
            history_live = []
            for _ in range(args.requests):
                history_live.append((await timed_get(session, history))[0])
                await asyncio.sleep(0.05)
            stop.set()
            written = await writer
            print(f"   history uncached, live: {stats(history_live)}   ({written} results written meanwhile)")
            status_p95 = max(p95(idle), p95(live))
            history_p95 = max(p95(history_idle), p95(history_live))
            print(
                f"target 5: status uncached p95 {status_p95 * 1000:.1f} ms (< 50), "
                f"history?days=90 uncached p95 {history_p95 * 1000:.1f} ms (< 100)"
            )
        finally:
            await runner.cleanup()
        runner, base, timer = await serve(source, 1.0)
        try:
            await timed_get(session, base + "/api/v1/status")
            stop = asyncio.Event()
            writer = asyncio.create_task(live_writes(store, args.checks, args.checks / 60, stop))
            cached = [(await timed_get(session, base + "/api/v1/status"))[0] for _ in range(args.requests * 5)]
            stop.set()
            await writer
            print(f"4. cached (ttl 1 s):   {stats(cached)}   ({len(timer.cpu)} builds, in the background)")
            print(f"   load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        finally:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=None, help="a database made by gen_feed_db.py (made if missing)")
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    if args.db is None:
        args.db = Path(f"feed-{args.checks}x{args.days}.db")
    args.config = args.db.with_suffix(".checks.yaml")
    if not args.db.exists():
        print(f"generating {args.db} ({args.checks} checks × {args.days} days) …", file=sys.stderr)
        made = generate(args.db, checks=args.checks, days=args.days)
        print(f"  {made.results:,} results in {made.seconds:.0f} s", file=sys.stderr)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
