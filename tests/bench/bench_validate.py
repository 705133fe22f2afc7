"""`prober validate` of one file with 5,000 http checks: whole process wall time, and the loader alone.

Prints the median of several runs of each; also times PyYAML's own safe_load of the same file, the
peer for the reading step (our reader adds limits and duplicate-key checks on top of it).

    .venv/bin/python tests/bench/bench_validate.py [--checks 5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def write_checks(path: Path, count: int) -> None:
    lines = ["defaults: {schedule: every 30s, timeout: 5s}", "checks:"]
    for index in range(count):
        lines.append(
            f"  - name: api-{index}\n    type: http\n    url: http://127.0.0.1:8080/health/{index}\n"
            '    expect: {status: 200, latency: "< 2s", json: {status: healthy}}'
        )
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from prober.config.loader import load_config
    from prober.config.yaml_reader import read_yaml

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "checks.yaml"
        write_checks(path, args.checks)
        walls, loads, reads, peers = [], [], [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "prober", "validate", str(path)], check=True, capture_output=True)
            walls.append(time.perf_counter() - started)
            started = time.perf_counter()
            load_config([path])
            loads.append(time.perf_counter() - started)
            started = time.perf_counter()
            read_yaml(path)
            reads.append(time.perf_counter() - started)
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            started = time.perf_counter()
            yaml.load(path.read_text(), Loader=loader)
            peers.append(time.perf_counter() - started)
    print(f"{args.checks} checks, median of {args.runs} runs")
    print(f"  prober validate, whole process: {statistics.median(walls):.3f} s")
    print(f"  load_config in process:         {statistics.median(loads):.3f} s")
    print(f"  read_yaml (limits + duplicates): {statistics.median(reads):.3f} s")
    ratio = statistics.median(reads) / statistics.median(peers)
    print(f"  PyYAML CSafeLoader safe_load:   {statistics.median(peers):.3f} s  (read_yaml / PyYAML: {ratio:.2f})")


if __name__ == "__main__":
    main()
