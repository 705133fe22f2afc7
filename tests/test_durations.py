"""Durations as users write them, and back."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from prober.config.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("10s", 10.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("14d", 14 * 86400.0),
        ("1w", 7 * 86400.0),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("30", 30.0),
        ("2.5", 2.5),
        (" 10 s ", 10.0),
        ("0", 0.0),
        (45, 45.0),
        (0.1, 0.1),
    ],
)
def test_durations_read_as_seconds(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "soon", "10 parsecs", "5mins", "-5s", "1e3s", "s", "10s5", None, True, [10], {}])
def test_bad_durations_say_what_is_accepted(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"expected a duration like 250ms, 10s, 5m, 2h or 14d, got "):
        parse_duration(bad)


def test_a_negative_number_is_not_a_duration() -> None:
    with pytest.raises(ValueError, match="a duration cannot be negative, got -1"):
        parse_duration(-1)


@given(st.integers(min_value=0, max_value=10**9))
def test_milliseconds_round_trip_exactly(n: int) -> None:
    assert parse_duration(f"{n}ms") == n / 1000


@given(st.integers(min_value=0, max_value=36_500), st.sampled_from([("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]))
def test_whole_units_multiply_exactly(n: int, unit: tuple[str, int]) -> None:
    suffix, size = unit
    assert parse_duration(f"{n}{suffix}") == n * size


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_a_bare_number_is_seconds_whether_yaml_gave_a_number_or_text(value: float) -> None:
    assert parse_duration(value) == value
    assume("e" not in repr(value))  # YAML writes such numbers as numbers, never as "1e-05" text
    assert parse_duration(repr(value)) == value


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250ms"),
        (0.0417, "42ms"),
        (1.0, "1s"),
        (2.5, "2.5s"),
        (90.0, "1m30s"),
        (3600.0, "1h"),
        (86400.0, "1d"),
        (86400.0 + 7200.0 + 60.0, "1d2h"),
    ],
)
def test_format_duration_is_short_and_human(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=1, max_value=999))
def test_formatted_milliseconds_parse_back(n: int) -> None:
    assert parse_duration(format_duration(n / 1000)) == n / 1000
