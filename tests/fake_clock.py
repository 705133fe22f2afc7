"""The tests' clocks: `prober.clock.Clock` implementations whose time moves only when a test moves it.

Two, because tests wait in two ways, on one shared notion of time (`value`, Unix seconds; `now()`, `time()`):

- `FakeClock`: a sleep passes at once and moves time to the moment it asked for. For code that waits inside
  one call a test makes (a probe run handed `Runner(clock=...)`, the HLS origin publishing segments by it, a
  cache's ttl): the test never waits, `advance()` moves time between calls and `slept` records every wait.
- `SteppedClock`: a sleep waits until the test moves time past it (`await advance(seconds)`), sleepers waking
  in time order with the event loop settling between. For the scheduler, whose concurrent sleepers are
  what is under test; `jump` (a suspend) and `step_back` (the wall clock set back) move it abruptly.

Both start far from the real clock (EPOCH, 2027-01-15) unless told, so a test that forgot to pass the fake
one fails. Nothing here sleeps in real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta

__all__ = ["EPOCH", "FakeClock", "SteppedClock", "settle"]

EPOCH = 1_800_000_000.0
"""Where fake time starts unless told (2027-01-15): far from the real clock."""


def _seconds(start: float | datetime) -> float:
    return start.timestamp() if isinstance(start, datetime) else float(start)


class _FakeTime:
    def __init__(self, start: float | datetime = EPOCH) -> None:
        self.value = _seconds(start)
        """The current time in Unix seconds."""

    def time(self) -> float:
        return self.value

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.value, UTC)


class FakeClock(_FakeTime):
    """Time that moves when told to (`advance`, or setting `value`); `sleep_until` advances it at once."""

    def __init__(self, start: float | datetime = EPOCH) -> None:
        super().__init__(start)
        self.slept: list[float] = []
        """The seconds each sleep asked for (negative: a moment already past)."""

    def advance(self, seconds: float) -> None:
        self.value += seconds

    async def sleep_until(self, moment: datetime) -> None:
        seconds = moment.timestamp() - self.value
        self.slept.append(seconds)
        self.value += max(0.0, seconds)
        await asyncio.sleep(0)


async def settle() -> None:
    """Let every task that can run, run (a bounded number of loop turns)."""
    for _ in range(40):
        await asyncio.sleep(0)


class SteppedClock(_FakeTime):
    """Time that moves only when a test says so; sleepers wake in time order with the loop settling between."""

    def __init__(self, start: float | datetime = EPOCH) -> None:
        super().__init__(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    async def sleep_until(self, moment: datetime) -> None:
        target = moment.timestamp()
        if target <= self.value:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (target, next(self._seq), future))
        await future

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.now() + timedelta(seconds=seconds))

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self.value:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def advance(self, seconds: float) -> None:
        """Walk time forward to each sleeper's moment in turn, as a real clock would."""
        end = self.value + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= end:
            self.value = max(self.value, self._sleepers[0][0])
            self._wake_due()
            await settle()
        self.value = end
        await settle()

    async def jump(self, seconds: float) -> None:
        """Leap forward at once (a suspend): every sleeper due by then wakes together at the new time."""
        self.value += seconds
        self._wake_due()
        await settle()

    async def step_back(self, seconds: float) -> None:
        """The wall clock is set back. Sleepers wake early, as the Clock contract allows (SystemClock
        wakes at least every second), so the scheduler gets to notice."""
        self.value -= seconds
        sleepers, self._sleepers = self._sleepers, []
        for _, _, future in sleepers:
            if not future.done():
                future.set_result(None)
        await settle()
