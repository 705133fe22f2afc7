"""Benchmark: CPU seconds per 100-connection `websocket` batch (raw and Socket.IO), against bare websockets.

Run on demand (not collected by pytest):  .venv/bin/python tests/bench/bench_websocket.py [-r 10] [-n 100]

The servers (tests/ws_servers.py: a websockets echo server, a python-socketio server on aiohttp) run in
their own processes, so only the probing process's CPU is counted (time.process_time):
  * prober raw       — Runner + websocket probe, `connections: N`, ping on (its default), clean close;
  * prober socketio  — the same with `protocol: socketio` on /chat (Engine.IO open + namespace CONNECT);
  * bare websockets  — N × websockets.asyncio.client.connect + close, no ping, no bookkeeping.
Machines here are shared and noisy: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ws_servers import spawned_server

from prober.config.loader import load_config
from prober.scheduling.runner import Runner


async def bench_prober(check: dict[str, Any], rounds: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per run of `check`, after one warm-up run."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(yaml.safe_dump({"checks": [{"name": "bench", "type": "websocket", "timeout": "20s", **check}]}))
        spec = load_config([path]).checks[0]
    runner = Runner()
    warm = await runner.run(spec)
    if warm.status != "up":
        raise SystemExit(f"the benchmark check is {warm.status}: {warm.error}")
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        result = await runner.run(spec)
        if result.status != "up":
            raise SystemExit(f"a benchmark run was {result.status}: {result.error}")
    return (time.process_time() - cpu) / rounds, (time.perf_counter() - wall) / rounds


async def bench_bare(url: str, connections: int, rounds: int) -> tuple[float, float]:
    from websockets.asyncio.client import connect

    async def one() -> None:
        ws = await connect(url, ping_interval=None, proxy=None)
        await ws.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        await asyncio.gather(*(one() for _ in range(connections)))
    return (time.process_time() - cpu) / rounds, (time.perf_counter() - wall) / rounds


def report(label: str, connections: int, cpu: float, wall: float) -> float:
    print(
        f"{label:17s} {cpu:.3f} CPU-s per {connections}-connection batch "
        f"({cpu / connections * 1000:.2f} ms CPU per connection, {wall:.3f} s wall)"
    )
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-r", "--rounds", type=int, default=10, help="measured batches per contender")
    parser.add_argument("-n", "--connections", type=int, default=100, help="connections per batch")
    args = parser.parse_args()
    n, rounds = args.connections, args.rounds
    print(f"{rounds} batches of {n} WebSocket connections to local servers in other processes")
    with spawned_server("echo") as (_, echo_port), spawned_server("socketio") as (_, sio_port):
        raw_url = f"ws://127.0.0.1:{echo_port}/echo"
        raw = report("prober raw", n, *asyncio.run(bench_prober({"url": raw_url, "connections": n}, rounds)))
        sio_check = {
            "url": f"ws://127.0.0.1:{sio_port}",
            "protocol": "socketio",
            "namespace": "/chat",
            "connections": n,
        }
        report("prober socketio", n, *asyncio.run(bench_prober(sio_check, rounds)))
        bare = report("bare websockets", n, *asyncio.run(bench_bare(raw_url, n, rounds)))
    print(f"prober raw / bare websockets (CPU): {raw / bare:.2f}")


if __name__ == "__main__":
    main()
