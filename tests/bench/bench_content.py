"""Benchmark: CPU seconds per content-checked 1 s segment (720p and 1080p, H.264 + AAC), printed.

Run on demand (not collected by pytest):  .venv/bin/python tests/bench/bench_content.py [-n 5]

ffmpeg encodes a few 1 s segments of `testsrc2` at 30 fps with a 440 Hz tone (libx264 veryfast, a keyframe
per segment, AAC 128k) once; then for one segment of each size we count this process's CPU time
(time.process_time, every thread) for what the hls probe does when `content` is on: `decode_segment`
(PyAV: demux, decode every video frame on one thread, scale each to 64x36 luma, resample the audio to 8 kHz
mono) and `compare` (black, frozen, silence, pts gap). The peer is the ffmpeg command line doing the same
decode and scaling (`-threads 1 -vf scale=64:36,format=gray -af aresample=8000 -f null -`), its CPU taken
from the child's rusage, in the same run: the ratio is ours / ffmpeg's. Machines here are shared and noisy.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from prober.probes.media.content import ContentSettings, compare, decode_segment  # noqa: E402

SIZES = {"720p": "1280x720", "1080p": "1920x1080"}


def encode(directory: Path, size: str) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg is needed: apt-get install ffmpeg")
    playlist = directory / "stream.m3u8"
    subprocess.run(
        [
            ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", "3", "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-keyint_min", "30",
            "-sc_threshold", "0", "-c:a", "aac", "-b:a", "128k",
            "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", str(playlist),
        ],
        check=True,
        timeout=300,
    )  # fmt: skip
    return directory / "stream1.ts"


def ours(data: bytes, runs: int) -> list[float]:
    settings = ContentSettings()
    costs = []
    previous = None
    for n in range(runs):
        started = time.process_time()
        decoded = decode_segment(data, max_frames=settings.max_frames)
        findings = compare(
            decoded,
            previous,
            settings=settings,
            now=1e9 + n,
            sequence=1,
            discontinuity=0,
            extinf=1.0,
            between=None,
            resolution=None,
        )
        costs.append(time.process_time() - started)
        previous = findings.state
    return costs


def peer(segment: Path, runs: int) -> list[float]:
    costs = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [
                "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1", "-i", str(segment),
                "-vf", "scale=64:36,format=gray", "-af", "aresample=8000", "-f", "null", "-",
            ],
            check=True,
            timeout=120,
        )  # fmt: skip
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        costs.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="decodes per size (the median is printed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"CPU per content-checked 1 s segment (median of {args.n}; 30 fps, H.264 + AAC)")
        for label, size in SIZES.items():
            directory = Path(tmp) / label
            directory.mkdir()
            segment = encode(directory, size)
            data = segment.read_bytes()
            ours(data, 1)  # the first decode loads FFmpeg's libraries: not counted
            mine = statistics.median(ours(data, args.n))
            theirs = statistics.median(peer(segment, args.n))
            print(
                f"  {label:>5} ({size}, {len(data) / 1024:.0f} KiB): prober {mine * 1000:6.1f} ms   "
                f"ffmpeg CLI {theirs * 1000:6.1f} ms   ratio {mine / theirs:.2f}"
            )


if __name__ == "__main__":
    main()
