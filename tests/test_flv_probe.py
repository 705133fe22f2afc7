"""flv against REAL HTTP-FLV streams: ffmpeg serving FLV itself (`-listen 1`) and an aiohttp relay piping an
ffmpeg encode to each client as SRS does — healthy, stalled, half real time, garbage after the header, no
keyframes, frozen, black, silent — plus the FLV tag reader on hostile bytes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from live_media import encode_args, flv_relay, free_tcp_port, load_check, stop

from prober.probes.media.flv import FlvError, FlvReader
from prober.scheduling.runner import Runner

READ = "3s"


def flv(url: str, **more: object) -> dict[str, object]:
    return {"type": "flv", "url": url, "duration": READ, "timeout": "8s", **more}


@pytest.mark.slow
async def test_ffmpeg_serving_flv_itself_is_up_with_codecs_pace_and_a_picture(tmp_path: Path) -> None:
    port = free_tcp_port()
    url = f"http://127.0.0.1:{port}/live.flv"
    process = await asyncio.create_subprocess_exec(
        *encode_args("healthy"), "-f", "flv", "-listen", "1", url, stdin=asyncio.subprocess.DEVNULL
    )
    try:
        await asyncio.sleep(1.0)
        result = await Runner().run(load_check(tmp_path, flv(url, content=True)))
    finally:
        await stop(process)
    assert result.status == "up", result.error
    metrics = result.metrics
    assert metrics["codec"] == "h264" and metrics["audio_codec"] == "aac"
    assert (metrics["width"], metrics["height"]) == (320, 240)
    assert 0.9 <= metrics["timestamp_rate"] <= 1.2
    assert metrics["first_keyframe"] < 1.5
    assert 20 <= metrics["video_fps"] <= 30
    assert metrics["frozen"] is False and metrics["audio_silent"] is False and metrics["black_ratio"] < 0.5


@pytest.mark.slow
async def test_a_relay_that_stalls_turns_down_saying_the_stream_stalled(tmp_path: Path) -> None:
    async with flv_relay(mode="stall", after=0.5) as relay:
        result = await Runner().run(load_check(tmp_path, flv(relay.url)))
    assert result.status == "down"
    assert result.metrics["stalled_for"] > 2
    assert "HTTP-FLV stream" in (result.error or "")
    assert "stalled" in (result.error or "") or "buffering" in (result.error or "")


@pytest.mark.slow
async def test_a_stream_at_half_real_time_says_viewers_are_buffering(tmp_path: Path) -> None:
    async with flv_relay("half_speed") as relay:
        result = await Runner().run(load_check(tmp_path, flv(relay.url)))
    assert result.status == "down"
    assert 0.3 <= result.metrics["timestamp_rate"] <= 0.7, result.metrics
    assert result.error is not None and "viewers are buffering" in result.error
    assert result.error.startswith("HTTP-FLV stream timestamps advanced")
    assert f"s in {result.metrics['measured_over']:.1f} s of wall time" in result.error


@pytest.mark.slow
async def test_a_healthy_relay_is_up(tmp_path: Path) -> None:
    async with flv_relay() as relay:
        result = await Runner().run(load_check(tmp_path, flv(relay.url)))
    assert result.status == "up", result.error
    assert result.metrics["stalled_for"] < 1


@pytest.mark.slow
async def test_garbage_after_the_header_names_the_byte_where_flv_stops(tmp_path: Path) -> None:
    async with flv_relay(mode="garbage") as relay:
        result = await Runner().run(load_check(tmp_path, flv(relay.url)))
    assert result.status == "down"
    assert result.error is not None and "is not valid FLV" in result.error and "at byte 13" in result.error


@pytest.mark.slow
async def test_a_stream_without_keyframes_says_viewers_see_no_picture(tmp_path: Path) -> None:
    async with flv_relay(mode="no_keyframes") as relay:
        result = await Runner().run(load_check(tmp_path, flv(relay.url)))
    assert result.status == "down"
    assert result.metrics["first_keyframe"] is None
    assert result.error is not None
    assert result.error.startswith("HTTP-FLV stream sent no video keyframe within the read")


@pytest.mark.slow
async def test_frozen_black_and_silent_streams_read_like_hls(tmp_path: Path) -> None:
    """Three relays, three checks at once: each names its own fault with the sentence HLS uses."""
    cases = {
        "frozen": ("frozen", "the picture has been frozen"),
        "black": ("black_ratio", "the picture is black"),
        "silent": ("audio_silent", "the audio is silent"),
    }
    async with flv_relay("frozen") as frozen, flv_relay("black") as black, flv_relay("silent") as silent:
        runner = Runner()
        urls = {"frozen": frozen.url, "black": black.url, "silent": silent.url}
        specs = [load_check(tmp_path, flv(urls[source], content={"frozen_for": "1s"}), name=source) for source in cases]
        results = await asyncio.gather(*(runner.run(spec) for spec in specs))
    for (source, (metric, words)), result in zip(cases.items(), results, strict=True):
        assert result.status == "down", source
        assert result.metrics[metric] not in (None, False, 0.0), (source, result.metrics)
        assert result.error is not None and words in result.error, (source, result.error)


async def test_a_missing_stream_is_down_with_the_http_status(tmp_path: Path) -> None:
    async with flv_relay() as relay:
        result = await Runner().run(load_check(tmp_path, flv(relay.url.replace("/live/", "/nothing/"))))
    assert result.status == "down"
    assert result.error == "the HTTP-FLV stream answered HTTP 404 Not Found"


async def test_a_refused_port_reads_like_every_other_type(tmp_path: Path) -> None:
    port = free_tcp_port()
    result = await Runner().run(load_check(tmp_path, flv(f"http://127.0.0.1:{port}/live.flv")))
    assert result.status == "down"
    assert result.error == f"connection refused by 127.0.0.1:{port}"


def test_the_tag_reader_refuses_what_is_not_flv() -> None:
    with pytest.raises(FlvError, match="does not start with an FLV header"):
        FlvReader().feed(b"<html>", 0.0)
    reader = FlvReader()
    header = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
    with pytest.raises(FlvError, match="at byte 13: tag type 31"):
        reader.feed(header + b"\xff" * 11, 0.0)
    huge = header + bytes([9]) + (12 * 1024 * 1024).to_bytes(3, "big") + bytes(7)
    with pytest.raises(FlvError, match="larger than any frame"):
        FlvReader().feed(huge, 0.0)


def test_the_tag_reader_takes_a_stream_split_anywhere() -> None:
    header = b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00"
    tags = b""
    for index in range(5):
        data = bytes([0x17 if index % 2 == 0 else 0x27, 1]) + os.urandom(30)
        stamp = (index * 40).to_bytes(3, "big")
        tags += bytes([9]) + len(data).to_bytes(3, "big") + stamp + b"\x00" + b"\x00\x00\x00" + data
        tags += (11 + len(data)).to_bytes(4, "big")
    stream = header + tags
    reader = FlvReader()
    found = []
    for cut in range(0, len(stream), 7):
        found += reader.feed(stream[cut : cut + 7], float(cut))
    assert [tag.timestamp for tag in found] == [0.0, 0.04, 0.08, 0.12, 0.16]
    assert [tag.keyframe for tag in found] == [True, False, True, False, True]
    assert all(tag.codec == "h264" for tag in found)
