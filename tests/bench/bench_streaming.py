"""Benchmark of the streaming probes: CPU seconds per HLS check of a 4-variant master
(segments: 1) and per 100-connection WebSocket batch. Runs the two focused benchmarks one after the other.

    .venv/bin/python tests/bench/bench_streaming.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    for name, args in (("bench_hls.py", ["-n", "40"]), ("bench_websocket.py", ["-r", "10", "-n", "100"])):
        print(f"== {name}", flush=True)
        subprocess.run([sys.executable, str(HERE / name), *args, *sys.argv[1:]], check=True)


if __name__ == "__main__":
    main()
