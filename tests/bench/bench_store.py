"""Store benchmark: sustained batched insert rate and database bytes per result. Run on demand:

    .venv/bin/python tests/bench/bench_store.py [--seconds 10 | --results 100000] [--producers 200] [--checks 1000]

Not collected by pytest (not named test_*). It measures, on a fresh file in a temporary directory:
  1. `write()` from many concurrent producers (the daemon's path: each awaits its own commit) for
     --seconds: results/s, commits, mean batch, write latency p50/p99 (call to confirmed commit);
  2. `write_many()` in batches of --ingest-batch (an agent's push): results/s;
  3. the file size divided by the results stored (rollups, indexes and current state included), with a
     per-table breakdown when SQLite has the dbstat table.
Results look like a real http check's (the example of docs/api.md), spread over simulated time so each
check gets one result a minute and the hourly rollups fill as they would.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prober.results import Assertion, Result, Status
from prober.store import Store


class Clock:
    """Simulated start times: `checks` checks, each run once a minute, results in start order."""

    def __init__(self, checks: int) -> None:
        self.start = datetime(2026, 1, 1, tzinfo=UTC)
        self.step = timedelta(seconds=60 / checks)
        self.checks = checks
        self.n = 0

    def result(self) -> Result:
        index = self.n
        self.n += 1
        status: Status = "down" if index % 97 == 0 else "up"
        # as the http probe reports them: phases in seconds rounded to the microsecond
        latency = round(0.02 + (index * 7919 % 50_000) / 1e6 * 3, 6)
        return Result(
            check=f"check-{index % self.checks:05d}",
            type="http",
            location="default",
            started_at=self.start + self.step * index,
            duration_ms=latency * 1000 + 1.5 + (index % 1000) / 997,
            status=status,
            error="HTTP status 503, expected 2xx" if status == "down" else None,
            metrics={
                "status": 503 if status == "down" else 200,
                "latency": latency,
                "dns": round(0.0008 + (index % 13) / 1e5, 6),
                "connect": round(0.0015 + (index % 17) / 1e5, 6),
                "tls": round(0.009 + (index % 31) / 1e5, 6),
                "ttfb": round(latency * 0.8, 6),
                "transfer": round(latency * 0.1, 6),
                "body_size": 1234,
                "redirects": 0,
            },
            assertions=[
                Assertion(
                    metric="status",
                    condition="2xx",
                    actual=503 if status == "down" else 200,
                    ok=status != "down",
                    level="expect",
                )
            ],
        )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def concurrent_writes(
    store: Store, clock: Clock, producers: int, seconds: float, until: int | None = None
) -> dict[str, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def producer() -> None:
        while time.perf_counter() < deadline if until is None else clock.n < until:
            result = clock.result()
            began = time.perf_counter()
            await store.write(result)
            latencies.append(time.perf_counter() - began)

    commits_before = store.stats.commits
    began = time.perf_counter()
    await asyncio.gather(*(producer() for _ in range(producers)))
    elapsed = time.perf_counter() - began
    commits = store.stats.commits - commits_before
    return {
        "results": len(latencies),
        "results_per_s": len(latencies) / elapsed,
        "commits": commits,
        "mean_batch": len(latencies) / max(1, commits),
        "write_p50_ms": percentile(latencies, 50) * 1000,
        "write_p99_ms": percentile(latencies, 99) * 1000,
    }


async def bulk_writes(
    store: Store, clock: Clock, batch: int, seconds: float, until: int | None = None
) -> dict[str, float]:
    written = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds if until is None else clock.n < until:
        written += await store.write_many([clock.result() for _ in range(batch)])
    elapsed = time.perf_counter() - began
    return {"results": written, "results_per_s": written / elapsed}


def table_sizes(path: Path) -> dict[str, int]:
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        connection.close()
    return {str(name): int(size) for name, size in rows}


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.db"
        clock = Clock(args.checks)
        store = Store(path, synchronous=args.synchronous)
        await store.start()
        half = None if args.results is None else args.results // 2
        concurrent = await concurrent_writes(store, clock, args.producers, args.seconds, half)
        bulk = await bulk_writes(store, clock, args.ingest_batch, args.seconds, args.results)
        busy_us = store.stats.commit_seconds / max(1, store.stats.results) * 1e6
        await store.close()
        total = clock.n
        connection = sqlite3.connect(path)
        try:
            pages, page_size = (
                connection.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_count", "page_size")
            )
        finally:
            connection.close()
        size = pages * page_size
        print(f"synchronous={args.synchronous} producers={args.producers} checks={args.checks}")
        print(
            "write() concurrent:  {results:.0f} results, {results_per_s:,.0f} results/s, {commits:.0f} commits "
            "(mean batch {mean_batch:.1f}), write latency p50 {write_p50_ms:.1f} ms p99 {write_p99_ms:.1f} ms".format(
                **concurrent
            )
        )
        print(
            "write_many({batch}):    {results:.0f} results, {results_per_s:,.0f} results/s".format(
                batch=args.ingest_batch, **bulk
            )
        )
        print(f"writer thread busy {busy_us:.0f} µs per result (a ceiling of {1e6 / busy_us:,.0f} results/s)")
        print(
            f"database: {size:,} bytes (page_count × page_size) for {total:,} results = "
            f"{size / total:.0f} bytes per result"
        )
        for name, table_bytes in table_sizes(path).items():
            print(f"  {name:28s} {table_bytes:>14,} bytes  {table_bytes / total:7.1f} bytes/result")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    parser.add_argument(
        "--results", type=int, default=None, help="write exactly this many results (half per phase) instead"
    )
    parser.add_argument("--producers", type=int, default=200, help="concurrent write() callers")
    parser.add_argument("--checks", type=int, default=1000, help="distinct checks the results belong to")
    parser.add_argument("--ingest-batch", type=int, default=500, help="results per write_many()")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
