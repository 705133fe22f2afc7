"""Check page benchmark: latency of GET /api/v1/checks/NAME for one check with 30 days of history.

    .venv/bin/python tests/bench/bench_check_page.py [--per-hour 60] [--days 30] [--checks 1] [--requests 50]

Generates the database with gen_feed_db.py (one result per check every minute by default: 43,000 results
and 720 hourly rollups for one check; --per-hour 360 is a check every 10 s), serves it with `create_app`
on 127.0.0.1 and asks, one request at a time, with the response cache off (every request builds the feed
and the page) and on (as served). For comparison it times GET /api/v1/status on the same database and
prints the ratio. Target: the uncached answer under 50 ms. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from gen_feed_db import check_name, generate

from prober.api import create_app
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


def figures(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1000, ordered[int(len(ordered) * 0.95)] * 1000, ordered[-1] * 1000


async def timed(session: aiohttp.ClientSession, url: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
            assert response.status == 200, (url, response.status)
        samples.append(time.perf_counter() - began)
    return samples


async def run(db: Path, config_path: Path, requests: int) -> None:
    config = load_config([config_path])
    async with Store(db) as store:
        for ttl, label in ((0.0, "uncached"), (1.0, "cached (1 s)")):
            app = create_app(Source(store, config), cache_ttl=ttl, warm_up=False)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            base = f"http://127.0.0.1:{port}"
            try:
                async with aiohttp.ClientSession() as session:
                    cold = await timed(session, f"{base}/api/v1/checks/{check_name(0)}", 1)
                    page = await timed(session, f"{base}/api/v1/checks/{check_name(0)}", requests)
                    feed = await timed(session, f"{base}/api/v1/status", requests)
            finally:
                await runner.cleanup()
            p50, p95, most = figures(page)
            f50, f95, _ = figures(feed)
            print(
                f"{label:>13}: check page cold {cold[0] * 1000:.1f} ms, p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
                f"max {most:.1f} ms | /api/v1/status p50 {f50:.1f} ms, p95 {f95:.1f} ms | "
                f"ratio page/feed p50 {p50 / f50:.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-hour", type=int, default=60)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--checks", type=int, default=1)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prober-bench-") as tmp:
        made = generate(Path(tmp) / "bench.db", checks=args.checks, days=args.days, per_hour=args.per_hour)
        print(f"{made.results:,} results for {made.checks} check(s) over {args.days} days in {made.seconds:.1f} s")
        asyncio.run(run(made.db, made.config, args.requests))


if __name__ == "__main__":
    main()
