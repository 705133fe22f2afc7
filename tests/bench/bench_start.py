"""Benchmark: how fast prober starts. Median of several runs of each, whole processes.

Run on demand (pytest does not collect it):

    python tests/bench/bench_start.py [--runs 7] [--checks 5000]

Measures, next to a bare `python -c pass` (the interpreter's own start, the floor):
  * `prober --help`                        wall and CPU (target in docs/performance.md: < 0.15 s);
  * `prober validate` of one file of 5,000 http checks            (target: < 0.5 s);
  * `prober check` of one http check: from the spawn to the moment its request reaches a listening socket
    in this process (target: within 0.3 s). The socket answers `200 ok` and closes.
Wall times on a shared machine are noisy, so the CPU seconds of each process (user + system, from wait4)
are printed too: on a quiet machine the wall time is close to them.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from bench_validate import write_checks  # the same 5,000-check file (run as a script: tests/bench is on sys.path)

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"help": 0.15, "validate": 0.5, "first request": 0.3}


SOURCE = [str(ROOT)]


def environment() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=SOURCE[0])


def timed(argv: Sequence[str], cwd: str) -> tuple[float, float]:
    """Wall and CPU seconds of one process run to its exit."""
    began = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=environment()
    )
    _, _, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - began, usage.ru_utime + usage.ru_stime


def first_request(cwd: str, path: Path, server: socket.socket) -> tuple[float, float]:
    """Seconds from spawning `prober check` to its request arriving at `server`, and the process's CPU."""
    arrived: list[float] = []

    def accept() -> None:
        conn, _ = server.accept()
        arrived.append(time.perf_counter())
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    began = time.perf_counter()
    argv = [sys.executable, "-m", "prober", "check", str(path), "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=environment())
    _, status, usage = os.wait4(proc.pid, 0)
    thread.join(10)
    if os.waitstatus_to_exitcode(status) != 0 or not arrived:
        raise RuntimeError(f"prober check failed (exit status {status}) or its request never arrived")
    return arrived[0] - began, usage.ru_utime + usage.ru_stime


def show(name: str, samples: list[tuple[float, float]], floor: float | None = None) -> None:
    wall = statistics.median(sample[0] for sample in samples)
    cpu = statistics.median(sample[1] for sample in samples)
    target = TARGETS.get(name)
    verdict = f"  target < {target:g} s: {'met' if wall < target else 'NOT MET'} (wall)" if target else ""
    extra = f"  ({wall / floor:.1f}x python -c pass)" if floor else ""
    print(f"{name:<14} wall {wall:6.3f} s   cpu {cpu:6.3f} s{extra}{verdict}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--source", help="time the prober found in this directory (default: this checkout)")
    args = parser.parse_args(argv)
    if args.source:
        SOURCE[0] = args.source
    with tempfile.TemporaryDirectory(prefix="prober-bench-start-") as tmp:
        many = Path(tmp) / "many.yaml"
        write_checks(many, args.checks)
        server = socket.create_server(("127.0.0.1", 0))
        one = Path(tmp) / "one.yaml"
        one.write_text(f"checks:\n  - {{name: one, type: http, url: 'http://127.0.0.1:{server.getsockname()[1]}/'}}\n")
        prober = [sys.executable, "-m", "prober"]
        timed([*prober, "--help"], tmp)  # warm the page cache and write the bytecode once
        runs: dict[str, list[tuple[float, float]]] = {"python": [], "help": [], "validate": [], "first request": []}
        for _ in range(args.runs):  # interleaved, so a noisy moment hits every figure alike
            runs["python"].append(timed([sys.executable, "-c", "pass"], tmp))
            runs["help"].append(timed([*prober, "--help"], tmp))
            runs["validate"].append(timed([*prober, "validate", str(many)], tmp))
            runs["first request"].append(first_request(tmp, one, server))
        server.close()
    floor = statistics.median(sample[0] for sample in runs["python"])
    print(f"median of {args.runs} runs; validate: {args.checks} http checks in one file")
    show("python", runs["python"])
    for name in ("help", "validate", "first request"):
        show(name, runs[name], floor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
