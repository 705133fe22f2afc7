"""Scheduler benchmark: many http checks on `every 1m` against a local aiohttp server, for a few minutes.

Run on demand (pytest does not collect it):

    .venv/bin/python tests/bench/bench_scheduler.py                  # 10,000 checks, 3 minutes
    .venv/bin/python tests/bench/bench_scheduler.py --seconds 75     # shorter
    .venv/bin/python tests/bench/bench_scheduler.py --trivial        # scheduler alone, no HTTP

Prints start lag p50/p99/max, missed and skipped runs, CPU % of this process (the target server runs in a
separate process and is reported apart), peak RSS, and results per second. Goals (docs/performance.md): p99 lag
< 250 ms, no missed runs, under one core. Only 127.0.0.1 traffic. It never writes outside a temporary
directory (or the `--db` file asked for).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from prober.config.loader import CheckSpec, load_config
from prober.probes import PROBES
from prober.scheduling.runner import Runner
from prober.scheduling.scheduler import Scheduler

GOAL_P99 = 0.250


# -- the target server (a separate process, so its CPU is not counted as the prober's) ----------------


def serve() -> None:
    """Serve `200 ok` on every path of a free loopback port; print the port, then run until killed."""
    from aiohttp import web

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", ok)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=4096).start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


async def start_server() -> tuple[asyncio.subprocess.Process, int]:
    process = await asyncio.create_subprocess_exec(sys.executable, __file__, "--serve", stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    return process, int(line)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process, from /proc (0 where /proc is absent)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class GcPauses:
    """Collects how long the garbage collector stops the world, per generation (it stalls the event loop)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._began)

    def summary(self) -> dict[str, str]:
        return {
            f"gen{gen}": f"{len(items)} x, max {max(items, default=0) * 1000:.0f} ms"
            for gen, items in self.pauses.items()
        }


