"""Shared by the tcp, dns and icmp benchmarks: the same check run by prober's Runner in this process and by
Debian's prometheus-blackbox-exporter through /probe (a separate driver process calls it; the exporter's own
CPU is read from /proc/PID/stat), at the same concurrency. Not collected by pytest.

Machines here are shared and noisy: read the ratio, not the absolute numbers.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.parse import quote

__all__ = ["DRIVER", "bench_blackbox", "bench_prober", "compare", "free_port", "proc_cpu", "wait_port"]

DRIVER = textwrap.dedent(
    """
    import asyncio, sys, aiohttp
    async def main(url, n, c):
        sem = asyncio.Semaphore(c)
        async with aiohttp.ClientSession() as s:
            async def one():
                async with sem:
                    async with s.get(url) as r:
                        body = await r.text()
                        assert "probe_success 1" in body, body[-600:]
            await asyncio.gather(*(one() for _ in range(n)))
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    """
)


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


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_prober(check_yaml: str, n: int, concurrency: int) -> float:
    """CPU seconds of n runs of the one check in `check_yaml` (a `checks:` document); every run must be up."""
    from prober.config.loader import load_config
    from prober.scheduling.runner import Runner

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(check_yaml)
        spec = load_config([path]).checks[0]
    runner = Runner()
    sem = asyncio.Semaphore(concurrency)
    statuses: dict[str, int] = {}

    async def one() -> None:
        async with sem:
            result = await runner.run(spec)
        statuses[result.status] = statuses.get(result.status, 0) + 1
        if result.status != "up" and statuses[result.status] == 1:
            print("not up:", result.error)

    await asyncio.gather(*(one() for _ in range(20)))  # warm-up
    statuses.clear()
    cpu = time.process_time()
    await asyncio.gather(*(one() for _ in range(n)))
    cpu = time.process_time() - cpu
    await runner.resources.aclose()
    assert statuses == {"up": n}, statuses
    return cpu


def bench_blackbox(module_yaml: str, target: str, n: int, concurrency: int) -> float | None:
    """CPU seconds blackbox_exporter spends on n /probe calls of module `bench` (defined by `module_yaml`)."""
    exe = shutil.which("prometheus-blackbox-exporter")
    if exe is None:
        print("blackbox_exporter: not installed (apt-get install prometheus-blackbox-exporter); no peer figure")
        return None
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "blackbox.yml"
        config.write_text("modules:\n  bench:\n" + textwrap.indent(module_yaml, "    "))
        proc = subprocess.Popen(
            [exe, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", "--log.level=error"],
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_port(port)
            probe = f"http://127.0.0.1:{port}/probe?module=bench&target={quote(target)}"
            subprocess.run([sys.executable, "-c", DRIVER, probe, "20", str(concurrency)], check=True)
            cpu = proc_cpu(proc.pid)
            subprocess.run([sys.executable, "-c", DRIVER, probe, str(n), str(concurrency)], check=True)
            return proc_cpu(proc.pid) - cpu
        finally:
            proc.terminate()
            proc.wait(5)


def compare(kind: str, check_yaml: str, module_yaml: str, target: str, n: int, concurrency: int) -> None:
    """Print CPU per check of prober and blackbox_exporter for the same target, and their ratio."""
    ours = asyncio.run(bench_prober(check_yaml, n, concurrency))
    print(f"prober   {kind}: {ours / n * 1e6:8.0f} µs CPU per check ({n} checks, concurrency {concurrency})")
    peer = bench_blackbox(module_yaml, target, n, concurrency)
    if peer is not None:
        print(f"blackbox {kind}: {peer / n * 1e6:8.0f} µs CPU per probe")
        print(f"prober / blackbox_exporter CPU per check: {ours / peer:.2f}")
