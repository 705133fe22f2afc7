"""The scheduler: decides when each check runs and hands due checks to the daemon's run function.

One timer task and one heap of next run times serve any number of checks (10,000 is the design
point), so idle checks cost a heap entry, not a sleeping task. Run times come from the schedule
(`Schedule.slots`: slot k of an `every` is offset + k × interval), never from accumulated sleeps, so
nothing drifts. A burst of due checks is handed out in batches so the event loop stays responsive.

Rules it keeps:
- a check whose previous run is still going (or still waiting for a slot) when its next slot is due
  is not started twice: that slot is counted as `skipped`;
- when the clock leaps ahead (suspend, a stalled process) the slots that went by are counted as
  `missed` and the check resumes at its next future slot, never replayed in a burst;
- a global concurrency bound and per-type bounds; start lag (the moment `run` is entered minus the
  scheduled time) therefore includes any wait for a slot;
- `run` raising is logged and counted; the scheduler carries on;
- with a `batch_window` (the daemon uses 50 ms) the timer wakes at most once per window and starts every check
  due by then together: a run starts up to that much after its slot (counted in its lag), and the process
  does half the work per run, because checks spread evenly over the minute otherwise each wake the machine
  on their own (tests/bench/bench_scheduler.py --batch-window; the target server's CPU halves too).

It never runs probes, stores results or judges anything itself: that is the `run` function's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType

from prober.clock import Clock, SystemClock
from prober.config.loader import CheckSpec
from prober.scheduling.stats import CheckStats, LagWindow, SchedulerStats, moment_or_none

__all__ = ["DEFAULT_TYPE_LIMITS", "RunFunction", "Scheduler"]
"""SchedulerStats, CheckStats and LagSummary live in prober.scheduling.stats (import them from there)."""

log = logging.getLogger("prober.scheduler")

RunFunction = Callable[[CheckSpec, datetime], Awaitable[None]]
DEFAULT_TYPE_LIMITS: Mapping[str, int] = MappingProxyType({"browser": 2})
_BACKWARD_JUMP = 1.0
"""Seconds the wall clock may step back before every check is rescheduled from the new time."""
_CLOCK_RETRY = 1.0
"""Seconds to wait before trying again when the clock's sleep raised (so a broken clock cannot spin)."""
_BATCH = 500
"""Due checks handed out per timer tick before the timer yields to the event loop."""
_RESOLUTION = 1e-6
"""Datetimes carry microseconds: a slot within a microsecond of now is due (float timestamps round)."""


class _Entry:
    """A check's place in the scheduler: its next slot and its counters."""

    __slots__ = (
        "active",
        "busy",
        "completed",
        "due",
        "errors",
        "lags",
        "last_lag",
        "last_scheduled",
        "missed",
        "running",
        "runs",
        "skipped",
        "slots",
        "spec",
        "version",
    )

    def __init__(self, spec: CheckSpec, window: int) -> None:
        self.spec = spec
        self.due = math.nan
        self.slots: Iterator[float] = iter(())
        """The check's slots after `due`, from its schedule."""
        self.version = 0
        """Bumped whenever `due` changes outside the timer, so older heap items are ignored."""
        self.active = True
        self.busy = False
        """A run is waiting for a slot or running."""
        self.running = False
        self.runs = self.completed = self.errors = self.skipped = self.missed = 0
        self.last_scheduled: float | None = None
        self.last_lag: float | None = None
        self.lags = LagWindow(window)


