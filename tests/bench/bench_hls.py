"""Benchmark: CPU seconds per hls check of a live 4-variant master (segments: 1), printed.

Run on demand (not collected by pytest):  .venv/bin/python tests/bench/bench_hls.py [-n 40]

The origin (tests/hls_origin.py on the real clock: 2 s segments, 4 variants at 0.8/1.6/3/6 Mbit/s, so
segments of 200 KB to 1.5 MB) runs in its own process on 127.0.0.1, so its CPU is not counted. This
process runs the check through the Runner with persistent state, as the daemon does: per run one master
and four media playlists are fetched, validated and compared with the previous run, and the newest
segment of each variant is downloaded. We count this process's CPU time (time.process_time) per check,
for `segments: 1` and, to show the download's share, `segments: 0`. Machines here are shared and noisy.

It also times parsing a 4.5 MB, 300,000-segment playlist (CPU seconds and peak memory of `parse_playlist`,
which the probe runs in a worker thread for bodies over 16 KiB, and the share of `m3u8.parse`, the parser of
record inside it), and a 4 MB playlist rotating 80,000 keys (where m3u8 alone is quadratic).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

VARIANTS = (("v800k", 800_000), ("v1600k", 1_600_000), ("v3000k", 3_000_000), ("v6000k", 6_000_000))


class RealClock:
    """The origin's clock (hls_origin.WallClock) on real time."""

    def time(self) -> float:
        return time.time()


def serve(port: int) -> None:
    """The origin process: four live variants on the real clock."""
    from aiohttp import web
    from hls_origin import LiveMedia, Origin, make_app

    origin = Origin(base=f"http://127.0.0.1:{port}")
    for name, bandwidth in VARIANTS:
        size = bandwidth * 2 // 8
        origin.add(name, LiveMedia(RealClock(), started=time.time() - 60, segment_size=size), bandwidth)
    web.run_app(make_app(origin), host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit(f"the origin at {url} did not start")


async def measure(url: str, segments: int, runs: int) -> tuple[float, float, str]:
    from hls_origin import load_hls_check

    from prober.scheduling.runner import Runner

    with tempfile.TemporaryDirectory() as tmp:
        spec = load_hls_check(Path(tmp), {"url": url, "segments": segments, "timeout": "10s"})
    runner = Runner(persistent_state=True)
    for _ in range(3):  # warm-up: imports, first-run state
        await runner.run(spec)
    cpu, wall = time.process_time(), time.perf_counter()
    statuses = set()
    for _ in range(runs):
        result = await runner.run(spec)
        statuses.add(result.status)
    return (time.process_time() - cpu) / runs, (time.perf_counter() - wall) / runs, ",".join(sorted(statuses))


def bench_parse() -> None:
    """CPU and peak memory of parse_playlist on a 4.5 MB, 300,000-segment playlist, and m3u8's share of it."""
    import tracemalloc

    import m3u8

    from prober.probes.hls.playlist import parse_playlist

    head = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n"
    body = (head + "".join(f"#EXTINF:2,\n{n % 1000}\n" for n in range(300_000))).encode()
    ours, theirs = [], []
    for _ in range(3):
        started = time.process_time()
        parse_playlist(body)
        ours.append(time.process_time() - started)
        started = time.process_time()
        m3u8.parse(body.decode())
        theirs.append(time.process_time() - started)
    tracemalloc.start()
    parse_playlist(body)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"parse a {len(body) / 1e6:.1f} MB, 300,000-segment playlist: parse_playlist {min(ours):.2f} s CPU "
        f"(best of 3), of which m3u8.parse {min(theirs):.2f} s; peak memory {peak / 1e6:.0f} MB"
    )
    keys = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + "".join(
        f'#EXT-X-KEY:METHOD=AES-128,URI="k{n}"\n#EXTINF:2,\na\n' for n in range(80_000)
    )
    started = time.process_time()
    parse_playlist(keys.encode())
    print(
        f"parse a {len(keys) / 1e6:.1f} MB playlist rotating 80,000 keys: {time.process_time() - started:.2f} s CPU "
        "(m3u8.parse alone is quadratic in keys: 12 s for 20,000)"
    )


async def bench(runs: int) -> None:
    bench_parse()
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        url = f"http://127.0.0.1:{port}/master.m3u8"
        await wait_until_up(url)
        for segments in (1, 0):
            cpu, wall, statuses = await measure(url, segments, runs)
            print(
                f"hls check, 4-variant master, segments: {segments}: {cpu * 1000:.1f} ms CPU per check "
                f"({cpu:.4f} CPU s; wall {wall * 1000:.1f} ms; {runs} runs; results {statuses})"
            )
    finally:
        server.terminate()
        server.wait(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=40, help="checks measured per setting (default 40)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    asyncio.run(bench(args.runs))


if __name__ == "__main__":
    main()
