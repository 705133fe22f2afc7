"""Run-to-run tracking of a DASH Representation (pure): freshness, a timeline going backwards, segment numbers
changing meaning, availabilityStartTime moving; and the freshness rule shared with HLS."""

from __future__ import annotations

from prober.probes.dash.segments import Segment
from prober.probes.dash.state import Look, track
from prober.probes.media.pace import is_fresh, realtime_ratio

AST = 1_700_000_000.0


def look(newest: int, *, shift: int = 0, ast: float = AST, period: str = "p") -> Look:
    segments = [
        Segment(n, n * 20 + shift, 20, 10, f"https://o.example.com/seg-{n}.m4s?token=x{n}")
        for n in range(newest - 3, newest + 1)
    ]
    return Look(period, segments[-1], ast + segments[-1].end, ast, segments)


def test_a_first_look_knows_nothing_then_a_new_segment_is_fresh() -> None:
    first = track(None, look(10), 100.0)
    assert (first.stale_for, first.advanced, first.regressed, first.inconsistencies) == (None, None, False, [])
    same = track(first.state, look(10), 103.0)
    assert same.advanced is False and same.stale_for == 3.0
    moved = track(same.state, look(11), 104.0)
    assert moved.advanced is True and moved.stale_for == 0.0 and moved.inconsistencies == []


def test_a_renumbered_segment_and_a_timeline_going_back_are_named() -> None:
    first = track(None, look(10), 100.0)
    renumbered = track(first.state, look(10, shift=50), 102.0)
    assert "segment 9 moved from t=180 to t=230: segment numbers changed meaning" in renumbered.inconsistencies
    back = track(first.state, look(8), 102.0)
    assert back.regressed is True
    assert back.inconsistencies == [
        "the timeline went backwards: its newest segment (8) now ends 4.000s before the previous run's newest (10)"
    ]


def test_a_moved_availability_start_time_is_named_once_not_per_segment() -> None:
    first = track(None, look(10), 100.0)
    moved = track(first.state, look(10, ast=AST + 30), 102.0)
    assert len(moved.inconsistencies) == 1
    assert moved.inconsistencies[0].startswith("availabilityStartTime moved from 2023-11-14T22:13:20.000Z to ")


def test_the_freshness_rule_is_hls_s() -> None:
    assert is_fresh(3.0, 2.0) is True and is_fresh(3.1, 2.0) is False and is_fresh(None, 2.0) is None
    assert realtime_ratio(2.0, 0.5) == 4.0 and realtime_ratio(2.0, 0.0) is None