async def watch_loop(oversleeps: list[float], stop: asyncio.Event) -> None:
    """Sleep 20 ms again and again and record how late each wake-up is: how much the event loop (or the
    machine, when other processes take the CPU) held everything up, independently of the scheduler."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        began = loop.time()
        await asyncio.sleep(0.02)
        oversleeps.append(loop.time() - began - 0.02)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the checks ------------------------------------------------------------------------------------


def build_checks(count: int, port: int, schedule: str, directory: Path) -> list[CheckSpec]:
    """Write the checks as YAML and load them the way the daemon does."""
    lines = ["version: 1", "defaults:", f'  schedule: "{schedule}"', "  timeout: 10s", "checks:"]
    for index in range(count):
        lines.append(f"  - name: bench-{index:05d}")
        lines.append("    type: http")
        lines.append(f"    url: http://127.0.0.1:{port}/check/{index}")
    path = directory / "bench.yaml"
    path.write_text("\n".join(lines) + "\n")
    return load_config([path], env={}).checks


def percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def expected_runs(specs: Sequence[CheckSpec], start: float, end: float) -> int:
    """Slots of all checks strictly after `start` and at or before `end`: what a perfect scheduler runs."""
    total = 0
    for spec in specs:
        slot = spec.model.schedule.next_timestamp(start, spec.name)
        while slot <= end:
            total += 1
            slot = spec.model.schedule.next_timestamp(slot, spec.name)
    return total


# -- the run ---------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    server, port = await start_server()
    lags: list[float] = []
    scheduled: list[float] = []
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    store: Any = None
    try:
        with tempfile.TemporaryDirectory(prefix="prober-bench-") as tmp:
            setup_began = time.perf_counter()
            specs = build_checks(args.checks, port, args.schedule, Path(tmp))
            setup_seconds = time.perf_counter() - setup_began
            use_http = "http" in PROBES and not args.trivial
            runner = Runner(location="bench", artifacts_dir=Path(tmp) / "artifacts")
            if args.db:
                from prober.store import Store

                store = Store(Path(args.db))
                await store.start()

            async def run(spec: CheckSpec, scheduled_at: datetime) -> None:
                slot = scheduled_at.timestamp()
                lags.append(time.time() - slot)
                scheduled.append(slot)
                if not use_http:
                    await asyncio.sleep(0.005)
                    statuses["up"] += 1
                    return
                result = await runner.run(spec)
                statuses[result.status] += 1
                if result.error:
                    errors[result.error] += 1
                if store is not None:
                    await store.write(result)

            scheduler = Scheduler(specs, run, max_concurrency=args.max_concurrency, batch_window=args.batch_window)
            if args.gc_freeze:
                gc.collect()
                gc.freeze()
            load_before = os.getloadavg()[0]
            gc_pauses = GcPauses()
            gc.callbacks.append(gc_pauses)
            cpu_began, server_cpu_began = own_cpu_seconds(), process_cpu_seconds(server.pid)
            oversleeps: list[float] = []
            watching = asyncio.Event()
            watcher = asyncio.create_task(watch_loop(oversleeps, watching))
            began = time.time()
            await scheduler.start()
            await report_progress(scheduler, began, args.seconds, lags, oversleeps)
            ended = time.time()
            watching.set()
            await watcher
            gc.callbacks.remove(gc_pauses)
            await scheduler.stop(grace=15)
            cpu = own_cpu_seconds() - cpu_began
            server_cpu = process_cpu_seconds(server.pid) - server_cpu_began
            wall = ended - began
            stats = scheduler.stats(checks=False)
            await runner.resources.aclose()
            if store is not None:
                await store.close()
    finally:
        server.kill()
        await server.wait()
    ordered = sorted(lags)
    return {
        "checks": args.checks,
        "schedule": args.schedule,
        "run_function": "Runner + http probe" if use_http else "trivial (sleep 5ms; no http probe)",
        "store": args.db or None,
        "seconds": round(wall, 1),
        "setup_seconds": round(setup_seconds, 1),
        "runs": stats.runs,
        # Slots due more than a second before the end: every one of them should have started.
        "slots_due": expected_runs(specs, began, ended - 1.0),
        "slots_started": sum(1 for slot in scheduled if slot <= ended - 1.0),
        "completed": stats.completed,
        "results_per_second": round(stats.completed / wall, 1),
        "lag_p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
        "lag_p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
        "lag_max_ms": round((ordered[-1] if ordered else math.nan) * 1000, 2),
        "missed": stats.missed,
        "skipped": stats.skipped,
        "run_errors": stats.errors,
        "statuses": dict(statuses),
        "top_errors": dict(errors.most_common(3)),
        "cpu_percent": round(100 * cpu / wall, 1),
        "server_cpu_percent": round(100 * server_cpu / wall, 1),
        "loop_oversleep_p99_ms": round(percentile(sorted(oversleeps), 0.99) * 1000, 2),
        "loop_oversleep_max_ms": round(max(oversleeps, default=math.nan) * 1000, 2),
        "gc_freeze": args.gc_freeze,
        "batch_window_ms": args.batch_window * 1000,
        "event_loop": "uvloop" if args.uvloop else "asyncio",
        "gc_pauses": gc_pauses.summary(),
        "load_average": f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)",
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


async def report_progress(
    scheduler: Scheduler, began: float, seconds: float, lags: list[float], oversleeps: list[float]
) -> None:
    """Every 10 s, one line to stderr: counters, and the last interval's lag p99 next to how late the
    event loop itself woke up (when both are high, something else held the CPU)."""
    deadline = began + seconds
    seen_lags = seen_sleeps = 0
    while (remaining := deadline - time.time()) > 0:
        await asyncio.sleep(min(10.0, remaining))
        recent = sorted(lags[seen_lags:])
        late = sorted(oversleeps[seen_sleeps:])
        seen_lags, seen_sleeps = len(lags), len(oversleeps)
        stats = scheduler.stats(checks=False)
        print(
            f"  t={time.time() - began:6.1f}s runs={stats.runs:6d} in_flight={stats.in_flight:3d} "
            f"waiting={stats.waiting:3d} missed={stats.missed} skipped={stats.skipped} "
            f"lag p99={percentile(recent, 0.99) * 1000:7.1f} ms  "
            f"loop oversleep p99={percentile(late, 0.99) * 1000:6.1f} ms  load={os.getloadavg()[0]:.1f}",
            file=sys.stderr,
            flush=True,
        )


def verdict(report: dict[str, Any]) -> list[str]:
    lines = [f"{key:20} {value}" for key, value in report.items()]
    goals = {
        "p99 lag < 250 ms": report["lag_p99_ms"] < GOAL_P99 * 1000,
        "no missed runs": report["missed"] == 0 and report["slots_started"] == report["slots_due"],
        "under one core": report["cpu_percent"] < 100,
    }
    lines += [f"goal: {name:18} {'met' if ok else 'NOT MET'}" for name, ok in goals.items()]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--checks", type=int, default=10_000, help="number of http checks (default 10000)")
    parser.add_argument("--seconds", type=float, default=180.0, help="how long to run (default 180)")
    parser.add_argument("--schedule", default="every 1m", help='schedule of every check (default "every 1m")')
    parser.add_argument("--max-concurrency", type=int, default=64, help="the scheduler's global bound (64)")
    parser.add_argument(
        "--batch-window", type=float, default=0.05, help="the scheduler's batch window in seconds, as the daemon's"
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as `prober run` does when installed")
    parser.add_argument("--trivial", action="store_true", help="a 5 ms sleep instead of the real http probe")
    parser.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="gc.freeze() after loading the checks, as the daemon does, so full collections skip them (default)",
    )
    parser.add_argument("--db", help="also write every result through prober.store.Store into this SQLite file")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    print(f"benchmark: {args.checks} checks on {args.schedule!r} for {args.seconds:g}s", file=sys.stderr)
    if args.uvloop:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            report = runner.run(bench(args))
    else:
        report = asyncio.run(bench(args))
    print(json.dumps(report) if args.json else "\n".join(verdict(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
