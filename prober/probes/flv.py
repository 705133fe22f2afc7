"""The `flv` check type: an HTTP-FLV live stream (`http(s)://…/live/stream.flv`), read as a web player reads it.

Media servers (SRS, nginx-flv, Node-Media-Server, CDNs) serve low-latency live video as one endless
chunked HTTP response of FLV tags. A run opens it, reads for `duration` (bounded by the timeout and
`max_bytes`), parses every tag as it arrives (`prober.probes.media.flv`) and reports what a viewer would
live through: how long until the first byte and the first keyframe (a picture), whether timestamps keep
pace with the wall clock, stalls, gaps, the codecs and, with `content`, whether the picture moves and the
sound is there (`prober.probes.media.live_check`).

Measures only: an HTTP error, a refused connection or bytes that are not FLV raise ProbeError with a
sentence; everything else is a metric for the conditions to judge.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import aiohttp
from pydantic import Field

from prober.config.conditions import MetricSpec
from prober.config.durations import format_duration
from prober.config.models import HttpUrl
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.media.content_metrics import content_metric_specs
from prober.probes.media.flv import FlvError, FlvReader
from prober.probes.media.live import LiveRead, live_metric_specs
from prober.probes.media.live_check import LiveStreamCheck, live_default_expect, observe
from prober.probes.network import network_sentence, request_url
from prober.probes.registry import Export, SecretKind, register, standard_exports, url_target

__all__ = ["FlvCheck", "FlvProbe"]

USER_AGENT = "prober-flv/0.1"
_CHUNK = 64 * 1024
_LABEL = "HTTP-FLV stream"


class FlvCheck(LiveStreamCheck):
    type: Literal["flv"]
    url: HttpUrl
    headers: dict[str, str] = Field(default_factory=dict)
    verify_tls: bool = True


async def _read(check: FlvCheck, read: LiveRead, response: aiohttp.ClientResponse) -> None:
    reader = FlvReader()
    stop_at = read.started + check.read_for()
    while True:
        left = stop_at - time.perf_counter()
        if left <= 0:
            return
        try:
            chunk = await asyncio.wait_for(response.content.readany(), timeout=left)
        except TimeoutError:
            return
        now = time.perf_counter()
        if not chunk:
            read.ended, read.ended_at = True, now
            return
        if read.first_byte_at is None:
            read.first_byte_at = now
        room = check.max_bytes - len(read.data)
        if len(chunk) >= room:
            chunk, read.truncated = chunk[:room], True
        read.data += chunk
        try:
            read.tags.extend(reader.feed(chunk, now))
        except FlvError as exc:
            raise ProbeError(f"the {_LABEL} is not valid FLV: {exc}") from None
        read.header = reader.header
        if read.truncated:
            read.ended_at = now
            return


@register("flv")
class FlvProbe:
    """Read an HTTP-FLV stream for `duration`; report pace, keyframes, codecs and (optionally) content."""

    type_name: ClassVar[str]
    Config = FlvCheck
    metrics: ClassVar[Mapping[str, MetricSpec]] = {
        **live_metric_specs(_LABEL),
        "status_code": MetricSpec("status_code", "HTTP status of the stream's response"),
        **content_metric_specs("the stream"),
    }
    exports: ClassVar[Mapping[str, tuple[Export, ...]]] = standard_exports(
        "flv", metrics, text=("codec", "audio_codec"), rename={"status_code": "probe_flv_status_code"}
    )
    headline: ClassVar[tuple[str, ...]] = ("first_keyframe", "timestamp_rate")
    secrets: ClassVar[Mapping[str, SecretKind]] = {"url": "url", "headers": "headers"}
    target = url_target

    def default_expect(self, check: FlvCheck) -> Mapping[str, Any]:
        return {"status_code": 200, **live_default_expect(check)}

    async def run(self, check: FlvCheck, ctx: ProbeContext) -> Observation:
        read = LiveRead(started=time.perf_counter(), duration=check.read_for())
        url = request_url(check.url, check.headers)
        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=max(0.1, ctx.remaining())),
            headers={"User-Agent": USER_AGENT, **check.headers},
            connector=aiohttp.TCPConnector(ssl=check.verify_tls, limit=1),
            trust_env=False,
        )
        async with session:
            try:
                response = await asyncio.wait_for(session.get(url), timeout=max(0.1, ctx.remaining() - 0.5))
            except TimeoutError:
                raise ProbeError(f"no answer from the {_LABEL} within {format_duration(check.timeout)}") from None
            except aiohttp.ClientConnectorError as exc:
                raise ProbeError(network_sentence(exc, exc.host, exc.port)) from None
            except aiohttp.ClientError as exc:
                raise ProbeError(f"the {_LABEL} request failed: {type(exc).__name__}: {exc}") from None
            async with response:
                if response.status != 200:
                    raise ProbeError(
                        f"the {_LABEL} answered HTTP {response.status} {response.reason or ''}".rstrip(),
                        metrics={"status_code": response.status},
                    )
                try:
                    await _read(check, read, response)
                except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, ConnectionError):
                    read.ended = True
                if read.ended_at is None:
                    read.ended_at = time.perf_counter()
        if read.first_byte_at is None:
            raise ProbeError(
                f"the {_LABEL} sent no bytes within {format_duration(check.read_for())}",
                metrics={"status_code": 200, "first_byte": None},
            )
        if read.header is None:
            raise ProbeError(f"the {_LABEL} is not valid FLV: it ended inside the FLV header")
        observation = await observe(read, check, ctx)
        observation.metrics["status_code"] = 200
        return observation
