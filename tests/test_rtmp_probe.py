"""rtmp against a REAL media server: Debian's nginx with libnginx-mod-rtmp on loopback, ffmpeg publishing
to it — healthy, publisher killed, frozen/black/silent sources, a stream nobody publishes, a refused port."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from concurrent_cases import run_cases
from live_media import free_tcp_port, load_check, nginx_rtmp, publish, stop

from prober.results import Result
from prober.scheduling.runner import Runner

pytestmark = pytest.mark.slow


def case_dir(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def rtmp(url: str, **more: object) -> dict[str, object]:
    return {"type": "rtmp", "url": url, "duration": "3s", "timeout": "10s", **more}


async def test_a_published_stream_is_up_with_codecs_pace_and_a_moving_picture(tmp_path: Path) -> None:
    async with nginx_rtmp(tmp_path) as server:
        publisher = await publish(server, "cam")
        try:
            result = await Runner().run(load_check(tmp_path, rtmp(server.url("cam"), content=True)))
        finally:
            await stop(publisher)
    assert result.status == "up", result.error
    metrics = result.metrics
    assert metrics["codec"] == "h264" and metrics["audio_codec"] == "aac"
    assert (metrics["width"], metrics["height"]) == (320, 240)
    assert 0.9 <= metrics["timestamp_rate"] <= 1.2
    assert metrics["frozen"] is False and metrics["audio_silent"] is False


async def killed_runs(tmp_path: Path) -> tuple[Result, ...]:
    async with nginx_rtmp(tmp_path) as server:
        publisher = await publish(server, "cam")
        runner = Runner()
        spec = load_check(tmp_path, rtmp(server.url("cam"), duration="5s", timeout="12s"))
        during = asyncio.create_task(runner.run(spec))
        await asyncio.sleep(4.0)  # FFmpeg has found the tracks (up to ~3 s) and is reading
        await stop(publisher)
        result = await during
        after = await runner.run(load_check(tmp_path, rtmp(server.url("cam"), timeout="5s"), name="after"))
    return result, after


async def half_speed_run(tmp_path: Path) -> tuple[Result, ...]:
    async with nginx_rtmp(tmp_path) as server:
        publisher = await publish(server, "slow", "half_speed")
        try:
            return (await Runner().run(load_check(tmp_path, rtmp(server.url("slow"), duration="4s"))),)
        finally:
            await stop(publisher)


async def nobody_run(tmp_path: Path) -> tuple[Result, ...]:
    async with nginx_rtmp(tmp_path) as server:
        return (await Runner().run(load_check(tmp_path, rtmp(server.url("nobody"), timeout="6s"))),)


async def test_a_killed_publisher_a_half_speed_one_and_nobody_publishing_each_say_so(tmp_path: Path) -> None:
    """Three independent cases, each its own media server, run at once: a publisher killed during a read (then
    read again), one publishing at half real time, a stream nobody publishes."""
    (result, after), (slow,), (nobody,) = await run_cases(
        killed_runs(case_dir(tmp_path, "killed")), half_speed_run(case_dir(tmp_path, "half")),
        nobody_run(case_dir(tmp_path, "nobody")),
    )  # fmt: skip
    assert result.status == "down"
    assert result.error is not None and result.error.startswith("RTMP stream"), result.error
    assert result.metrics["ended"] is True or result.metrics["stalled_for"] > 2
    assert after.status == "down"
    assert after.error is not None and "is anyone publishing it?" in after.error
    assert slow.status == "down"
    assert 0.3 <= slow.metrics["timestamp_rate"] <= 0.7, slow.metrics
    assert slow.error is not None and slow.error.startswith("RTMP stream timestamps advanced")
    assert "of wall time" in slow.error and "viewers are buffering" in slow.error
    assert nobody.status == "down"
    assert nobody.error is not None and "publish" in nobody.error
    assert nobody.duration_ms < 8000


async def test_frozen_black_and_silent_sources_read_like_hls(tmp_path: Path) -> None:
    """One media server, three publishers, three checks at once: each names its own fault."""
    cases = {
        "frozen": "the picture has been frozen",
        "black": "the picture is black",
        "silent": "the audio is silent",
    }
    async with nginx_rtmp(tmp_path) as server:
        publishers = await asyncio.gather(*(publish(server, source, source) for source in cases))
        try:
            runner = Runner()
            specs = [
                load_check(tmp_path, rtmp(server.url(source), content={"frozen_for": "1s"}), name=source)
                for source in cases
            ]
            results = await asyncio.gather(*(runner.run(spec) for spec in specs))
        finally:
            await asyncio.gather(*(stop(publisher) for publisher in publishers))
    for (source, words), result in zip(cases.items(), results, strict=True):
        assert result.status == "down", source
        assert result.error is not None and words in result.error, (source, result.error)


async def test_a_refused_port_reads_like_every_other_type(tmp_path: Path) -> None:
    port = free_tcp_port()
    result = await Runner().run(load_check(tmp_path, rtmp(f"rtmp://127.0.0.1:{port}/live/cam")))
    assert result.status == "down"
    assert result.error == f"connection refused by 127.0.0.1:{port}"


def test_an_rtmp_url_without_app_and_stream_is_refused_with_the_shape_expected(tmp_path: Path) -> None:
    from prober.config.loader import ConfigError

    with pytest.raises(ConfigError, match=r"rtmp://host/app/stream"):
        load_check(tmp_path, rtmp("rtmp://127.0.0.1/live"))
    with pytest.raises(ConfigError, match=r"expected an rtmp:// or rtmps:// URL"):
        load_check(tmp_path, rtmp("http://127.0.0.1/live/cam"))
