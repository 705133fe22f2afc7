"""Benchmark: CPU per rtmp check (5 s read, with and without `content`) beside the FFmpeg CLI doing the same
reads, printed with the ratio.

Run on demand (not collected by pytest):  .venv/bin/python tests/bench/bench_rtmp.py [-n 3]

The media server is Debian's nginx with libnginx-mod-rtmp, and one ffmpeg publishes to it for the whole run
(`testsrc2` 320x240 at 25 fps with a 440 Hz tone, libx264 ultrafast, a keyframe a second, AAC), both started
the way the rtmp tests start them (tests/live_media.py) and not counted. Measured, per read of 5 s of
`rtmp://127.0.0.1:PORT/live/bench`:

* prober's rtmp check through the Runner (this process's CPU, every thread: FFmpeg's RTMP client through
  PyAV in a worker thread, each packet taken as an FLV tag, and the decode of the first GOP, which with
  `content` also decodes the last second and judges it);
* the packet-read peer `ffprobe -show_packets -read_intervals %+5 URL` beside the check without content;
* the decode peer `ffmpeg -threads 1 -t 5 -i URL -f null -` (every frame decoded) beside the check with
  content.

Each peer's CPU is its own rusage (os.wait4). Machines here are shared and noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS / "bench"))

SECONDS = 5.0


async def bench(runs: int) -> None:
    from live_media import load_check, nginx_rtmp, publish, stop
    from media_peer import collect, ffmpeg_decode, ffprobe_packets, peer_cpu, print_table, prober_cpu

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        async with nginx_rtmp(directory) as server:
            publisher = await publish(server, "bench")
            try:
                url = server.url("bench")
                check = {"type": "rtmp", "url": url, "duration": f"{SECONDS:g}s", "timeout": "12s"}
                plain = load_check(directory, check, "plain")
                content = load_check(directory, {**check, "content": True}, "content")
                await prober_cpu(content)  # warm-up: imports and FFmpeg's libraries, not counted
                results: dict[str, list[tuple[float, float, str]]] = {}
                for _ in range(runs):
                    for label, kind in (
                        ("prober rtmp (no content)", "plain"),
                        ("ffprobe -show_packets", "ffprobe"),
                        ("prober rtmp (content: true)", "content"),
                        ("ffmpeg -t 5 -f null (decode)", "ffmpeg"),
                    ):
                        if publisher.returncode is not None:
                            log = (directory / "nginx" / "logs" / "error.log").read_text()[-1500:]
                            raise SystemExit(f"the publisher stopped (exit {publisher.returncode}); nginx says:\n{log}")
                        if kind == "plain":
                            figure = await prober_cpu(plain)
                        elif kind == "content":
                            figure = await prober_cpu(content)
                        elif kind == "ffprobe":
                            figure = await asyncio.to_thread(peer_cpu, ffprobe_packets(url, SECONDS))
                        else:
                            figure = await asyncio.to_thread(peer_cpu, ffmpeg_decode(url, SECONDS))
                        results.setdefault(label, []).append(figure)
            finally:
                await stop(publisher)
    figures = [collect(label, runs_) for label, runs_ in results.items()]
    print_table(
        f"CPU per read of {SECONDS:g} s of an RTMP stream from nginx-rtmp (320x240, 25 fps, H.264 + AAC)",
        figures,
        [
            ("prober rtmp (no content)", "ffprobe -show_packets"),
            ("prober rtmp (content: true)", "ffmpeg -t 5 -f null (decode)"),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=3, help="reads measured per setting (default 3)")
    args = parser.parse_args()
    asyncio.run(bench(args.runs))


if __name__ == "__main__":
    main()
