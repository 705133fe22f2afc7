"""The daemon's own health: event-loop lag, background-task restarts, and whether the database takes writes.

`database_problem(path)` is /healthz's look at the database file itself: still there, still an SQLite file
and readable through a fresh connection. A running daemon never notices a file removed, replaced or
overwritten under it (SQLite keeps its open descriptor and cached pages and goes on "succeeding"), so
health must look. `LoopLag.run()` sleeps `interval` again and again and records how much later than
asked each wake-up came: that is how long something held the event loop (a regex, a parse, a GC pause).
It is exported as the histogram `prober_event_loop_lag_seconds`. `Runtime` bundles what /metrics and
/healthz read from the daemon. Nothing here writes; `database_problem` reads 100 bytes and opens a read-only connection.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LAG_BUCKETS", "LoopLag", "Runtime", "database_problem"]

SQLITE_HEADER = b"SQLite format 3\x00"

LAG_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class LoopLag:
    interval: float = 0.1
    counts: list[int] = field(default_factory=lambda: [0] * (len(LAG_BUCKETS) + 1))
    """Per bucket (not cumulative); the last one is +Inf."""
    total: float = 0.0
    worst: float = 0.0

    @property
    def count(self) -> int:
        return sum(self.counts)

    def observe(self, lag: float) -> None:
        lag = max(0.0, lag)
        self.counts[bisect.bisect_left(LAG_BUCKETS, lag)] += 1
        self.total += lag
        self.worst = max(self.worst, lag)

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, cumulative count) pairs as Prometheus histograms list them, +Inf last."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip((*map(str, LAG_BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(self.interval)
            self.observe(loop.time() - asked - self.interval)


@dataclass(slots=True)
class Runtime:
    """What the API exports about the daemon itself (read in the loop's thread or a worker; plain values)."""

    loop_lag: LoopLag = field(default_factory=LoopLag)
    task_restarts: dict[str, int] = field(default_factory=dict)
    otel_dropped: Callable[[], dict[str, int]] | None = None
    """OpenTelemetry spans and metric points dropped ({signal: count}), when telemetry is on."""


def database_problem(path: Path, opened: tuple[int, int] | None = None) -> str | None:
    """Why the database file at `path` cannot be trusted any more, or None when it looks sound.

    `opened`: the (device, inode) the daemon opened, to notice a file replaced by another one. Cheap (a
    stat, 100 bytes and a schema read), so /healthz can call it on every request, in a worker thread.
    """
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return f"the database file {path} is gone (removed or moved while prober runs): results go nowhere"
    except OSError as exc:
        return f"cannot reach the database file {path}: {exc.strerror or exc}"
    if opened is not None and (stat.st_dev, stat.st_ino) != opened:
        return f"the database file {path} was replaced by another file while prober runs"
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        return f"cannot read the database file {path}: {exc.strerror or exc}"
    if header != SQLITE_HEADER:
        return f"the database file {path} is not a SQLite database any more (its header is damaged)"
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error as exc:
        return f"cannot open the database {path}: {exc}"
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        return f"cannot read the database {path}: {exc}"
    finally:
        connection.close()
    return None
