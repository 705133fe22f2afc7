"""hls across runs and inside one playlist: sequences, discontinuities, structure, PROGRAM-DATE-TIME.

Two runs of a daemon-style Runner (state kept) against the simulated origin on 127.0.0.1 with a fake
clock; between them the test changes what the origin does. Each fault has a healthy twin that must
not alarm.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_clock import FakeClock
from hls_origin import LiveMedia, Origin, load_hls_check

from prober.results import Result
from prober.scheduling.runner import Runner


async def two_runs(
    origin: Origin,
    clock: FakeClock,
    tmp_path: Path,
    media: LiveMedia,
    change: Callable[[LiveMedia], None],
    advance: float = 2.0,
) -> tuple[Result, Result]:
    origin.add("live", media)
    spec = load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8")})
    runner = Runner(clock=clock, persistent_state=True)
    first = await runner.run(spec)
    change(media)
    clock.advance(advance)
    return first, await runner.run(spec)


def nothing(media: LiveMedia) -> None:
    pass


def setter(**values: Any) -> Callable[[LiveMedia], None]:
    def change(media: LiveMedia) -> None:
        for key, value in values.items():
            setattr(media, key, value)

    return change


# --- sequences --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "regressed", "advanced", "reason"),
    [
        (setter(sequence_offset=-10), True, False, "media sequence went backwards from 24 to 15"),
        (setter(sequence_offset=1000), False, True, None),
        (nothing, False, True, None),
    ],
    ids=["backwards", "large-forward-jump", "healthy"],
)
async def test_media_sequence_going_backwards_is_a_regression_and_a_forward_jump_is_not(
    clock: FakeClock,
    origin: Origin,
    tmp_path: Path,
    change: Callable[[LiveMedia], None],
    regressed: bool,
    advanced: bool,
    reason: str | None,
) -> None:
    first, second = await two_runs(origin, clock, tmp_path, LiveMedia(clock), change)
    assert first.status == "up", first.error
    assert second.metrics["sequence_regressed"] is regressed
    assert second.metrics["sequence_advanced"] is advanced
    assert second.status == ("down" if regressed else "up"), second.error
    if reason:
        assert second.details["inconsistencies"] == [reason]
        assert second.error is not None and "sequence_regressed was true" in second.error
    else:
        assert second.details["inconsistencies"] == []


async def test_a_large_forward_jump_is_noted_without_alarm(clock: FakeClock, origin: Origin, tmp_path: Path) -> None:
    _, second = await two_runs(origin, clock, tmp_path, LiveMedia(clock), setter(sequence_offset=1000))
    assert second.metrics["media_sequence"] == 1025
    assert any("jumped forward by 995 segments" in note for note in second.details["notes"])


@pytest.mark.parametrize(
    ("uri", "consistent"),
    [("other27.ts", False), ("seg27.ts?token=rotated", True)],
    ids=["origin-desync", "rotating-cdn-token"],
)
async def test_the_same_media_sequence_number_with_a_different_uri_is_an_origin_desync(
    clock: FakeClock, origin: Origin, tmp_path: Path, uri: str, consistent: bool
) -> None:
    _, second = await two_runs(origin, clock, tmp_path, LiveMedia(clock), setter(uri_override={27: uri}))
    assert second.metrics["consistent"] is consistent
    assert second.status == ("up" if consistent else "down"), second.error
    if not consistent:
        assert second.details["inconsistencies"] == [
            "media sequence 27 changed URI from 'seg27.ts' to 'other27.ts' (origin out of sync)"
        ]
        assert second.error == "consistent was false, expected true"


# Segment 27 starts a discontinuity; at the first run (segments 24..29) it is in the window.
@pytest.mark.parametrize(
    ("advance", "change", "consistent", "regressed", "reason"),
    [
        (8.0, nothing, True, False, None),
        (8.0, setter(disc_sequence_error=-1), False, False, "was not incremented when a discontinuity left"),
        (2.0, setter(disc_sequence_error=1), False, False, "was incremented although no discontinuity left"),
        (4.0, setter(discontinuities={27, 31}), True, False, None),
    ],
    ids=["left-and-incremented", "left-not-incremented", "incremented-wrongly", "new-discontinuity-at-live-edge"],
)
async def test_discontinuity_sequence_must_keep_each_segments_discontinuity_number(
    clock: FakeClock,
    origin: Origin,
    tmp_path: Path,
    advance: float,
    change: Callable[[LiveMedia], None],
    consistent: bool,
    regressed: bool,
    reason: str | None,
) -> None:
    media = LiveMedia(clock, discontinuities={27})
    first, second = await two_runs(origin, clock, tmp_path, media, change, advance)
    assert first.status == "up", first.error
    assert second.metrics["consistent"] is consistent
    assert second.metrics["sequence_regressed"] is regressed
    assert second.status == ("up" if consistent else "down"), second.error
    if reason:
        assert second.details["inconsistencies"]
        assert all(reason in text for text in second.details["inconsistencies"])
    else:
        assert second.details["inconsistencies"] == []


async def test_discontinuity_sequence_going_backwards_is_a_regression(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    media = LiveMedia(clock, disc_sequence_error=5)
    _, second = await two_runs(origin, clock, tmp_path, media, setter(disc_sequence_error=2))
    assert second.status == "down"
    assert second.metrics["sequence_regressed"] is True
    assert second.details["inconsistencies"] == ["discontinuity sequence went backwards from 5 to 2"]


class JsonStore:
    """Keeps state as JSON text, as the daemon's SQLite store does."""

    def __init__(self) -> None:
        self.texts: dict[tuple[str, str], str] = {}

    async def load(self, check: str, location: str) -> dict[str, Any] | None:
        text = self.texts.get((check, location))
        return None if text is None else dict(json.loads(text))

    async def save(self, check: str, location: str, state: dict[str, Any]) -> None:
        self.texts[(check, location)] = json.dumps(state)


