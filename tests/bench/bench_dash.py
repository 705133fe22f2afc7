"""Benchmark: CPU seconds per dash check of a live ffmpeg DASH stream, beside ffprobe reading the same MPD.

Run on demand (not collected by pytest):  .venv/bin/python tests/bench/bench_dash.py [-n 10] [--size 640x360]

ffmpeg writes a live DASH stream (SegmentTimeline, 1 s segments, H.264 + AAC, `-re`) that Debian's nginx serves
on 127.0.0.1. One Runner then runs the same dash check `n` times (state kept, as the daemon runs it; the first,
warm-up run is not counted): with `content` (the MPD, both init segments and newest segments downloaded, both
decoded with PyAV and compared) and without (the MPD and the downloads). Its CPU is this process's
(time.process_time, every thread). The peer is `ffprobe -show_entries stream=... <MPD URL>` (FFmpeg's own DASH
demuxer: the MPD, the init segments, enough of the live edge to probe each stream), its CPU taken from the
child's rusage, in the same run: the ratio is ours / ffprobe's. Machines here are shared and noisy: compare
ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from dash_origin import dash_encoder, nginx_static  # noqa: E402
from live_media import SOURCES, load_check  # noqa: E402

from prober.scheduling.runner import Runner  # noqa: E402


async def ours(directory: Path, url: str, runs: int, content: bool) -> list[float]:
    check = {"type": "dash", "url": url, "timeout": "10s", "content": content}
    spec = load_check(directory, check, name=f"bench-{int(content)}")
    runner = Runner()
    first = await runner.run(spec)  # warm-up: imports PyAV, looks twice at the MPD
    if first.status != "up":
        raise SystemExit(f"the warm-up run is {first.status}: {first.error}")
    costs = []
    for _ in range(runs):
        started = time.process_time()
        result = await runner.run(spec)
        costs.append(time.process_time() - started)
        if result.status != "up":
            print(f"  (a run was {result.status}: {result.error})")
        await asyncio.sleep(0.5)
    return costs


async def ffprobe(url: str, runs: int) -> list[float]:
    binary = shutil.which("ffprobe")
    if binary is None:
        raise SystemExit("ffprobe is needed: apt-get install ffmpeg")
    costs = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        process = await asyncio.create_subprocess_exec(
            binary, "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "json", url,
            stdout=asyncio.subprocess.DEVNULL, stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        if await process.wait() != 0:
            raise SystemExit(f"ffprobe could not read {url}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        costs.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        await asyncio.sleep(0.5)
    return costs


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", type=int, default=10, help="measured runs of each (default 10)")
    parser.add_argument("--size", default="640x360", help="picture size of the live stream (default 640x360)")
    args = parser.parse_args()
    SOURCES["bench"] = ("-f", "lavfi", "-i", f"testsrc2=size={args.size}:rate=25", "-f", "lavfi", "-i", "sine")
    with tempfile.TemporaryDirectory() as raw:
        directory = Path(raw)
        async with (
            nginx_static(directory / "out", directory / "nginx") as base,
            dash_encoder(directory / "out", "bench", "timeline", warmup=4.0),
        ):
            url = f"{base}/live.mpd"
            with_content = await ours(directory, url, args.n, content=True)
            without = await ours(directory, url, args.n, content=False)
            peer = await ffprobe(url, args.n)
    mine, plain, theirs = statistics.median(with_content), statistics.median(without), statistics.median(peer)
    print(f"live DASH {args.size} H.264 + AAC, 1 s segments, SegmentTimeline; median of {args.n} runs each")
    print(f"  dash check, content on : {mine * 1000:7.1f} ms CPU per check")
    print(f"  dash check, content off: {plain * 1000:7.1f} ms CPU per check")
    print(f"  ffprobe <MPD URL>      : {theirs * 1000:7.1f} ms CPU per read")
    print(f"  ratio content on / ffprobe : {mine / theirs:.2f}")
    print(f"  ratio content off / ffprobe: {plain / theirs:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
