"""Benchmark: CPU per `icmp` check (one echo to 127.0.0.1, as blackbox sends one per probe) beside
blackbox_exporter's icmp prober. Needs root (raw sockets, for both).

Run on demand:  python tests/bench/bench_icmp.py [-n 2000] [-c 16]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from blackbox_peer import compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("-c", type=int, default=16)
    args = parser.parse_args()
    check = "checks:\n  - {name: bench, type: icmp, host: 127.0.0.1, count: 1}\n"
    module = "prober: icmp\ntimeout: 5s\nicmp:\n  preferred_ip_protocol: ip4\n"
    compare("icmp", check, module, "127.0.0.1", args.n, args.c)


if __name__ == "__main__":
    main()
