"""Benchmark: CPU per flv check (HTTP-FLV, 5 s read, with and without `content`) beside the FFmpeg CLI doing
the same reads, printed with the ratio.

Run on demand (not collected by pytest):  .venv/bin/python tests/bench/bench_flv.py [-n 3]

The stream is ffmpeg itself serving HTTP-FLV (`-f flv -listen 1 http://127.0.0.1:PORT/live/stream.flv`,
`testsrc2` 320x240 at 25 fps with a 440 Hz tone, libx264 ultrafast, a keyframe a second, AAC: the sources of
tests/live_media.py), paced in real time (`-re`); `-listen 1` serves one client, so every read gets a fresh
server, started before the clock runs and not counted. Measured, per read of 5 s of the stream:

* prober's flv check through the Runner (this process's CPU, every thread: parsing each FLV tag, and the
  PyAV decode of the first GOP, which with `content` also decodes the last second and judges it);
* the packet-read peer `ffprobe -show_packets -read_intervals %+5 URL` beside the check without content;
* the decode peer `ffmpeg -threads 1 -t 5 -i URL -f null -` (every frame decoded) beside the check with
  content.

Each peer's CPU is its own rusage (os.wait4). Machines here are shared and noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS / "bench"))

SECONDS = 5.0


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port (read from /proc: connecting would use up `-listen 1`)."""
    wanted = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":
            return True
    return False


def serve_once(port: int) -> subprocess.Popen[bytes]:
    """ffmpeg serving one HTTP-FLV client on 127.0.0.1:port; returns once it listens."""
    from live_media import encode_args

    url = f"http://127.0.0.1:{port}/live/stream.flv"
    process = subprocess.Popen(  # its "Broken pipe" when a reader leaves is expected: not shown
        [*encode_args("healthy"), "-f", "flv", "-listen", "1", url],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"ffmpeg did not start serving {url}")
        time.sleep(0.02)
    return process


def finish(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


async def bench(runs: int) -> None:
    from live_media import free_tcp_port, load_check
    from media_peer import collect, ffmpeg_decode, ffprobe_packets, peer_cpu, print_table, prober_cpu

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        port = free_tcp_port()
        url = f"http://127.0.0.1:{port}/live/stream.flv"
        check = {"type": "flv", "url": url, "duration": f"{SECONDS:g}s", "timeout": "10s"}
        plain = load_check(directory, check, "plain")
        content = load_check(directory, {**check, "content": True}, "content")
        server = serve_once(port)
        await prober_cpu(content)  # warm-up: imports and FFmpeg's libraries, not counted
        finish(server)
        results: dict[str, list[tuple[float, float, str]]] = {}
        for _ in range(runs):
            for label, kind in (
                ("prober flv (no content)", "plain"),
                ("ffprobe -show_packets", "ffprobe"),
                ("prober flv (content: true)", "content"),
                ("ffmpeg -t 5 -f null (decode)", "ffmpeg"),
            ):
                server = serve_once(port)
                try:
                    if kind == "plain":
                        figure = await prober_cpu(plain)
                    elif kind == "content":
                        figure = await prober_cpu(content)
                    elif kind == "ffprobe":
                        figure = await asyncio.to_thread(peer_cpu, ffprobe_packets(url, SECONDS))
                    else:
                        figure = await asyncio.to_thread(peer_cpu, ffmpeg_decode(url, SECONDS))
                finally:
                    finish(server)
                results.setdefault(label, []).append(figure)
        figures = [collect(label, runs_) for label, runs_ in results.items()]
        print_table(
            f"CPU per read of {SECONDS:g} s of an HTTP-FLV stream served by ffmpeg -listen 1 (320x240, 25 fps, "
            "H.264 + AAC)",
            figures,
            [
                ("prober flv (no content)", "ffprobe -show_packets"),
                ("prober flv (content: true)", "ffmpeg -t 5 -f null (decode)"),
            ],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=3, help="reads measured per setting (default 3)")
    args = parser.parse_args()
    asyncio.run(bench(args.runs))


if __name__ == "__main__":
    main()
