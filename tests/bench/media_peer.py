"""Shared by the flv and rtmp benchmarks: one live-stream check run by prober's Runner in this process, and the
same read done by the FFmpeg command line (`ffmpeg ... -f null -` decoding everything for the same seconds,
`ffprobe -show_packets -read_intervals %+N` reading the packets), each peer's CPU taken from its own rusage
(os.wait4), never from RUSAGE_CHILDREN (which would also count the ffmpeg servers this benchmark starts).
Not collected by pytest.

Machines here are shared and noisy: read the ratio, not the absolute numbers.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Figure", "collect", "ffmpeg_decode", "ffprobe_packets", "peer_cpu", "print_table", "prober_cpu"]


@dataclass(frozen=True)
class Figure:
    label: str
    cpu: list[float]
    wall: list[float]
    outcome: str

    @property
    def median(self) -> float:
        return statistics.median(self.cpu)


def need(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is needed: apt-get install ffmpeg")
    return found


def ffmpeg_decode(url: str, seconds: float) -> list[str]:
    """The content-like peer: read and decode every frame of `seconds` of the stream, one decoding thread."""
    return [
        need("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1",
        "-t", f"{seconds:g}", "-i", url, "-f", "null", "-",
    ]  # fmt: skip


def ffprobe_packets(url: str, seconds: float) -> list[str]:
    """The packet-read peer: every packet of `seconds` of the stream, no decoding."""
    return [need("ffprobe"), "-v", "error", "-show_packets", "-read_intervals", f"%+{seconds:g}", url]


def peer_cpu(command: Sequence[str], timeout: float = 60.0) -> tuple[float, float, str]:
    """(CPU seconds of that process alone, wall seconds, exit status) of one peer command."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.01)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    error = ""
    if process.stderr is not None:
        error = process.stderr.read().decode(errors="replace").strip()
        process.stderr.close()
    outcome = "ok" if process.returncode == 0 else f"exit {process.returncode}: {error[:120]}"
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - started, outcome


async def prober_cpu(spec: Any) -> tuple[float, float, str]:
    """(CPU seconds of this process, every thread, wall seconds, status) of one check through the Runner."""
    from prober.scheduling.runner import Runner

    runner = Runner()
    cpu, wall = time.process_time(), time.perf_counter()
    result = await runner.run(spec)
    outcome = result.status if result.status == "up" else f"{result.status}: {result.error}"
    return time.process_time() - cpu, time.perf_counter() - wall, outcome


def print_table(title: str, figures: list[Figure], pairs: list[tuple[str, str]]) -> None:
    print(title)
    named = {figure.label: figure for figure in figures}
    for figure in figures:
        print(
            f"  {figure.label:<34} {figure.median * 1000:7.1f} ms CPU per check (median of {len(figure.cpu)}; "
            f"wall {statistics.median(figure.wall):.1f} s; {figure.outcome})"
        )
    for ours, theirs in pairs:
        print(f"  ratio {ours} / {theirs}: {named[ours].median / named[theirs].median:.2f}")


def collect(label: str, runs: list[tuple[float, float, str]]) -> Figure:
    outcomes = sorted({outcome for _, _, outcome in runs})
    return Figure(label, [cpu for cpu, _, _ in runs], [wall for _, wall, _ in runs], ", ".join(outcomes))
