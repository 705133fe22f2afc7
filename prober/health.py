"""The daemon's own health: event-loop lag, background-task restarts, and whether the database takes writes.

`LoopLag.run()` sleeps `interval` again and again and records how much later than asked each wake-up came:
that is how long something held the event loop (a regex, a parse, a GC pause). It is exported as the
histogram `prober_event_loop_lag_seconds`. `Runtime` bundles what /metrics and /healthz read from the
daemon. Nothing here does I/O beyond sleeping.
"""

from __future__ import annotations

import asyncio
import bisect
from dataclasses import dataclass, field

__all__ = ["LAG_BUCKETS", "LoopLag", "Runtime"]

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
