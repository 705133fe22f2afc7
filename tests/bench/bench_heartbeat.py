"""Benchmark: CPU of a `prober run` hub per heartbeat ping, and per heartbeat evaluation.

Run on demand (not collected by pytest):  python tests/bench/bench_heartbeat.py [-n 2000] [--checks 200]

A real `prober run` (its own process) watches --checks heartbeat checks; this process sends -n pings spread over
them (at most 30 a minute per check: the rate limit, so -n / --checks <= 30) with curl-like one-request-per-
connection GETs. Its CPU (utime + stime from /proc/PID/stat) is read before and after:
  * per ping: each ping is read, stored (one transaction), then its check is measured at once (a result stored,
    alerts fed), so a ping costs about one result;
  * per evaluation: the same daemon idle for --idle seconds, its CPU divided by the heartbeat runs it made
    (each check every half grace, at most once a minute; here grace 2s, so every second).
No open-source peer takes pings here to compare with (blackbox_exporter has no push mode); the figure beside it
is an `http` check's CPU in the same daemon (one GET of a loopback aiohttp target), from the same run.
Machines here are shared and noisy: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

TICKS = os.sysconf("SC_CLK_TCK")


def cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return int(connection.execute(sql).fetchone()[0])


async def wait_up(port: int) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(400):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz"):
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise SystemExit("the daemon did not start")


def start_daemon(directory: Path, name: str, lines: list[str], port: int) -> tuple[subprocess.Popen[bytes], Path]:
    (directory / f"{name}.yaml").write_text("checks:\n" + "\n".join(lines) + "\n")
    db = directory / f"{name}.db"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "prober", "run", str(directory / f"{name}.yaml"), "--db", str(db),
         "--listen", f"127.0.0.1:{port}", "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return daemon, db


async def idle_cost(daemon: subprocess.Popen[bytes], db: Path, seconds: float) -> tuple[float, int]:
    """CPU seconds per run over `seconds` of the daemon running its checks, and the runs counted."""
    await asyncio.sleep(3.0)  # past the start
    before, runs = cpu(daemon.pid), count(db, "select count(*) from results")
    await asyncio.sleep(seconds)
    spent, runs = cpu(daemon.pid) - before, count(db, "select count(*) from results") - runs
    return spent / max(1, runs), runs


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--idle", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        target_port, port = free_port(), free_port()
        target = subprocess.Popen(
            [sys.executable, "-c", "from aiohttp import web\napp = web.Application()\n"
             "app.router.add_get('/', lambda r: web.Response(text='ok'))\n"
             f"web.run_app(app, host='127.0.0.1', port={target_port}, print=None, access_log=None)"]
        )  # fmt: skip
        beats = [
            f"  - {{name: job-{index}, type: heartbeat, token: bench-token-{index:06d}-abcdef, "
            "schedule: every 1d, grace: 2s}"
            for index in range(args.checks)
        ]
        webs = [
            f"  - {{name: web-{index}, type: http, url: 'http://127.0.0.1:{target_port}/', schedule: every 1s}}"
            for index in range(args.checks)
        ]
        try:
            daemon, db = start_daemon(directory, "web", webs, port)
            try:
                await wait_up(port)
                http_run, http_runs = await idle_cost(daemon, db, args.idle)
            finally:
                daemon.terminate()
                daemon.wait(15)
            port = free_port()
            daemon, db = start_daemon(directory, "beats", beats, port)
            try:
                await wait_up(port)
                beat_run, beat_runs = await idle_cost(daemon, db, args.idle)
                connector = aiohttp.TCPConnector(force_close=True, limit=8)
                async with aiohttp.ClientSession(connector=connector) as session:
                    before = cpu(daemon.pid)
                    started = time.perf_counter()

                    async def one(index: int) -> int:
                        token = f"bench-token-{index % args.checks:06d}-abcdef"
                        async with session.get(f"http://127.0.0.1:{port}/ping/{token}") as response:
                            return response.status

                    statuses = await asyncio.gather(*(one(index) for index in range(args.n)))
                    wall = time.perf_counter() - started
                    await asyncio.sleep(1.0)  # the evaluations the pings started
                    idle_share = beat_run * args.checks * (wall + 1.0)  # the scheduled runs meanwhile
                    ping_cpu = cpu(daemon.pid) - before - idle_share
            finally:
                daemon.terminate()
                daemon.wait(15)
            ok = statuses.count(200)
            print(f"heartbeat run (scheduled, {beat_runs} runs): {beat_run * 1000:.2f} ms CPU each")
            print(f"http run, same daemon code, same run ({http_runs} runs): {http_run * 1000:.2f} ms CPU each")
            print(f"ratio heartbeat run / http run: {beat_run / http_run:.2f}")
            print(
                f"ping (read, stored, check measured at once; {ok}/{args.n} accepted in {wall:.1f}s): "
                f"{ping_cpu * 1000 / max(1, ok):.2f} ms CPU each = {ping_cpu / max(1, ok) / http_run:.2f} http runs"
            )
        finally:
            target.terminate()
            target.wait(5)


if __name__ == "__main__":
    asyncio.run(main())