class Scheduler:
    """Runs every check on its schedule by calling `run(spec, scheduled_at)`; see the module docstring.

    `max_concurrency` bounds runs in progress overall, `type_limits` per check type (browser: 2).
    `batch_window`: seconds the timer waits at least between wake-ups (0: it wakes for every slot).
    `lag_window` and `global_lag_window` are how many recent lags the p50/p99 are computed over, per
    check and overall. Every method must be called from the event loop's thread.
    """

    def __init__(
        self,
        specs: Sequence[CheckSpec],
        run: RunFunction,
        *,
        max_concurrency: int = 64,
        type_limits: Mapping[str, int] = DEFAULT_TYPE_LIMITS,
        clock: Clock | None = None,
        lag_window: int = 64,
        global_lag_window: int = 16384,
        batch_window: float = 0.0,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        for type_name, limit in type_limits.items():
            if limit < 1:
                raise ValueError(f"the limit for {type_name} checks must be at least 1, got {limit}")
        if not 0.0 <= batch_window <= 1.0:
            raise ValueError(f"batch_window must be between 0 and 1 second, got {batch_window}")
        self._batch_window = batch_window
        self._run = run
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._slots = asyncio.Semaphore(max_concurrency)
        self._type_slots = {name: asyncio.Semaphore(limit) for name, limit in type_limits.items()}
        self._lag_window = lag_window
        self._entries: dict[str, _Entry] = {}
        self._retired: dict[str, _Entry] = {}
        """Removed checks whose last run is still going; a re-added name picks its entry up again."""
        self._heap: list[tuple[float, int, int, _Entry]] = []
        self._seq = itertools.count()
        self._tasks: dict[asyncio.Task[None], _Entry] = {}
        self._timer: asyncio.Task[None] | None = None
        self._sleeper: asyncio.Future[None] | None = None
        self._stopping = False
        self._last_now: float | None = None
        self._busy = self._in_flight = 0
        self._runs = self._completed = self._errors = self._skipped = self._missed = 0
        self._lags = LagWindow(global_lag_window)
        self.replace(specs)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the timer and give every check its first slot (the first one after now).

        Slots are computed in batches with the timer already going (10,000 cron checks take about a
        second), so the first checks run on time while the rest are still being placed; every check's
        first slot is counted from the moment `start` was called, so none is lost to the placing."""
        if self._timer is not None:
            raise RuntimeError("the scheduler is already started")
        self._last_now = started = self._now()
        self._timer = asyncio.create_task(self._tick_forever(), name="prober-scheduler")
        self._timer.add_done_callback(self._timer_ended)
        entries = list(self._entries.values())
        for first in range(0, len(entries), _BATCH):
            for entry in entries[first : first + _BATCH]:
                if entry.active and math.isnan(entry.due):  # replace() may have placed it meanwhile
                    self._reschedule(entry, started)
            self._wake()
            await asyncio.sleep(0)

    def _timer_ended(self, timer: asyncio.Task[None]) -> None:
        if not self._stopping and not timer.cancelled():
            log.critical("the scheduler's timer stopped: no check will run any more", exc_info=timer.exception())

    async def stop(self, grace: float) -> None:
        """Start no more runs; let runs in `run` finish for up to `grace` seconds, then cancel them."""
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        waiting = [task for task, entry in self._tasks.items() if not entry.running]
        for task in waiting:
            task.cancel()
        pending = set(self._tasks)
        if pending and grace > 0:
            _, pending = await asyncio.wait(pending, timeout=grace)
        stragglers = [task for task in pending if not task.done()]
        names = sorted(self._tasks[task].spec.name for task in stragglers)
        for task in stragglers:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if stragglers:
            log.warning(
                "cancelled %d runs still going after the %gs grace period: %s",
                len(stragglers),
                grace,
                ", ".join(names[:10]) + (" …" if len(names) > 10 else ""),
            )

    # -- reload ----------------------------------------------------------------------------------

    def replace(self, specs: Sequence[CheckSpec]) -> None:
        """Swap in a new set of checks (a reload). Checks are matched by name: an unchanged schedule
        keeps its next slot, counters always carry over; a changed schedule is recomputed from now;
        removed checks get no further runs (a run already going finishes); new checks get their slot."""
        duplicates = sorted(name for name, count in Counter(spec.name for spec in specs).items() if count > 1)
        if duplicates:
            raise ValueError(f"check names must be unique; duplicated: {', '.join(duplicates)}")
        started = self._timer is not None
        now = self._now() if started else math.nan
        entries: dict[str, _Entry] = {}
        for spec in specs:
            entry = self._entries.get(spec.name)
            if entry is not None:
                schedule_changed = entry.spec.run_schedule != spec.run_schedule
                entry.spec = spec
                if started and schedule_changed:
                    self._reschedule(entry, now)
            else:
                entry = self._retired.pop(spec.name, None) or _Entry(spec, self._lag_window)
                entry.spec = spec
                entry.active = True
                if started:
                    self._reschedule(entry, now)
            entries[spec.name] = entry
        for name, entry in self._entries.items():
            if name not in entries:
                entry.active = False
                entry.version += 1
                entry.due = math.nan
                if entry.busy:
                    self._retired[name] = entry
        self._entries = entries
        if len(self._heap) > 2 * len(entries) + 1024:
            self._rebuild_heap()
        self._wake()

    # -- statistics ------------------------------------------------------------------------------

    def stats(self, *, checks: bool = True) -> SchedulerStats:
        """Counters and lag percentiles overall and, unless `checks=False`, per check.

        Per-check stats cost about 10 ms per 1,000 checks (the event loop waits meanwhile); the totals
        alone are cheap enough to poll often."""
        per_check = {name: self._check_stats(entry) for name, entry in self._entries.items()} if checks else {}
        return SchedulerStats(
            checks=per_check,
            runs=self._runs,
            completed=self._completed,
            errors=self._errors,
            skipped=self._skipped,
            missed=self._missed,
            in_flight=self._in_flight,
            waiting=self._busy - self._in_flight,
            lag=self._lags.summary(),
        )

    def check_stats(self, name: str) -> CheckStats | None:
        """One check's stats, or None when no check has that name."""
        entry = self._entries.get(name)
        return None if entry is None else self._check_stats(entry)

    @staticmethod
    def _check_stats(entry: _Entry) -> CheckStats:
        spec = entry.spec
        return CheckStats(
            name=spec.name,
            type=spec.type,
            schedule=spec.model.schedule.text,
            runs=entry.runs,
            completed=entry.completed,
            errors=entry.errors,
            skipped=entry.skipped,
            missed=entry.missed,
            running=entry.running,
            waiting=entry.busy and not entry.running,
            next_run=moment_or_none(entry.due),
            last_scheduled=moment_or_none(entry.last_scheduled),
            last_lag=entry.last_lag,
            lag=entry.lags.summary(),
        )

    # -- the timer -------------------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _reschedule(self, entry: _Entry, now: float) -> None:
        entry.version += 1
        entry.slots = entry.spec.run_schedule.slots(now, entry.spec.name)
        entry.due = next(entry.slots)
        heapq.heappush(self._heap, (entry.due, next(self._seq), entry.version, entry))

    def _rebuild_heap(self) -> None:
        self._heap = [
            (entry.due, next(self._seq), entry.version, entry)
            for entry in self._entries.values()
            if not math.isnan(entry.due)
        ]
        heapq.heapify(self._heap)

    def _wake(self) -> None:
        if self._sleeper is not None and not self._sleeper.done():
            self._sleeper.cancel()

    async def _tick_forever(self) -> None:
        while not self._stopping:
            now = self._now()
            try:
                self._tick(now)
            except Exception:
                log.exception("the scheduler's timer hit an unexpected error; carrying on")
            target = self._heap[0][0] if self._heap else now + 3600.0
            if self._batch_window:
                target = max(target, now + self._batch_window)
            self._sleeper = sleeper = asyncio.ensure_future(
                self._clock.sleep_until(datetime.fromtimestamp(target, UTC))
            )
            failure: BaseException | None = None
            try:
                # Awaited directly, not through asyncio.wait (which costs a waiter and callbacks per wake-up,
                # and the timer wakes up about once per run): `_wake` cancelling the sleeper ends the wait,
                # a cancel of the timer itself goes on.
                await sleeper
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not sleeper.cancelled() or (task is not None and task.cancelling()):
                    raise
            except Exception as exc:
                failure = exc
            finally:
                sleeper.cancel()
                self._sleeper = None
            if failure is not None:
                log.error("the clock failed to sleep; retrying shortly", exc_info=failure)
                await asyncio.sleep(_CLOCK_RETRY)

    def _tick(self, now: float) -> None:
        if self._last_now is not None and now < self._last_now - _BACKWARD_JUMP:
            log.warning("the clock went back %.1fs; rescheduling every check from the new time", self._last_now - now)
            for entry in self._entries.values():
                entry.version += 1
                entry.slots = entry.spec.run_schedule.slots(now, entry.spec.name)
                entry.due = next(entry.slots)
            self._rebuild_heap()
        self._last_now = now
        heap = self._heap
        stalled = missed = handed_out = 0
        while heap and heap[0][0] <= now + _RESOLUTION and handed_out < _BATCH:
            due, _, version, entry = heapq.heappop(heap)
            if version != entry.version or not entry.active:
                continue
            name = entry.spec.name
            handed_out += 1
            try:
                following = next(entry.slots)
                if following <= now + _RESOLUTION:
                    schedule = entry.spec.run_schedule
                    count, following = schedule.skip_to(due, now + _RESOLUTION, name)
                    entry.slots = schedule.slots(following, name)
                    entry.missed += count
                    self._missed += count
                    stalled += 1
                    missed += count
                else:
                    self._dispatch(entry, due)
            except Exception:
                log.exception("scheduling check %s failed; trying again in a minute", name)
                following = now + 60.0
                entry.slots = entry.spec.run_schedule.slots(following, name)
            entry.due = following
            heapq.heappush(heap, (following, next(self._seq), entry.version, entry))
        if stalled:
            log.warning(
                "the scheduler fell behind (suspend, clock jump or a stalled process): %d checks let %d due "
                "runs go by and resume at their next slot instead of running them in a burst",
                stalled,
                missed,
            )

    def _dispatch(self, entry: _Entry, due: float) -> None:
        if entry.busy:
            entry.skipped += 1
            self._skipped += 1
            log.info(
                "check %s is still running; skipping its run due at %s",
                entry.spec.name,
                datetime.fromtimestamp(due, UTC).isoformat(),
            )
            return
        entry.busy = True
        self._busy += 1
        task = asyncio.create_task(self._execute(entry, entry.spec, due), name=f"check {entry.spec.name}")
        self._tasks[task] = entry
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        """Done callback: runs even for a task cancelled before it started, so `busy` never sticks."""
        entry = self._tasks.pop(task)
        entry.busy = False
        self._busy -= 1
        name = entry.spec.name
        if not entry.active and self._retired.get(name) is entry:
            del self._retired[name]

    # -- one run ---------------------------------------------------------------------------------

    async def _execute(self, entry: _Entry, spec: CheckSpec, due: float) -> None:
        type_slot = self._type_slots.get(spec.type)
        async with type_slot if type_slot is not None else contextlib.nullcontext(), self._slots:
            if self._stopping or not entry.active:
                return
            lag = max(0.0, round(self._now() - due, 6))
            entry.runs += 1
            entry.last_scheduled = due
            entry.last_lag = lag
            entry.lags.add(lag)
            self._runs += 1
            self._lags.add(lag)
            entry.running = True
            self._in_flight += 1
            try:
                await self._run(spec, datetime.fromtimestamp(due, UTC))
            except Exception:
                entry.errors += 1
                self._errors += 1
                log.exception("running check %s raised; the scheduler carries on", spec.name)
            else:
                entry.completed += 1
                self._completed += 1
            finally:
                entry.running = False
                self._in_flight -= 1
