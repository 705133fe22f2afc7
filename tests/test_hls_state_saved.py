"""A stream that dies on undecodable segments still shows its staleness: every run that read a playlist is what the
next run compares with, whatever failed after (here: the content check, which turns every variant down).

ffmpeg-made MPEG-TS served live by `Replay` on a fake clock: healthy, then random bytes from segment 6 on, then
no new segment after segment 9. The healthy twin is the same stream with decodable segments: `stale_for`,
`fresh` and `sequence_advanced` must read the same in both, run after run, and the notes must not report the
origin's ordinary advance as jumps "past the previous window".
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from fake_clock import FakeClock
from hls_origin import AAC, H264, TONE, VIDEO, Origin, Replay, encode, load_hls_check

from prober.results import Result
from prober.scheduling.runner import Runner

pytestmark = pytest.mark.slow

CORRUPT_FROM = 6
LAST = 9
"""The newest segment ever published: the encoder dies after it."""


@pytest.fixture(scope="module")
def vod(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode(tmp_path_factory.mktemp("dies"), *VIDEO, *TONE, *H264, *AAC, name="dies", seconds=12, segment=1)


async def runs(tmp_path: Path, origin: Origin, vod: Path, *, corrupt: bool) -> list[Result]:
    tmp_path.mkdir()
    clock = FakeClock()
    replay = origin.replays["live"] = Replay.of(clock, vod, pdt=True)
    replay.frozen_at = replay.at(LAST)
    if corrupt:
        noise = random.Random(18)
        for entry in replay.entries[CORRUPT_FROM:]:
            replay.corrupt[entry.uri] = noise.randbytes(188 * 40)
    spec = load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8"), "content": True})
    runner = Runner(clock=clock, persistent_state=True)
    results: list[Result] = []
    moments: list[float] = [replay.at(n) for n in range(3, LAST + 1)]
    moments += [replay.at(LAST) + seconds for seconds in (1.0, 2.0, 3.0, 5.0, 8.0)]
    for moment in moments:
        clock.value = moment
        results.append(await runner.run(spec))
    return results


def progression(results: list[Result]) -> list[tuple[Any, Any, Any]]:
    return [(r.metrics.get("stale_for"), r.metrics.get("fresh"), r.metrics.get("sequence_advanced")) for r in results]


async def test_a_stream_dying_on_undecodable_segments_grows_stale_like_its_healthy_twin(
    tmp_path: Path, origin: Origin, vod: Path
) -> None:
    dying = await runs(tmp_path / "dying", origin, vod, corrupt=True)
    healthy = await runs(tmp_path / "healthy", origin, vod, corrupt=False)
    frozen = len(range(3, LAST + 1))
    print("\nstale_for, fresh, sequence_advanced per run (undecodable from segment 6, none after 9):")
    print("  dying:  ", progression(dying))
    print("  healthy:", progression(healthy))
    # The corrupt runs are down, saying why; the healthy twin is down only once it stopped advancing.
    assert [r.status for r in dying[: CORRUPT_FROM - 3]] == ["up"] * (CORRUPT_FROM - 3)
    for result in dying[CORRUPT_FROM - 3 :]:
        assert result.status == "down"
        assert result.error is not None and "could not be decoded" in result.error
    # Staleness reads the same whether or not the newest segment decodes.
    assert progression(dying) == progression(healthy)
    stale = [r.metrics["stale_for"] for r in dying[frozen:]]
    assert stale == sorted(stale) and stale[-1] >= 8.0, stale
    assert dying[-1].metrics["fresh"] is False and dying[-1].metrics["sequence_advanced"] is False
    for result in dying:
        notes = " ".join(result.details.get("notes", []))
        assert "past the previous window" not in notes, notes


async def test_a_segment_list_that_empties_after_a_good_run_keeps_the_state_of_the_run_that_read_it(
    tmp_path: Path, origin: Origin, vod: Path
) -> None:
    """A failure raised after the playlist was read (here: it lists no segment) still saves that look."""
    clock = FakeClock()
    replay = origin.replays["live"] = Replay.of(clock, vod, pdt=True)
    spec = load_hls_check(tmp_path, {"url": origin.url("/live/index.m3u8")})
    runner = Runner(clock=clock, persistent_state=True)
    clock.value = replay.at(4)
    first = await runner.run(spec)
    assert first.status == "up", first.error
    header = "".join(line + "\n" for line in ("#EXTM3U", *replay.header, "#EXT-X-MEDIA-SEQUENCE:9"))
    origin.replays.pop("live")
    origin.static["/live/index.m3u8"] = (200, {"Content-Type": "application/vnd.apple.mpegurl"}, header.encode())
    clock.value += 1.0
    empty = await runner.run(spec)
    assert empty.status == "down" and empty.error is not None and "lists no segments" in empty.error
    origin.static.pop("/live/index.m3u8")
    origin.replays["live"] = replay
    clock.value += 1.0
    after = await runner.run(spec)
    # Compared with the empty look (media sequence 9), not with the first run's window: a regression from 9.
    assert after.metrics["sequence_regressed"] is True, after.metrics
