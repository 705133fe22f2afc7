"""Maintenance windows: which window, if any, covers a check at a moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from prober.config.maintenance import active_window, occurrence, window_applies
from prober.config.models import MaintenanceWindow

SUNDAY_3AM = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # 2026-11-22 is a Sunday


def window(
    name: str = "weekly-deploy", schedule: str = "0 3 * * sun", duration: str = "30m", **kw: object
) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate({"name": name, "schedule": schedule, "duration": duration, **kw})


@pytest.mark.parametrize(
    ("offset", "active"),
    [
        (timedelta(seconds=-1), False),
        (timedelta(0), True),
        (timedelta(minutes=29, seconds=59), True),
        (timedelta(minutes=30), False),
        (timedelta(days=1), False),
        (timedelta(days=7, minutes=10), True),
    ],
)
def test_window_covers_from_each_cron_firing_for_its_duration(offset: timedelta, active: bool) -> None:
    weekly = window()
    assert (active_window([weekly], "api-health", SUNDAY_3AM + offset) is weekly) is active


def test_occurrence_gives_the_start_and_end_of_the_covering_window() -> None:
    start, end = occurrence(window(), SUNDAY_3AM + timedelta(minutes=5)) or (None, None)
    assert start == SUNDAY_3AM and end == SUNDAY_3AM + timedelta(minutes=30)
    assert occurrence(window(), SUNDAY_3AM - timedelta(minutes=5)) is None


def test_checks_are_matched_by_glob_and_default_to_all() -> None:
    only_api = window(checks=["api-*", "auth"])
    assert window_applies(only_api, "api-health")
    assert window_applies(only_api, "auth")
    assert not window_applies(only_api, "web-home")
    assert not window_applies(only_api, "API-health")
    assert window_applies(window(), "anything")
    assert active_window([only_api], "web-home", SUNDAY_3AM) is None


def test_the_first_matching_window_in_definition_order_is_returned() -> None:
    first = window("a", checks=["web-*"])
    second = window("b")
    third = window("c")
    assert active_window([first, second, third], "api", SUNDAY_3AM) is second
    assert active_window([first, second, third], "web-home", SUNDAY_3AM) is first
    assert active_window([], "api", SUNDAY_3AM) is None


def test_every_schedule_windows_repeat_on_their_interval() -> None:
    hourly = window("hourly", schedule="every 1h", duration="5m")
    start = hourly.schedule.next_after(SUNDAY_3AM, "hourly")
    assert occurrence(hourly, start) == (start, start + timedelta(minutes=5))
    assert occurrence(hourly, start - timedelta(seconds=1)) is None
    assert occurrence(hourly, start + timedelta(hours=3, minutes=4)) is not None
    assert occurrence(hourly, start + timedelta(hours=3, minutes=5)) is None


def test_a_window_longer_than_its_interval_is_always_active() -> None:
    always = window("always", schedule="*/10 * * * *", duration="15m")
    for minutes in range(0, 120, 7):
        assert active_window([always], "x", SUNDAY_3AM + timedelta(minutes=minutes, seconds=13)) is always


def test_times_in_other_timezones_are_compared_in_utc() -> None:
    paris = SUNDAY_3AM.astimezone(ZoneInfo("Europe/Paris"))
    assert active_window([window()], "api", paris + timedelta(minutes=1)) is not None


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        active_window([window()], "api", datetime(2026, 11, 22, 3, 5))