async def test_state_kept_as_json_across_a_restart_still_catches_an_origin_desync(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    media = origin.add("live", LiveMedia(clock))
    spec = load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8")})
    store = JsonStore()
    assert (await Runner(clock=clock, persistent_state=True, state_store=store).run(spec)).status == "up"
    media.uri_override = {28: "other28.ts"}
    clock.advance(2.0)
    second = await Runner(clock=clock, persistent_state=True, state_store=store).run(spec)  # a new process, same store
    assert second.metrics["sequence_advanced"] is True
    assert second.metrics["consistent"] is False
    assert second.details["inconsistencies"] == [
        "media sequence 28 changed URI from 'seg28.ts' to 'other28.ts' (origin out of sync)"
    ]


# --- structure --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media_keys", "change", "metric", "value", "status", "reason"),
    [
        ({}, setter(target_override=3), "consistent", False, "down", "target duration changed from 2s to 3s"),
        ({"extinf_override": {29: 3.0}}, nothing, "consistent", False, "down", "segment 29 lasts 3s (EXTINF)"),
        ({"extinf_override": {29: 2.4}}, nothing, "consistent", True, "up", None),
        ({"endlist": True}, nothing, "endlist", True, "down", None),
        ({}, nothing, "endlist", False, "up", None),
    ],
    ids=["target-duration-changes", "extinf-over-target", "extinf-rounds-down", "endlist-on-live", "healthy"],
)
async def test_structure_faults_of_a_live_playlist(
    clock: FakeClock,
    origin: Origin,
    tmp_path: Path,
    media_keys: dict[str, Any],
    change: Callable[[LiveMedia], None],
    metric: str,
    value: object,
    status: str,
    reason: str | None,
) -> None:
    _, second = await two_runs(origin, clock, tmp_path, LiveMedia(clock, **media_keys), change)
    assert second.metrics[metric] is value
    assert second.status == status, second.error
    if reason:
        assert any(reason in text for text in second.details["inconsistencies"]), second.details
        assert second.error == "consistent was false, expected true"


