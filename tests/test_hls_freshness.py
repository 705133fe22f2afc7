"""hls freshness: stale playlists, one stale variant among advancing ones, Age, jitter, first-run sampling.

Every test runs the check through the Runner against the simulated origin on 127.0.0.1, with the origin's
fake clock as the run's clock (`Runner(clock=...)`, so `ProbeContext.clock`): time is exact and the tests take
milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_clock import FakeClock
from hls_origin import LiveMedia, Origin, load_hls_check

from prober.probes.media.pace import is_fresh
from prober.results import Result
from prober.scheduling.runner import Runner


def daemon(clock: FakeClock) -> Runner:
    """A runner whose state survives between runs, as under `prober run`."""
    return Runner(clock=clock, persistent_state=True)


def variant(result: Result, name: str) -> dict[str, object]:
    found: list[dict[str, object]] = [v for v in result.details["variants"] if v["variant"] == name]
    assert len(found) == 1, result.details["variants"]
    return found[0]


@pytest.mark.parametrize(
    ("fault", "down_after"),
    [("frozen", 3.5), ("frozen_but_bytes_change", 3.5), ("healthy", None)],
)
async def test_playlist_without_new_segments_turns_down_after_one_and_a_half_target_durations(
    clock: FakeClock, origin: Origin, tmp_path: Path, fault: str, down_after: float | None
) -> None:
    media = origin.add("live", LiveMedia(clock, frozen_at=None if fault == "healthy" else clock.time()))
    spec = load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8")})
    runner = daemon(clock)
    statuses = []
    for step in range(8):  # one run every 0.5s for 3.5s
        if fault == "frozen_but_bytes_change":
            media.comment = f"rewritten {step}"
        result = await runner.run(spec)
        statuses.append((step * 0.5, result.status, result.metrics["stale_for"]))
        clock.advance(0.5)
    if down_after is None:
        assert all(status == "up" for _, status, _ in statuses), statuses
        return
    assert all(status == "up" for elapsed, status, _ in statuses if elapsed <= 3.0), statuses
    assert statuses[-1] == (3.5, "down", 3.5)
    assert result.metrics["fresh"] is False
    assert result.metrics["sequence_advanced"] is False
    assert result.error == "fresh was false, expected true"


@pytest.mark.parametrize("stale_variant", [None, "mid"])
async def test_one_stale_variant_is_caught_even_when_the_others_advance(
    clock: FakeClock, origin: Origin, tmp_path: Path, stale_variant: str | None
) -> None:
    for name, bandwidth in (("low", 800_000), ("mid", 1_600_000), ("high", 3_000_000)):
        frozen = clock.time() if name == stale_variant else None
        origin.add(name, LiveMedia(clock, frozen_at=frozen), bandwidth)
    spec = load_hls_check(tmp_path, {"url": origin.url("/master.m3u8")})
    runner = daemon(clock)
    assert (await runner.run(spec)).status == "up"
    clock.advance(4.0)
    result = await runner.run(spec)
    assert result.metrics["variants_total"] == 3
    assert result.metrics["variants_failed"] == 0
    if stale_variant is None:
        assert result.status == "up", result.error
        assert result.metrics["fresh"] is True
        assert result.metrics["sequence_advanced"] is True
        return
    assert result.status == "down"
    assert result.metrics["fresh"] is False
    assert result.metrics["stale_for"] == 4.0
    assert result.metrics["sequence_advanced"] is False
    assert variant(result, "mid/index.m3u8")["fresh"] is False
    assert variant(result, "low/index.m3u8")["fresh"] is True
    assert variant(result, "high/index.m3u8")["fresh"] is True


@pytest.mark.parametrize(("age", "status"), [(30.0, "down"), (1.0, "up")])
async def test_a_cache_copy_older_than_one_and_a_half_target_durations_is_stale(
    clock: FakeClock, origin: Origin, tmp_path: Path, age: float, status: str
) -> None:
    origin.add("live", LiveMedia(clock, age=age))
    spec = load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8")})
    result = await daemon(clock).run(spec)
    assert result.status == status, result.error
    assert result.metrics["age_header"] == age
    assert result.metrics["stale_for"] == age
    assert result.metrics["fresh"] is (status == "up")


@pytest.mark.parametrize(("jitter", "ever_down"), [(1.0, False), (2.0, True)])
async def test_segments_arriving_up_to_one_and_a_half_target_durations_apart_stay_up(
    clock: FakeClock, origin: Origin, tmp_path: Path, jitter: float, ever_down: bool
) -> None:
    # Every other segment is published `jitter` seconds late: gaps of 2 + jitter, then 2 - jitter.
    delays = {n: jitter for n in range(30, 60, 2)}
    origin.add("live", LiveMedia(clock, delays=delays))
    spec = load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8")})
    runner = daemon(clock)
    results = []
    for _ in range(40):  # 20 s of runs every 0.5 s
        results.append(await runner.run(spec))
        clock.advance(0.5)
    worst = max(r.metrics["stale_for"] for r in results)
    assert any(r.status == "down" for r in results) is ever_down, [r.error for r in results]
    if ever_down:
        assert worst > 3.0
    else:
        assert worst == 2.5  # the run just before each late segment: under 1.5 x the target duration


async def test_prober_check_looks_twice_on_a_first_run_and_sees_an_advancing_stream_fresh(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.add("live", LiveMedia(clock))
    spec = load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8")})
    result = await Runner(clock=clock).run(spec)
    assert result.status == "up", result.error
    assert result.metrics["fresh"] is True
    assert result.metrics["stale_for"] == 0.0
    assert result.metrics["sequence_advanced"] is None
    assert clock.slept == [2.0]
    assert any("looked at the playlist again after 2.0s" in note for note in result.details["notes"])
    assert len(origin.requested(lambda path: path.endswith("index.m3u8"))) == 2


async def test_prober_check_finds_a_frozen_stream_stale_on_its_first_run(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    # The newest segment is brand new by PDT; only looking twice shows nothing follows it.
    origin.add("live", LiveMedia(clock, frozen_at=clock.time()))
    spec = load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8")})
    result = await Runner(clock=clock).run(spec)
    assert result.status == "down"
    assert result.metrics["fresh"] is False
    assert result.metrics["stale_for"] == pytest.approx(3.2)
    assert result.metrics["pdt_drift"] == pytest.approx(3.2)
    assert any("no new segment appeared" in note for note in result.details["notes"])


async def test_without_time_for_a_second_look_the_first_run_falls_back_to_the_pdt(
    clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    origin.add("live", LiveMedia(clock, segment_duration=10.0, target_duration=10, started=clock.time() - 61.0))
    spec = load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8"), "timeout": "2s"})
    result = await Runner(clock=clock).run(spec)
    assert result.status == "up", result.error
    assert clock.slept == []
    assert result.metrics["stale_for"] == pytest.approx(1.0)
    assert any("freshness from the newest PROGRAM-DATE-TIME" in note for note in result.details["notes"])


@pytest.mark.parametrize(("pdt", "samples"), [("utc", False), ("none", True)])
async def test_a_daemons_first_run_uses_the_pdt_and_looks_twice_only_without_one(
    clock: FakeClock, origin: Origin, tmp_path: Path, pdt: str, samples: bool
) -> None:
    origin.add("live", LiveMedia(clock, pdt=pdt, started=clock.time() - 60.5))  # type: ignore[arg-type]
    spec = load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8")})
    result = await daemon(clock).run(spec)
    assert result.status == "up", result.error
    assert bool(clock.slept) is samples
    assert result.metrics["stale_for"] == (0.0 if samples else pytest.approx(0.5))


def test_fresh_means_a_new_segment_within_one_and_a_half_target_durations_inclusive() -> None:
    assert is_fresh(3.0, 2) is True
    assert is_fresh(3.001, 2) is False
    assert is_fresh(None, 2) is None
