"""The demo's own targets beyond HTTP: the live encoder shared by every HTTP-FLV viewer, the live DASH stream,
the Redis-like line server and the DNS server for `demo.test`, each tried over real loopback sockets."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp
import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from aiohttp import web
from live_media import load_check

from prober.demo.services import answer_query, start_dns_server, start_line_server
from prober.demo.stream import MAX_BACKLOG, FlvFanout, LiveEncoder, dash_routes
from prober.probes.dash.mpd import parse_mpd
from prober.probes.media.flv import FlvReader, FlvTag
from prober.scheduling.runner import Runner


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def ask(port: int, name: str, kind: str, *, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, kind)
    if tcp:
        return await dns.asyncquery.tcp(query, "127.0.0.1", port=port, timeout=3)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=3)


def texts(response: dns.message.Message, kind: str) -> list[str]:
    wanted = dns.rdatatype.from_text(kind)
    return [rdata.to_text() for rrset in response.answer if rrset.rdtype == wanted for rdata in rrset]


async def test_the_dns_server_answers_the_demo_zone_over_udp_and_tcp() -> None:
    async with AsyncExitStack() as stack:
        port = await start_dns_server(stack)
        a = await ask(port, "shop.demo.test", "A")
        assert texts(a, "A") == ["127.0.0.1"] and a.flags & dns.flags.AA
        assert texts(await ask(port, "shop.demo.test", "AAAA", tcp=True), "AAAA") == ["::1"]
        alias = await ask(port, "www.demo.test", "A")
        assert texts(alias, "CNAME") == ["shop.demo.test."] and texts(alias, "A") == ["127.0.0.1"]
        assert texts(await ask(port, "demo.test", "MX"), "MX") == ["10 mail.demo.test."]
        assert texts(await ask(port, "demo.test", "TXT", tcp=True), "TXT") == ['"v=spf1 -all"']
        assert texts(await ask(port, "demo.test", "SOA"), "SOA")[0].startswith("ns1.demo.test. hostmaster.demo.test.")
        missing = await ask(port, "nope.demo.test", "A")
        assert missing.rcode() == dns.rcode.NXDOMAIN and missing.authority and not missing.answer
        empty = await ask(port, "shop.demo.test", "MX")
        assert empty.rcode() == dns.rcode.NOERROR and not empty.answer  # the name exists, not that type
        outside = await ask(port, "example.com", "A")
        assert outside.rcode() == dns.rcode.REFUSED and not outside.flags & dns.flags.AA


def test_bytes_that_are_not_a_query_get_formerr_or_nothing() -> None:
    reply = answer_query(b"\x12\x34" + b"\xff" * 20)
    assert reply is not None
    parsed = dns.message.from_wire(reply)
    assert parsed.id == 0x1234 and parsed.rcode() == dns.rcode.FORMERR
    assert answer_query(b"\x00\x01") is None  # not even a header: nothing to answer


async def test_the_dns_check_of_the_demo_is_up_against_its_server(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        port = await start_dns_server(stack)
        check: dict[str, object] = {"type": "dns", "query": "shop.demo.test", "server": f"127.0.0.1:{port}"}
        check |= {"timeout": "2s", "expect": {"answers": {"contains": "127.0.0.1"}, "authoritative": True}}
        result = await Runner().run(load_check(tmp_path, check))
        nx = await Runner().run(load_check(tmp_path, {**check, "query": "gone.demo.test", "expect": {}}))
    assert result.status == "up", result.error
    assert result.metrics["answers"] == ["127.0.0.1"] and result.metrics["transport"] == "udp"
    assert nx.status == "down" and nx.metrics["rcode"] == "NXDOMAIN"


async def test_the_line_server_answers_ping_with_pong_and_quits() -> None:
    async with AsyncExitStack() as stack:
        port = await start_line_server(stack)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"PING\r\nHELLO\r\nping\nQUIT\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 3)  # until the server closes after QUIT
        writer.close()
    assert answer == b"+PONG\r\n-ERR unknown command\r\n+PONG\r\n+OK\r\n"


async def test_the_tcp_check_of_the_demo_is_up_against_its_line_server(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        port = await start_line_server(stack)
        check = {"type": "tcp", "host": "127.0.0.1", "port": port, "timeout": "2s"}
        check["steps"] = [{"send": "PING\r\n"}, {"expect": "+PONG"}]
        result = await Runner().run(load_check(tmp_path, check))
        wrong = await Runner().run(
            load_check(tmp_path, {**check, "steps": [{"send": "INFO\r\n"}, {"expect": "+PONG"}], "timeout": "1s"})
        )
    assert result.status == "up", result.error
    assert result.metrics["steps_passed"] is True
    assert wrong.status == "down" and "-ERR unknown command" in (wrong.error or "")


def tag(kind: str, raw: bytes, *, keyframe: bool = False, config: bool = False) -> tuple[bytes, str, bool, bool]:
    return raw, kind, keyframe, config


async def test_a_late_viewer_joins_at_the_cached_keyframe_after_the_header_and_sequence_headers() -> None:
    fanout = FlvFanout()
    fanout.publish(b"HEAD", [tag("script", b"META", config=True), tag("video", b"AVCC", config=True)])
    fanout.publish(None, [tag("audio", b"ASC", config=True), tag("video", b"P0"), tag("video", b"K1", keyframe=True)])
    fanout.publish(None, [tag("audio", b"A1"), tag("video", b"P1")])
    async with (
        serving(_app(fanout)) as base,
        aiohttp.ClientSession() as session,
        session.get(f"{base}/live/stream.flv") as response,
    ):
        first = await response.content.readexactly(len(b"HEADMETAAVCCASCK1A1P1"))
        fanout.publish(None, [tag("video", b"K2", keyframe=True)])
        live = await response.content.readexactly(2)
        assert fanout.clients == 1
        fanout.close()
        rest = await asyncio.wait_for(response.content.read(), 3)  # the response ends
    assert first == b"HEADMETAAVCCASCK1A1P1"  # P0 came before any keyframe: no viewer can decode it
    assert live == b"K2" and rest == b""
    assert fanout.clients == 0


async def test_a_viewer_that_falls_behind_is_dropped_instead_of_buffered() -> None:
    fanout = FlvFanout()
    fanout.publish(b"HEAD", [tag("video", b"K", keyframe=True)])
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    fanout._clients.add(queue)  # a viewer whose handler never reads
    for _ in range(MAX_BACKLOG + 5):
        fanout.publish(None, [tag("video", b"P")])
    assert fanout.clients == 0
    assert queue.qsize() == MAX_BACKLOG + 1  # its backlog, then the end of its response


async def test_the_stream_answers_503_when_the_encoder_never_starts() -> None:
    fanout = FlvFanout()
    fanout.close()
    async with (
        serving(_app(fanout)) as base,
        aiohttp.ClientSession() as session,
        session.get(f"{base}/live/stream.flv") as response,
    ):
        assert response.status == 503
        assert "has not started" in await response.text()


def _app(fanout: FlvFanout) -> web.Application:
    app = web.Application()
    app.router.add_get("/live/stream.flv", fanout.handle)
    return app


async def read_flv(url: str, seconds: float) -> list[FlvTag]:
    reader = FlvReader()
    tags: list[FlvTag] = []
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "video/x-flv"
        stop_at = time.monotonic() + seconds
        while (left := stop_at - time.monotonic()) > 0:
            try:
                chunk = await asyncio.wait_for(response.content.readany(), left)
            except TimeoutError:
                break
            tags.extend(reader.feed(chunk, time.monotonic()))
    return tags


@pytest.mark.slow
async def test_one_live_encoder_serves_every_viewer_from_a_keyframe_in_real_time(tmp_path: Path) -> None:
    fanout = FlvFanout()
    encoder = LiveEncoder(fanout, asyncio.get_running_loop())
    encoder.start()
    try:
        async with serving(_app(fanout)) as base:
            url = f"{base}/live/stream.flv"
            early = asyncio.create_task(read_flv(url, 3.5))
            await asyncio.sleep(1.0)
            late = await read_flv(url, 2.5)  # joins mid-GOP: starts at the cached keyframe
            first = await early
            result = await Runner().run(
                load_check(tmp_path, {"type": "flv", "url": url, "content": True, "duration": "3s", "timeout": "6s"})
            )
            threads_during = [t.name for t in threading.enumerate()]
    finally:
        await encoder.stop()
    assert encoder.error is None
    assert threads_during.count("prober-demo-encoder") == 1  # one encoder for every viewer
    for tags in (first, late):
        assert [t.kind for t in tags[:3]] == ["script", "video", "audio"]  # metadata, then sequence headers
        assert tags[1].config and tags[2].config
        media = [t for t in tags if not t.config and t.kind != "script"]
        assert media[0].kind == "video" and media[0].keyframe
        assert {t.codec for t in media if t.kind == "video"} == {"h264"}
    span = max(t.timestamp for t in first) - min(t.timestamp for t in first[3:])
    assert 2.5 < span < 4.5  # real time: about 3.5 s of media in 3.5 s
    assert result.status == "up", result.error
    assert result.metrics["frozen"] is False and result.metrics["audio_silent"] is False
    assert result.metrics["video_fps"] == 12.0 and (result.metrics["width"], result.metrics["height"]) == (320, 180)
    assert "prober-demo-encoder" not in [t.name for t in threading.enumerate()]


async def test_the_dash_stream_advances_with_the_clock() -> None:
    clock = [1_700_000_000.5]
    app = web.Application()
    dash_routes(app, 1_700_000_000.0, now=lambda: clock[0])
    async with serving(app) as base, aiohttp.ClientSession() as session:
        async with session.get(f"{base}/dash/live.mpd") as response:
            assert response.content_type == "application/dash+xml"
            mpd = parse_mpd(await response.read(), f"{base}/dash/live.mpd")
        assert mpd.dynamic and mpd.availability_start_time == 1_700_000_000.0 - 10
        assert {r.id for r in mpd.periods[0].representations} == {"video", "audio"}

        async def status(path: str) -> int:
            async with session.get(f"{base}/dash/{path}") as answer:
                await answer.read()
                return answer.status

        assert await status("video/4.m4s") == 200  # ended at AST + 10 s = now
        assert await status("video/5.m4s") == 404  # not yet
        clock[0] += 2.0
        assert await status("video/5.m4s") == 200
        assert await status("audio/5.m4s") == 200 and await status("audio/init.mp4") == 200
        assert await status("other/5.m4s") == 404
        clock[0] += 60.0
        assert await status("video/5.m4s") == 404  # long out of the window
        async with session.get(f"{base}/dash/time") as answer:
            assert (await answer.text()).startswith("2023-11-14T22:14:22")


def test_a_free_port_for_both_udp_and_tcp_is_what_the_dns_server_gets() -> None:
    async def run() -> int:
        async with AsyncExitStack() as stack:
            port = await start_dns_server(stack)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(OSError):
                udp.bind(("127.0.0.1", port))
            with socket.socket() as tcp, pytest.raises(OSError):
                tcp.bind(("127.0.0.1", port))
            return port

    assert asyncio.run(run()) > 0


async def test_an_encoder_that_fails_ends_every_stream_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    fanout = FlvFanout()
    encoder = LiveEncoder(fanout, asyncio.get_running_loop())

    def broken() -> None:
        raise RuntimeError("libx264 is not in this FFmpeg build")

    encoder._encode = broken  # type: ignore[method-assign]
    encoder.start()
    for _ in range(100):
        if fanout.closed:
            break
        await asyncio.sleep(0.02)
    await encoder.stop()
    assert fanout.closed
    assert encoder.error == "RuntimeError: libx264 is not in this FFmpeg build"
    assert "the demo's live encoder stopped" in caplog.text
