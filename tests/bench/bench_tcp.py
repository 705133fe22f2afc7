"""Benchmark: CPU per `tcp` check (Redis PING -> +PONG on a fresh connection) beside blackbox_exporter's tcp
prober with the same query_response, against Debian's redis-server on 127.0.0.1.

Run on demand:  python tests/bench/bench_tcp.py [-n 2000] [-c 16]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from blackbox_peer import compare, free_port, wait_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("-c", type=int, default=16)
    args = parser.parse_args()
    redis = shutil.which("redis-server")
    if redis is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    server = subprocess.Popen(
        [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        check = (
            f"checks:\n  - {{name: bench, type: tcp, host: 127.0.0.1, port: {port}, "
            'steps: [{send: "PING\\r\\n"}, {expect: "+PONG"}]}\n'
        )
        module = 'prober: tcp\ntimeout: 5s\ntcp:\n  query_response:\n    - send: "PING"\n    - expect: "^\\\\+PONG"\n'
        compare("tcp", check, module, f"127.0.0.1:{port}", args.n, args.c)
    finally:
        server.terminate()
        server.wait(5)


if __name__ == "__main__":
    main()
