"""`keys: true` on a real AES-128 stream from ffmpeg: the key is fetched once per change; a key that 404s or is
not 16 bytes is down with a sentence (players cannot decrypt); with `content` the segment is decrypted and
decoded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_clock import FakeClock
from hls_origin import AAC, H264, TONE, VIDEO, Origin, Replay, encode, load_hls_check

from prober.scheduling.runner import Runner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def encrypted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keys")
    (root / "key.bin").write_bytes(bytes(range(16)))
    info = root / "key.info"
    info.write_text(f"key.bin\n{root / 'key.bin'}\n")
    playlist = encode(root, *VIDEO, *TONE, *H264, *AAC, "-hls_key_info_file", str(info), name="enc")
    assert '#EXT-X-KEY:METHOD=AES-128,URI="key.bin"' in playlist.read_text()
    return playlist


def key_fetches(origin: Origin) -> int:
    return len(origin.requested(lambda path: path.endswith("/key.bin")))


async def test_a_working_key_is_fetched_once_per_change_and_the_check_is_up(
    encrypted: Path, clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    replay = origin.replays["enc"] = Replay.of(clock, encrypted, pdt=True)
    runner = Runner(clock=clock, persistent_state=True)
    spec = load_hls_check(tmp_path, {"url": origin.url("/enc/index.m3u8"), "keys": True})
    for n in (2, 3, 4):
        clock.value = replay.at(n)
        result = await runner.run(spec)
        assert result.status == "up", result.error
        assert result.metrics["key_status"] == 200
    assert key_fetches(origin) == 1


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("404", "the decryption key key.bin returned HTTP 404: players cannot decrypt the segments"),
        (
            "short",
            "the decryption key key.bin is 5 bytes, not the 16 AES-128 needs: players cannot decrypt the segments",
        ),
    ],
)
async def test_a_key_players_cannot_use_is_down_with_a_sentence(
    fault: str, says: str, encrypted: Path, clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    replay = origin.replays["enc"] = Replay.of(clock, encrypted, pdt=True)
    if fault == "404":
        replay.missing.add("key.bin")
    else:
        replay.corrupt["key.bin"] = b"12345"
    runner = Runner(clock=clock, persistent_state=True)
    spec = load_hls_check(tmp_path, {"url": origin.url("/enc/index.m3u8"), "keys": True})
    for n in (2, 3):
        clock.value = replay.at(n)
        result = await runner.run(spec)
        assert result.status == "down"
        assert result.error == says
        assert result.metrics["fresh"] is True  # segments keep coming: only the key check sees it
    assert key_fetches(origin) == 2  # a failing key is asked for again on every run


async def test_with_content_the_segment_is_decrypted_and_decoded(
    encrypted: Path, clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    replay = origin.replays["enc"] = Replay.of(clock, encrypted, pdt=True)
    spec = load_hls_check(tmp_path, {"url": origin.url("/enc/index.m3u8"), "content": True})
    clock.value = replay.at(3)
    result = await Runner(clock=clock, persistent_state=True).run(spec)
    assert result.status == "up", result.error
    assert result.metrics["has_video"] is True and result.metrics["has_audio"] is True
    replay.missing.add("key.bin")
    clock.value = replay.at(4)
    broken = await Runner(clock=clock, persistent_state=True).run(spec)
    assert broken.status == "down"
    assert broken.error == "the decryption key key.bin returned HTTP 404: players cannot decrypt the segments"


async def test_keys_off_never_asks_for_the_key(
    encrypted: Path, clock: FakeClock, origin: Origin, tmp_path: Path
) -> None:
    replay = origin.replays["enc"] = Replay.of(clock, encrypted, pdt=True)
    replay.missing.add("key.bin")
    clock.value = replay.at(3)
    result = await Runner(clock=clock, persistent_state=True).run(
        load_hls_check(tmp_path, {"url": origin.url("/enc/index.m3u8")})
    )
    assert result.status == "up", result.error
    assert key_fetches(origin) == 0 and "key_status" not in result.metrics
