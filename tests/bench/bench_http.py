"""Benchmark: full http checks per CPU-second, against a bare aiohttp request and blackbox_exporter.

Run on demand (not collected by pytest):  python tests/bench/bench_http.py [-n 3000] [-c 16] [--whole 5000]

All of them do the same thing: a GET on a fresh connection to a local aiohttp server (in its own process, so
its CPU is not counted), at the same concurrency. We count the CPU seconds of the process doing the probing:
  * prober    — Runner + http probe (phase timings, conditions, Result), in this process;
  * bare      — aiohttp.ClientSession(force_close) GET + read, in this process;
  * blackbox  — Debian's prometheus-blackbox-exporter, driven through /probe by a separate driver process;
                its own CPU is read from /proc/PID/stat;
  * whole     — `prober check` of --whole checks (5,000 by default) as one process, start to exit (interpreter,
                imports, loading and validating the file, every check, the output: once the table, once
                --json), its CPU from wait4; compared with blackbox_exporter's CPU for as many /probe calls.
                The target (docs/performance.md): whole / blackbox <= 0.5.
Machines here are shared and noisy: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import aiohttp
from blackbox_peer import DRIVER, free_port, proc_cpu, wait_port

SERVER = textwrap.dedent(
    """
    import sys
    from aiohttp import web
    async def ok(request):
        return web.json_response({"status": "healthy"})
    app = web.Application()
    app.router.add_get("/health", ok)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
    """
)


async def bench_prober(url: str, n: int, concurrency: int) -> tuple[float, float]:
    from prober.config.loader import load_config
    from prober.scheduling.runner import Runner

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(
            f"checks:\n  - {{name: bench, type: http, url: '{url}', expect: {{json: {{status: healthy}}}}}}\n"
        )
        spec = load_config([path]).checks[0]
    runner = Runner()
    sem = asyncio.Semaphore(concurrency)
    statuses: dict[str, int] = {}

    async def one() -> None:
        async with sem:
            result = await runner.run(spec)
        statuses[result.status] = statuses.get(result.status, 0) + 1

    await asyncio.gather(*(one() for _ in range(50)))  # warm-up
    statuses.clear()
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await runner.resources.aclose()
    assert statuses == {"up": n}, statuses
    return cpu, wall


async def bench_bare(url: str, n: int, concurrency: int) -> tuple[float, float]:
    sem = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(force_close=True, use_dns_cache=False, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            async with sem, session.get(url) as response:
                await response.read()
                assert response.status == 200

        await asyncio.gather(*(one() for _ in range(50)))
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return time.process_time() - cpu, time.perf_counter() - wall


def bench_blackbox(url: str, n: int, concurrency: int) -> tuple[float, float] | None:
    exe = shutil.which("prometheus-blackbox-exporter")
    if exe is None:
        print("blackbox_exporter: not installed (apt-get install prometheus-blackbox-exporter); skipped")
        return None
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "blackbox.yml"
        config.write_text("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n")
        proc = subprocess.Popen(
            [exe, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", "--log.level=error"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(port)
            probe = f"http://127.0.0.1:{port}/probe?module=http_2xx&target={url}"
            subprocess.run([sys.executable, "-c", DRIVER, probe, "50", str(concurrency)], check=True)
            cpu, wall = proc_cpu(proc.pid), time.perf_counter()
            subprocess.run([sys.executable, "-c", DRIVER, probe, str(n), str(concurrency)], check=True)
            return proc_cpu(proc.pid) - cpu, time.perf_counter() - wall
        finally:
            proc.terminate()
            proc.wait(5)


def bench_whole(url: str, n: int, concurrency: int, as_json: bool) -> tuple[float, float]:
    """CPU and wall seconds of one `prober check` process running n http checks (exit code 0 required)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checks.yaml"
        lines = ["checks:"]
        lines += [
            f"  - {{name: c-{index}, type: http, url: '{url}', expect: {{json: {{status: healthy}}}}}}"
            for index in range(n)
        ]
        path.write_text("\n".join(lines) + "\n")
        argv = [sys.executable, "-m", "prober", "check", str(path), "--concurrency", str(concurrency)]
        if as_json:
            argv.append("--json")
        began = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, cwd=tmp)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"prober check exited {proc.returncode}")
        return usage.ru_utime + usage.ru_stime, wall


def report(name: str, n: int, cpu: float, wall: float) -> float:
    per_cpu = n / cpu if cpu else float("inf")
    print(
        f"{name:<10} {n / wall:8.0f} checks/s   {cpu / n * 1000:6.3f} CPU s per 1,000   {per_cpu:7.0f} per CPU-second"
    )
    return per_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=3000, help="checks per contender and round")
    parser.add_argument("-c", type=int, default=16, help="concurrency")
    parser.add_argument("-r", "--rounds", type=int, default=3, help="rounds; prober and bare alternate within each")
    parser.add_argument("--whole", type=int, default=5000, help="checks in the whole-process run (0: skip it)")
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}/health"
        print(f"{args.n} GETs on fresh connections at concurrency {args.c} to a local server, {args.rounds} rounds")
        prober_rates: list[float] = []
        bare_rates: list[float] = []
        for round_number in range(args.rounds):
            # Alternate the order: whichever runs second in a process tends to look faster on this machine.
            order = ("prober", "bare") if round_number % 2 == 0 else ("bare", "prober")
            for name in order:
                bench = bench_prober if name == "prober" else bench_bare
                rate = report(name, args.n, *asyncio.run(bench(url, args.n, args.c)))
                (prober_rates if name == "prober" else bare_rates).append(rate)
        prober_rate, bare_rate = statistics.median(prober_rates), statistics.median(bare_rates)
        print(f"median per CPU-second: prober {prober_rate:.0f}, bare {bare_rate:.0f}")
        print(f"prober / bare aiohttp (per CPU-second, medians): {prober_rate / bare_rate:.2f}")
        blackbox = bench_blackbox(url, args.n, args.c)
        if blackbox is not None:
            blackbox_rate = report("blackbox", args.n, *blackbox)
            print(f"prober / blackbox_exporter (per CPU-second): {prober_rate / blackbox_rate:.2f}")
        if args.whole:
            print(f"whole process: `prober check` of {args.whole} checks vs blackbox_exporter, {args.whole} probes")
            table = bench_whole(url, args.whole, args.c, as_json=False)
            report("whole", args.whole, *table)
            as_json = bench_whole(url, args.whole, args.c, as_json=True)
            report("whole-json", args.whole, *as_json)
            peer = bench_blackbox(url, args.whole, args.c)
            if peer is not None:
                report("blackbox", args.whole, *peer)
                print(
                    f"`prober check` CPU / blackbox_exporter CPU, {args.whole} checks: "
                    f"table {table[0] / peer[0]:.2f}, --json {as_json[0] / peer[0]:.2f} (target <= 0.5)"
                )
    finally:
        server.terminate()
        server.wait(5)


if __name__ == "__main__":
    main()
