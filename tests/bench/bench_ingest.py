"""Ingest benchmark: how many results per second one hub accepts from agents. Run on demand:

    .venv/bin/python tests/bench/bench_ingest.py [--seconds 20] [--agents 4] [--batch 500] [--checks 1000]

Not collected by pytest. It starts a real hub (`prober run` in a subprocess, on a free loopback port, with ingest
tokens for --agents locations and --checks checks listing them all; the hub itself probes nothing), then every
simulated agent POSTs batches of --batch fresh results to /api/v1/ingest as fast as the hub answers, for
--seconds. It prints the results/s accepted, the request latency, the hub's CPU milliseconds per 1,000 results, and,
as the peer from the same run, the rate and CPU per 1,000 results of `Store.write_many()` called directly on a
fresh database with the same batches: the ratio is what HTTP, authentication, validation and the alert state
cost on top of SQLite. `--py-spy FILE` samples the hub meanwhile (py-spy's raw format: one stack a line).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from prober.results import Assertion, Result
from prober.store import Store

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def make_result(check: str, location: str, started_at: datetime) -> Result:
    return Result(
        check=check,
        type="http",
        location=location,
        started_at=started_at,
        duration_ms=41.7,
        status="up",
        error=None,
        metrics={"status": 200, "latency": 0.0417, "dns": 0.001, "connect": 0.002, "tls": 0.011, "ttfb": 0.03},
        assertions=[Assertion(metric="status", condition="2xx", actual=200, ok=True, level="expect")],
    )


class Batches:
    """Fresh results for a location: every check in turn, started within the last few minutes."""

    def __init__(self, location: str, checks: int) -> None:
        self.location, self.checks, self.n = location, checks, 0

    def next(self, size: int) -> list[Result]:
        now = datetime.now(UTC) - timedelta(seconds=60)
        out = []
        for _ in range(size):
            out.append(make_result(f"check-{self.n % self.checks:05d}", self.location, now))
            self.n += 1
        return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_checks(path: Path, agents: int, checks: int) -> dict[str, str]:
    tokens = {f"bench-{i}": f"token-{i}-{os.urandom(8).hex()}" for i in range(agents)}
    lines = ["version: 1", "ingest:", "  tokens:"]
    lines += [f"    {location}: {token}" for location, token in tokens.items()]
    lines += ["defaults:", "  schedule: every 1m", f"  locations: [{', '.join(tokens)}]", "checks:"]
    lines += [f"  - {{name: check-{i:05d}, type: http, url: 'http://127.0.0.1:9/'}}" for i in range(checks)]
    path.write_text("\n".join(lines) + "\n")
    return tokens


async def agent(
    session: aiohttp.ClientSession, url: str, token: str, batches: Batches, size: int, deadline: float
) -> tuple[int, list[float]]:
    accepted, latencies = 0, []
    headers = {"Authorization": f"Bearer {token}"}
    while time.perf_counter() < deadline:
        body: dict[str, Any] = {"results": [r.to_json() for r in batches.next(size)]}
        began = time.perf_counter()
        async with session.post(url, json=body, headers=headers) as response:
            answer = await response.json()
            if response.status != 200:
                raise RuntimeError(f"ingest answered {response.status}: {answer}")
        latencies.append(time.perf_counter() - began)
        accepted += int(answer["accepted"])
    return accepted, latencies


async def wait_healthy(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if proc.returncode is not None:
                raise RuntimeError("the hub exited during start")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the hub did not answer /healthz within 30 s")


async def over_http(args: argparse.Namespace, directory: Path) -> dict[str, float]:
    checks = directory / "checks.yaml"
    tokens = write_checks(checks, args.agents, args.checks)
    port = free_port()
    profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *profile, "-m", "prober", "run", str(checks), "--db", str(directory / "hub.db"),
        "--location", "hub", "--listen", f"127.0.0.1:{port}", "--log-level", "warning",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_healthy(f"{base}/healthz", proc)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            # warm-up: one batch per agent (first writes create the current-state rows)
            await asyncio.gather(
                *(agent(session, f"{base}/api/v1/ingest", tok, Batches(loc, args.checks), args.batch, 0)
                  for loc, tok in tokens.items())
            )  # fmt: skip
            cpu_before = cpu_seconds(proc.pid)
            began = time.perf_counter()
            deadline = began + args.seconds
            spy = None
            if args.py_spy:  # sample the hub while the agents push (collapsed stacks: one line per stack)
                spy = await asyncio.create_subprocess_exec(
                    str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(proc.pid), "--format", "raw",
                    "--duration", str(int(args.seconds)), "--rate", "200", "--nonblocking", "-o", args.py_spy,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
            outcomes = await asyncio.gather(
                *(agent(session, f"{base}/api/v1/ingest", tok, Batches(loc, args.checks), args.batch, deadline)
                  for loc, tok in tokens.items())
            )  # fmt: skip
            elapsed = time.perf_counter() - began
            cpu = cpu_seconds(proc.pid) - cpu_before
            if spy is not None:
                await spy.wait()
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
    accepted = sum(n for n, _ in outcomes)
    latencies = sorted(x for _, lats in outcomes for x in lats)
    return {
        "accepted": accepted,
        "per_s": accepted / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "cpu_ms_per_1000": cpu / max(1, accepted) * 1e6,
        "cpu_share": cpu / elapsed,
    }


async def direct(args: argparse.Namespace, directory: Path) -> dict[str, float]:
    """The peer: `Store.write_many()` of the same rows (4 locations' batches in turn), in this process; its
    CPU time counts the writes only (the rows are built before the clock starts)."""
    store = Store(directory / "direct.db")
    await store.start()
    sources = [Batches(f"bench-{i}", args.checks) for i in range(args.agents)]
    for source in sources:
        await store.write_many(source.next(args.batch))
    written, rounds = 0, 0
    spent = cpu = 0.0
    while spent < args.seconds:
        batch = sources[rounds % len(sources)].next(args.batch)
        rounds += 1
        began, cpu_began = time.perf_counter(), time.process_time()
        written += await store.write_many(batch)
        spent += time.perf_counter() - began
        cpu += time.process_time() - cpu_began
    await store.close()
    return {"per_s": written / spent, "cpu_ms_per_1000": cpu / max(1, written) * 1e6}


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        http = await over_http(args, directory)
        peer = await direct(args, directory)
    print(f"agents={args.agents} batch={args.batch} checks={args.checks} seconds={args.seconds} cpus={os.cpu_count()}")
    print(
        "hub ingest over HTTP: {accepted:.0f} results, {per_s:,.0f} results/s; request p50 {p50_ms:.0f} ms, "
        "p99 {p99_ms:.0f} ms; hub CPU {cpu_ms_per_1000:.1f} ms per 1,000 results ({cpu_share:.0%} of one core)".format(
            **http
        )
    )
    print(
        "peer, Store.write_many() of the same rows: {per_s:,.0f} results/s, CPU {cpu_ms_per_1000:.1f} ms per 1,000 "
        "results".format(**peer)
    )
    print(
        f"ratio ingest / direct write: {http['per_s'] / peer['per_s']:.2f} in results/s, "
        f"{http['cpu_ms_per_1000'] / peer['cpu_ms_per_1000']:.2f} in CPU per result; "
        f"one hub core would ingest {1e6 / http['cpu_ms_per_1000']:,.0f} results/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--agents", type=int, default=4, help="locations pushing at once")
    parser.add_argument("--batch", type=int, default=500, help="results per request (an agent sends up to 500)")
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--profile", metavar="FILE", help="run the hub under cProfile, its main thread's stats to FILE")
    parser.add_argument("--py-spy", metavar="FILE", help="sample the hub with py-spy while agents push (raw stacks)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
