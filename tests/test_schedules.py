"""Schedule arithmetic: spreading by name, strictly-later slots, no drift, cron with seconds and H, stalls."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest

from prober.config.schedules import parse_schedule

NOON = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_every_minute_checks_are_spread_over_the_whole_minute_by_name() -> None:
    schedule = parse_schedule("every 1m")
    seconds = Counter(schedule.next_after(NOON, f"check-{i}").second for i in range(1000))
    assert len(seconds) == 60
    assert max(seconds.values()) < 35  # ~17 per second on average; nothing close to a pile-up


def test_the_same_name_always_gets_the_same_slot_and_different_names_differ() -> None:
    schedule = parse_schedule("every 5m")
    assert schedule.next_after(NOON, "api-health") == schedule.next_after(NOON, "api-health")
    assert schedule.next_after(NOON, "api-health") != schedule.next_after(NOON, "api-login")


def test_next_slot_is_strictly_after_the_moment_even_when_the_moment_is_a_slot() -> None:
    schedule = parse_schedule("every 30s")
    slot = schedule.next_after(NOON, "x")
    assert slot > NOON
    assert schedule.next_after(slot, "x") == slot + timedelta(seconds=30)
    assert schedule.next_after(slot - timedelta(microseconds=1), "x") == slot


def test_every_slots_stay_exactly_on_their_grid_over_ten_thousand_steps() -> None:
    schedule = parse_schedule("every 700ms")
    first = schedule.next_timestamp(NOON.timestamp(), "drift")
    slot = first
    for _ in range(10_000):
        slot = schedule.next_timestamp(slot, "drift")
    assert slot - first == pytest.approx(10_000 * 0.7, abs=1e-5)


@pytest.mark.parametrize("text", ["every 700ms", "every 1h", "*/7 * * * * *", "H/5 * * * *"])
def test_slots_are_the_same_times_as_asking_next_again_and_again(text: str) -> None:
    schedule = parse_schedule(text)
    start = NOON.timestamp() + 0.123
    slots = schedule.slots(start, "iter")
    expected = start
    for _ in range(200):
        expected = schedule.next_timestamp(expected, "iter")
        assert next(slots) == pytest.approx(expected, abs=1e-6)


def test_cron_with_six_fields_reads_the_last_one_as_seconds() -> None:
    schedule = parse_schedule("* * * * * */15")
    slots = [schedule.next_after(NOON, "c")]
    for _ in range(5):
        slots.append(schedule.next_after(slots[-1], "c"))
    assert [s.second for s in slots] == [15, 30, 45, 0, 15, 30]


def test_five_field_cron_fires_on_the_minute_in_utc() -> None:
    schedule = parse_schedule("*/5 * * * *")
    paris = timezone(timedelta(hours=1))
    slot = schedule.next_after(NOON.astimezone(paris), "c")
    assert slot == NOON + timedelta(minutes=5)
    assert slot.tzinfo == UTC


def test_cron_h_fields_are_hashed_from_the_check_name_and_stable() -> None:
    schedule = parse_schedule("H * * * *")
    minutes = {schedule.next_after(NOON, f"check-{i}").minute for i in range(200)}
    assert len(minutes) > 40
    assert schedule.next_after(NOON, "check-1") == schedule.next_after(NOON, "check-1")


def test_skip_to_counts_every_slot_that_went_by_and_returns_the_next_future_one() -> None:
    schedule = parse_schedule("every 1m")
    due = schedule.next_timestamp(NOON.timestamp(), "s")
    count, following = schedule.skip_to(due, due + 3600 + 1, "s")
    assert count == 61
    assert following == pytest.approx(due + 61 * 60)
    assert schedule.skip_to(due, due - 1, "s") == (0, due)


def test_skip_to_counts_cron_slots_and_estimates_a_day_of_seconds() -> None:
    schedule = parse_schedule("* * * * * *")
    due = NOON.timestamp() + 1
    assert schedule.skip_to(due, due + 9.5, "s") == (10, due + 10)
    count, following = schedule.skip_to(due, due + 86400.5, "s")
    assert count == 86401
    assert following == due + 86401


def test_approximate_interval_of_every_and_cron() -> None:
    assert parse_schedule("every 2h").approximate_interval() == 7200
    assert parse_schedule("*/10 * * * *").approximate_interval("x") == 600


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "expected 'every <duration>'"),
        ("every 50ms", "at least 100ms"),
        ("every soon", "bad interval"),
        ("61 * * * *", "invalid cron expression"),
        ("* * * * * * *", "invalid cron expression"),
        ("0 0 30 2 *", "never fires"),
    ],
)
def test_bad_schedules_are_refused_with_a_sentence(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_schedule(text)


def test_parsed_schedule_keeps_its_text() -> None:
    assert parse_schedule("  every 10s ").text == "every 10s"
    assert parse_schedule("*/5  * * * *").text == "*/5  * * * *"
    assert parse_schedule("*/5  * * * *").cron == "*/5 * * * *"