async def test_endlist_is_fine_when_the_check_is_not_live(clock: FakeClock, origin: Origin, tmp_path: Path) -> None:
    origin.add("vod", LiveMedia(clock, endlist=True))
    spec = load_hls_check(tmp_path, {"url": origin.url("/vod/index.m3u8"), "live": False})
    result = await Runner(clock=clock).run(spec)
    assert result.status == "up", result.error
    assert result.metrics["endlist"] is True
    assert clock.slept == []  # no second look at a finished stream


@pytest.mark.parametrize(("window", "short"), [(2, True), (3, False)])
async def test_a_live_window_shorter_than_three_target_durations_is_reported(
    clock: FakeClock, origin: Origin, tmp_path: Path, window: int, short: bool
) -> None:
    origin.add("live", LiveMedia(clock, window=window))
    url = origin.url("/live/index.m3u8")
    plain = await Runner(clock=clock, persistent_state=True).run(load_hls_check(tmp_path, {"url": url}))
    strict = await Runner(clock=clock, persistent_state=True).run(
        load_hls_check(tmp_path, {"url": url, "expect": {"short_window": False}}, name="strict")
    )
    assert plain.metrics["window"] == 2.0 * window
    assert plain.metrics["short_window"] is short
    assert plain.status == "up", plain.error  # informational unless the check asks for it
    assert strict.status == ("down" if short else "up")


# --- PROGRAM-DATE-TIME ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media_keys", "expect", "drift", "status"),
    [
        ({"pdt_offset": -60.0}, {"pdt_drift": "< 10s"}, 61.0, "down"),
        ({"pdt_offset": 60.0}, {"pdt_drift_abs": "< 10s"}, -59.0, "down"),
        ({"pdt_offset": 60.0}, {"pdt_drift": "< 10s"}, -59.0, "up"),
        ({}, {"pdt_drift": "< 10s", "pdt_drift_abs": "< 10s"}, 1.0, "up"),
        ({"pdt": "none"}, {}, None, "up"),
    ],
    ids=["60s-behind", "60s-in-the-future", "future-passes-a-one-sided-bound", "healthy", "absent"],
)
async def test_pdt_drift_is_wall_clock_minus_the_end_of_the_newest_segment(
    clock: FakeClock,
    origin: Origin,
    tmp_path: Path,
    media_keys: dict[str, Any],
    expect: dict[str, str],
    drift: float | None,
    status: str,
) -> None:
    origin.add("live", LiveMedia(clock, started=clock.time() - 61.0, **media_keys))
    spec = load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8"), "expect": expect})
    result = await Runner(clock=clock).run(spec)  # prober check: freshness from two looks, not from the PDT
    assert result.metrics["fresh"] is True
    assert result.metrics["pdt_drift"] == (None if drift is None else pytest.approx(drift))
    assert result.status == status, result.error


async def test_pdt_going_backwards_inside_a_playlist_is_inconsistent(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.add("live", LiveMedia(clock, pdt_jumps={28: -30.0}))
    result = await Runner(clock=clock, persistent_state=True).run(
        load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8")})
    )
    assert result.status == "down"
    assert result.metrics["consistent"] is False
    (reason,) = result.details["inconsistencies"]
    assert reason.startswith("PROGRAM-DATE-TIME goes backwards at segment 28:")


async def test_pdt_of_a_segment_moving_between_runs_is_inconsistent(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    _, second = await two_runs(origin, clock, tmp_path, LiveMedia(clock), setter(pdt_offset=-20.0))
    assert second.metrics["consistent"] is False
    assert any("PROGRAM-DATE-TIME moved backwards" in text for text in second.details["inconsistencies"])


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local time zone far from UTC, so reading a naive PDT as local time would be 5 hours off."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york")
async def test_a_naive_pdt_is_read_as_utc(clock: FakeClock, origin: Origin, tmp_path: Path) -> None:
    origin.add("live", LiveMedia(clock, pdt="naive", started=clock.time() - 61.0))
    result = await Runner(clock=clock, persistent_state=True).run(
        load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8")})
    )
    assert result.status == "up", result.error
    assert result.metrics["pdt_drift"] == pytest.approx(1.0)
    assert "PROGRAM-DATE-TIME has no time zone; read as UTC" in result.details["notes"]
