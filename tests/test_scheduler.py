"""The scheduler, driven by a fake clock: spreading, cron seconds, no drift, skips, stalls, bounds, reload, stop."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fake_clock import SteppedClock, settle

from prober.clock import SystemClock
from prober.config.conditions import MetricSpec
from prober.config.loader import CheckSpec, load_config
from prober.config.models import CheckBase
from prober.probes.base import Observation, ProbeContext
from prober.scheduling.scheduler import Scheduler

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class FakeProbe:
    type_name: ClassVar[str] = "http"
    Config = CheckBase
    metrics: ClassVar[Mapping[str, MetricSpec]] = {}

    def default_expect(self, check: CheckBase) -> Mapping[str, Any]:
        return {}

    async def run(self, check: CheckBase, ctx: ProbeContext) -> Observation:
        return Observation()


def spec(name: str, schedule: str = "every 1m", type_name: str = "http", timeout: str = "10s") -> CheckSpec:
    model = CheckBase.model_validate({"name": name, "type": type_name, "schedule": schedule, "timeout": timeout})
    return CheckSpec(model=model, probe=FakeProbe(), conditions=(), source="test")


class Recorder:
    """A run function: records (name, scheduled_at, started_at) and optionally takes fake time."""

    def __init__(
        self, clock: SteppedClock, duration: float = 0.0, durations: Mapping[str, float] | None = None
    ) -> None:
        self.clock = clock
        self.duration = duration
        self.durations = dict(durations or {})
        self.calls: list[tuple[str, datetime, datetime]] = []
        self.active = 0
        self.peak = 0
        self.peak_by_type: Counter[str] = Counter()
        self._active_by_type: Counter[str] = Counter()

    async def __call__(self, check: CheckSpec, scheduled_at: datetime) -> None:
        self.calls.append((check.name, scheduled_at, self.clock.now()))
        self.active += 1
        self._active_by_type[check.type] += 1
        self.peak = max(self.peak, self.active)
        self.peak_by_type[check.type] = max(self.peak_by_type[check.type], self._active_by_type[check.type])
        try:
            duration = self.durations.get(check.name, self.duration)
            if duration:
                await self.clock.sleep(duration)
        finally:
            self.active -= 1
            self._active_by_type[check.type] -= 1

    def of(self, name: str) -> list[tuple[datetime, datetime]]:
        return [(scheduled, started) for check, scheduled, started in self.calls if check == name]


async def test_every_minute_checks_start_spread_over_the_minute_each_once() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock)
    scheduler = Scheduler([spec(f"check-{i}") for i in range(300)], recorder, clock=clock)
    await scheduler.start()
    await clock.advance(60)
    await scheduler.stop(0)
    assert Counter(name for name, _, _ in recorder.calls) == {f"check-{i}": 1 for i in range(300)}
    per_second = Counter(int((scheduled - START).total_seconds()) for _, scheduled, _ in recorder.calls)
    assert len(per_second) >= 55
    assert max(per_second.values()) <= 15
    assert all(scheduled == started for _, scheduled, started in recorder.calls)


async def test_a_batch_window_starts_due_checks_together_no_later_than_the_window_and_misses_none() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock)
    checks = [spec(f"check-{i}", "every 10s") for i in range(200)]
    scheduler = Scheduler(checks, recorder, clock=clock, batch_window=0.5)
    await scheduler.start()
    await clock.advance(30)
    await scheduler.stop(0)
    late = [(started - scheduled).total_seconds() for _, scheduled, started in recorder.calls]
    assert Counter(name for name, _, _ in recorder.calls) == {f"check-{i}": 3 for i in range(200)}
    assert all(0 <= lag <= 0.5 + 1e-6 for lag in late), max(late)
    assert max(late) > 0.25  # they did wait for the window: starts are grouped, not one wake-up per slot
    wakes = {started for _, _, started in recorder.calls}
    assert len(wakes) <= 30 / 0.5 + 1 < len({scheduled for _, scheduled, _ in recorder.calls})
    stats = scheduler.stats()
    assert (stats.missed, stats.skipped) == (0, 0)
    with pytest.raises(ValueError, match="batch_window"):
        Scheduler(checks, recorder, clock=clock, batch_window=2.0)


async def test_a_burst_of_checks_due_at_the_same_second_all_run_and_none_counts_as_missed() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock)
    checks = [spec(f"c{i}", "* * * * *") for i in range(1500)]  # no H: all due on the minute
    scheduler = Scheduler(checks, recorder, clock=clock, max_concurrency=1000)
    await scheduler.start()
    await clock.advance(60)
    await clock.advance(1)
    await scheduler.stop(0)
    assert len({name for name, _, _ in recorder.calls}) == 1500
    assert {scheduled for _, scheduled, _ in recorder.calls} == {START + timedelta(minutes=1)}
    stats = scheduler.stats()
    assert (stats.missed, stats.skipped) == (0, 0)


async def test_cron_with_seconds_runs_on_exactly_those_seconds() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock)
    scheduler = Scheduler([spec("every-20s", "* * * * * */20")], recorder, clock=clock)
    await scheduler.start()
    await clock.advance(125)
    await scheduler.stop(0)
    scheduled = [s for s, _ in recorder.of("every-20s")]
    assert scheduled == [START + timedelta(seconds=20 * k) for k in range(1, 7)]


async def test_runs_stay_on_the_schedule_without_drift_over_hundreds_of_runs() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock, duration=2.9)  # each run takes time; that must not push later runs back
    check = spec("steady", "every 7s")
    scheduler = Scheduler([check], recorder, clock=clock)
    await scheduler.start()
    await clock.advance(7 * 400 + 1)
    await scheduler.stop(0)
    scheduled = [s for s, _ in recorder.of("steady")]
    assert len(scheduled) == 400
    first = scheduled[0]
    assert first == check.model.schedule.next_after(START, "steady")
    for k, moment in enumerate(scheduled):
        assert abs((moment - first).total_seconds() - 7 * k) < 1e-5
    assert scheduler.stats().checks["steady"].lag.max == 0


async def test_a_run_still_going_when_the_next_is_due_is_not_started_twice_and_is_counted() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock, durations={"slow": 25})
    scheduler = Scheduler([spec("slow", "every 10s"), spec("quick", "every 10s")], recorder, clock=clock)
    await scheduler.start()
    await clock.advance(60)
    stats = scheduler.stats()
    await scheduler.stop(0)
    assert recorder.peak_by_type["http"] <= 2
    slow = recorder.of("slow")
    # 6 slots: a 25s run occupies three of them, so runs start on every third slot.
    assert len(slow) == 2
    assert (slow[1][0] - slow[0][0]).total_seconds() == pytest.approx(30)
    assert stats.checks["slow"].skipped == 4
    assert stats.checks["slow"].runs == 2
    assert stats.checks["quick"].skipped == 0
    assert stats.checks["quick"].runs == 6
    assert stats.skipped == 4


async def test_after_a_suspend_missed_runs_are_counted_and_not_replayed_in_a_burst(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock)
    checks = [spec(f"c{i}", "every 1m") for i in range(20)]
    scheduler = Scheduler(checks, recorder, clock=clock)
    await scheduler.start()
    await clock.advance(120)
    assert len(recorder.calls) == 40
    with caplog.at_level(logging.WARNING, logger="prober.scheduler"):
        await clock.jump(3600)  # the laptop slept for an hour
    assert len(recorder.calls) == 40, "nothing may run in a burst right after the jump"
    stats = scheduler.stats()
    assert stats.missed == 20 * 60
    assert all(check.missed == 60 for check in stats.checks.values())
    assert all(check.next_run is not None and check.next_run > clock.now() for check in stats.checks.values())
    assert sum("fell behind" in record.getMessage() for record in caplog.records) == 1
    await clock.advance(60)
    await scheduler.stop(0)
    assert len(recorder.calls) == 60
    assert scheduler.stats().lag.max == 0


async def test_a_cron_check_with_seconds_skips_the_slots_of_a_suspend_and_resumes_on_its_seconds() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock)
    scheduler = Scheduler([spec("tens", "* * * * * */10")], recorder, clock=clock)
    await scheduler.start()
    await clock.advance(20)
    await clock.jump(3600)
    assert len(recorder.calls) == 2
    assert scheduler.stats().checks["tens"].missed == 360
    await clock.advance(10)
    await scheduler.stop(0)
    assert [s for s, _ in recorder.of("tens")][-1] == START + timedelta(seconds=3630)


async def test_a_small_delay_is_lag_not_a_missed_run() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock)
    scheduler = Scheduler([spec("a", "every 1m")], recorder, clock=clock)
    await scheduler.start()
    due = scheduler.stats().checks["a"].next_run
    assert due is not None
    await clock.jump((due - clock.now()).total_seconds() + 20)
    await scheduler.stop(0)
    stats = scheduler.stats().checks["a"]
    assert (stats.runs, stats.missed) == (1, 0)
    assert stats.last_lag == pytest.approx(20)


async def test_the_global_concurrency_bound_is_never_exceeded_and_lag_includes_the_wait() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock, duration=10)
    checks = [spec(f"c{i}", "*/1 * * * *") for i in range(12)]  # all due at the same moment
    scheduler = Scheduler(checks, recorder, clock=clock, max_concurrency=5)
    await scheduler.start()
    await clock.advance(60)
    stats = scheduler.stats()
    assert (stats.in_flight, stats.waiting) == (5, 7)
    await clock.advance(30)
    await scheduler.stop(0)
    assert recorder.peak == 5
    assert len(recorder.calls) == 12
    lags = sorted((started - scheduled).total_seconds() for _, scheduled, started in recorder.calls)
    assert lags == [0] * 5 + [10] * 5 + [20] * 2
    assert scheduler.stats().lag.max == 20


async def test_browser_checks_are_limited_to_two_at_a_time_while_others_run_freely() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock, duration=5)
    checks = [spec(f"b{i}", "*/1 * * * *", "browser", "30s") for i in range(6)]
    checks += [spec(f"h{i}", "*/1 * * * *") for i in range(6)]
    scheduler = Scheduler(checks, recorder, clock=clock)
    await scheduler.start()
    await clock.advance(60)
    assert recorder.peak_by_type == {"browser": 2, "http": 6}
    await clock.advance(20)
    await scheduler.stop(0)
    assert recorder.peak_by_type["browser"] == 2
    assert len(recorder.calls) == 12


async def test_custom_type_limits_apply() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock, duration=5)
    checks = [spec(f"h{i}", "*/1 * * * *") for i in range(4)]
    scheduler = Scheduler(checks, recorder, clock=clock, type_limits={"http": 1})
    await scheduler.start()
    await clock.advance(80)
    await scheduler.stop(0)
    assert recorder.peak == 1
    assert len(recorder.calls) == 4


async def test_replace_keeps_unchanged_checks_timing_and_counters() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock)
    scheduler = Scheduler([spec("keep"), spec("drop"), spec("retime", "every 1m")], recorder, clock=clock)
    await scheduler.start()
    await clock.advance(120)
    before = scheduler.stats().checks
    assert before["keep"].runs == 2
    scheduler.replace([spec("keep"), spec("retime", "every 5m"), spec("new", "every 1m")])
    await settle()
    after = scheduler.stats().checks
    assert set(after) == {"keep", "retime", "new"}
    assert after["keep"].next_run == before["keep"].next_run
    assert after["keep"].runs == 2
    assert after["retime"].runs == before["retime"].runs
    assert after["retime"].next_run == spec("retime", "every 5m").model.schedule.next_after(clock.now(), "retime")
    dropped_runs = len(recorder.of("drop"))
    await clock.advance(600)
    await scheduler.stop(0)
    assert len(recorder.of("drop")) == dropped_runs
    assert scheduler.stats().checks["keep"].runs == 12
    assert len(recorder.of("new")) == 10
    keep = [s for s, _ in recorder.of("keep")]
    assert all((b - a).total_seconds() == pytest.approx(60) for a, b in itertools.pairwise(keep))


async def test_a_removed_check_readded_while_its_run_is_going_is_not_run_twice() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock, duration=90)
    scheduler = Scheduler([spec("long", "every 1m")], recorder, clock=clock)
    await scheduler.start()
    await clock.advance(60)
    assert recorder.active == 1
    scheduler.replace([])
    scheduler.replace([spec("long", "every 1m")])
    await clock.advance(60)
    assert recorder.peak == 1
    assert scheduler.stats().checks["long"].skipped == 1
    await scheduler.stop(0)


async def test_a_run_that_raises_is_logged_counted_and_the_check_keeps_its_schedule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = SteppedClock(START)
    calls: list[str] = []

    async def explode(check: CheckSpec, scheduled_at: datetime) -> None:
        calls.append(check.name)
        raise RuntimeError("the store is on fire")

    scheduler = Scheduler([spec("a", "every 10s"), spec("b", "every 10s")], explode, clock=clock)
    await scheduler.start()
    with caplog.at_level(logging.ERROR, logger="prober.scheduler"):
        await clock.advance(30)
    await scheduler.stop(0)
    assert Counter(calls) == {"a": 3, "b": 3}
    stats = scheduler.stats()
    assert (stats.errors, stats.completed, stats.runs) == (6, 0, 6)
    assert any("the store is on fire" in (record.exc_text or "") for record in caplog.records)


async def test_stop_lets_short_runs_finish_and_cancels_stragglers_after_the_grace() -> None:
    clock = SteppedClock(START)
    finished: list[str] = []
    cancelled: list[str] = []

    async def run(check: CheckSpec, scheduled_at: datetime) -> None:
        try:
            if check.name.startswith("hang"):
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(0.05)
            finished.append(check.name)
        except asyncio.CancelledError:
            cancelled.append(check.name)
            raise

    checks = [spec("hang-1", "*/1 * * * *"), spec("hang-2", "*/1 * * * *"), spec("short", "*/1 * * * *")]
    scheduler = Scheduler(checks, run, clock=clock)
    await scheduler.start()
    await clock.advance(60)
    assert scheduler.stats().in_flight == 3
    loop = asyncio.get_running_loop()
    began = loop.time()
    await scheduler.stop(0.3)
    elapsed = loop.time() - began
    assert finished == ["short"]
    assert sorted(cancelled) == ["hang-1", "hang-2"]
    assert 0.29 <= elapsed < 1.0
    assert scheduler.stats().in_flight == 0


async def test_stop_cancels_runs_still_waiting_for_a_slot_without_starting_them() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock, duration=100)
    checks = [spec(f"c{i}", "*/1 * * * *") for i in range(4)]
    scheduler = Scheduler(checks, recorder, clock=clock, max_concurrency=1)
    await scheduler.start()
    await clock.advance(60)
    assert scheduler.stats().waiting == 3
    await scheduler.stop(0.05)
    assert len(recorder.calls) == 1
    stats = scheduler.stats()
    assert (stats.in_flight, stats.waiting) == (0, 0)


async def test_a_clock_stepped_back_does_not_pause_checks_until_it_catches_up() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock)
    scheduler = Scheduler([spec("a", "every 10s")], recorder, clock=clock)
    await scheduler.start()
    await clock.advance(30)
    assert len(recorder.calls) == 3
    await clock.step_back(3600)
    await clock.advance(30)
    await scheduler.stop(0)
    assert len(recorder.calls) == 6


async def test_a_clock_whose_sleep_fails_is_logged_and_the_timer_keeps_going(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("prober.scheduling.scheduler._CLOCK_RETRY", 0.001)
    clock = SteppedClock(START)
    real_sleep = clock.sleep_until
    failures = 3

    async def flaky_sleep_until(moment: datetime) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise OSError("timer broke")
        await real_sleep(moment)

    monkeypatch.setattr(clock, "sleep_until", flaky_sleep_until)
    recorder = Recorder(clock)
    scheduler = Scheduler([spec("a", "every 10s")], recorder, clock=clock)
    with caplog.at_level(logging.ERROR, logger="prober.scheduler"):
        await scheduler.start()
        for _ in range(3):
            await asyncio.sleep(0.01)
        await clock.advance(30)
    await scheduler.stop(0)
    assert len(recorder.calls) == 3
    assert sum("clock failed to sleep" in record.getMessage() for record in caplog.records) == 3


async def test_checks_loaded_from_yaml_run_on_their_schedules_with_the_browser_bound(tmp_path: Path) -> None:
    lines = ["version: 1", "defaults: {schedule: '*/1 * * * *'}", "checks:"]
    lines += [f"  - {{name: page-{i}, type: browser, url: 'http://127.0.0.1:9/{i}'}}" for i in range(4)]
    lines += ["  - {name: api, type: http, url: 'http://127.0.0.1:9/', schedule: 'every 15s'}"]
    (tmp_path / "checks.yaml").write_text("\n".join(lines) + "\n")
    specs = load_config([tmp_path], env={}).checks
    clock = SteppedClock(START)
    recorder = Recorder(clock, duration=5)
    scheduler = Scheduler(specs, recorder, clock=clock)
    await scheduler.start()
    await clock.advance(60)
    assert recorder.peak_by_type == {"browser": 2, "http": 1}
    await clock.advance(15)
    await scheduler.stop(0)
    assert Counter(name for name, _, _ in recorder.calls) == {**{f"page-{i}": 1 for i in range(4)}, "api": 5}


async def test_duplicate_names_and_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicated: a"):
        Scheduler([spec("a"), spec("a")], Recorder(SteppedClock(START)))
    with pytest.raises(ValueError, match="max_concurrency"):
        Scheduler([], Recorder(SteppedClock(START)), max_concurrency=0)
    with pytest.raises(ValueError, match="browser"):
        Scheduler([], Recorder(SteppedClock(START)), type_limits={"browser": 0})


async def test_stats_report_counters_lags_and_next_run_as_json() -> None:
    clock = SteppedClock(START)
    recorder = Recorder(clock)
    scheduler = Scheduler([spec("a", "every 10s")], recorder, clock=clock)
    await scheduler.start()
    await clock.advance(35)
    await scheduler.stop(0)
    data = scheduler.stats().to_json()
    assert data["runs"] == 3
    assert data["lag"] == {"p50": 0.0, "p99": 0.0, "max": 0.0, "samples": 3}
    check = data["checks"]["a"]
    assert (check["runs"], check["completed"], check["skipped"], check["missed"]) == (3, 3, 0, 0)
    assert check["schedule"] == "every 10s"
    assert check["next_run"].endswith("Z")
    assert check["last_lag"] == 0.0


async def test_real_clock_every_200ms_runs_on_its_grid_and_on_time() -> None:
    scheduled: list[float] = []
    lags: list[float] = []

    async def run(check: CheckSpec, scheduled_at: datetime) -> None:
        lags.append(datetime.now(UTC).timestamp() - scheduled_at.timestamp())
        scheduled.append(scheduled_at.timestamp())

    scheduler = Scheduler([spec("fast", "every 200ms")], run, clock=SystemClock())
    await scheduler.start()
    await asyncio.sleep(1.1)
    await scheduler.stop(1)
    missed = scheduler.stats().checks["fast"].missed
    assert 5 <= len(scheduled) + missed <= 6  # a busy CI box may stall a slot away, never run one twice
    assert len(scheduled) >= 3
    for earlier, later in itertools.pairwise(scheduled):
        steps = (later - earlier) / 0.2
        assert steps >= 0.999 and abs(steps - round(steps)) < 1e-4
    assert sorted(lags)[len(lags) // 2] < 0.05
    assert all(0 <= lag < 0.25 for lag in lags)
