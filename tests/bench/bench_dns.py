"""Benchmark: CPU per `dns` check (an A query over UDP) beside blackbox_exporter's dns prober, against Debian's
dnsmasq on 127.0.0.1.

Run on demand:  python tests/bench/bench_dns.py [-n 2000] [-c 16]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from blackbox_peer import compare, free_port, wait_port
from test_dns_probe import dnsmasq_argv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("-c", type=int, default=16)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(dnsmasq_argv(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        check = (
            f"checks:\n  - {{name: bench, type: dns, query: h.prober.test, server: '127.0.0.1:{port}', "
            "expect: {answers: {contains: 192.0.2.10}}}\n"
        )
        module = (
            "prober: dns\ntimeout: 5s\ndns:\n  query_name: h.prober.test\n  query_type: A\n"
            "  preferred_ip_protocol: ip4\n  validate_answer_rrs:\n    fail_if_none_matches_regexp: ['.*192.0.2.10']\n"
        )
        compare("dns", check, module, f"127.0.0.1:{port}", args.n, args.c)
    finally:
        server.terminate()
        server.wait(5)


if __name__ == "__main__":
    main()
