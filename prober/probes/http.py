"""The `http` check type: one request on a fresh connection, timed phase by phase.

Phase times come from a connector subclass (the connection phase), its resolver (DNS) and a loop proxy
that splits the TCP connect from the TLS handshake; aiohttp's trace hooks would give the same moments at a
tenth of a request's CPU. The probe returns metrics and the subjects conditions need (body text, parsed JSON,
headers); it never decides up or down. The body is read up to `max_body` bytes and no further, so a
50 MB response costs 1 MiB of memory.

aiohttp (and cryptography, for the certificate) are imported when the first http check runs, not when
this module is: `prober validate` needs only `HttpCheck` and the metrics, and importing aiohttp costs
more than validating a thousand checks.
"""

from __future__ import annotations

import contextvars
import functools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from prober.config.conditions import MetricSpec
from prober.config.models import CheckBase, HttpUrl
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.network import network_sentence, request_url
from prober.probes.registry import (
    CERT_EXPIRY_HELP,
    Export,
    SecretKind,
    register,
    standard_exports,
    url_target,
)
from prober.redact import redact_url

if TYPE_CHECKING:
    import aiohttp

__all__ = ["HttpCheck", "HttpProbe"]

_SESSION_KEY = "http.session"
_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PHASES = "probe_http_duration_seconds"
_PHASES_HELP = (
    "time of each phase of the request, all hops (blackbox_exporter's name): resolve, connect, tls, processing "
    "(time to first byte less the others), transfer"
)


class HttpCheck(CheckBase):
    type: Literal["http"]
    url: HttpUrl
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    json_body: Any = Field(default=None, alias="json")
    follow_redirects: bool = True
    max_redirects: int = Field(10, ge=0, le=50)
    verify_tls: bool = True
    max_body: int = Field(1024 * 1024, ge=0, le=64 * 1024 * 1024, description="bytes of the body read at most")
    trace_context: bool = Field(
        True, description="send W3C `traceparent`/`tracestate` naming the run's span (while traces are exported)"
    )

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        method = value.upper()
        if method not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            raise ValueError(f"expected an HTTP method like GET or POST, got {value!r}")
        return method

    @model_validator(mode="after")
    def _one_body(self) -> HttpCheck:
        if self.body is not None and self.json_body is not None:
            raise ValueError("give either 'body' or 'json', not both")
        return self


@dataclass(slots=True)
class _Timing:
    """Moments (perf_counter seconds) of one request, accumulated over redirect hops."""

    start: float = 0.0
    dns: float = 0.0
    connect: float = 0.0
    tls: float = 0.0
    dns_started: float = 0.0
    conn_started: float = 0.0
    tcp_done: float = 0.0
    redirects: int = 0
    peer_cert: bytes | None = None
    marks: list[tuple[str, float, float]] | None = None
    """(phase, start, end) of every hop, kept only when the run records a timeline."""


_current_timing: contextvars.ContextVar[_Timing | None] = contextvars.ContextVar("prober_http_timing", default=None)


class _TimedLoop:
    """Loop proxy for the connector: `create_connection(sock=...)` is called once TCP is connected,
    so the time spent inside it is the TLS handshake. Everything else is the real loop."""

    _DIRECT = ("time", "call_soon", "call_later", "call_at", "create_future", "create_task", "sock_connect",
               "getaddrinfo", "run_in_executor", "get_debug", "is_closed")  # fmt: skip
    """Bound once: the connector reads these for every request, and `__getattr__` costs a call each time."""

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        for name in self._DIRECT:
            setattr(self, name, getattr(loop, name))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        timing = _current_timing.get()
        if timing is None or not kwargs.get("ssl"):
            return await self._loop.create_connection(*args, **kwargs)
        timing.tcp_done = time.perf_counter()
        transport, protocol = await self._loop.create_connection(*args, **kwargs)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            # Taken here: by the time the response is read, aiohttp may have released the connection.
            timing.peer_cert = ssl_object.getpeercert(binary_form=True)
        return transport, protocol


@functools.cache
def _timed_connector_class() -> type[aiohttp.TCPConnector]:
    """The connector that times each hop's phases into the current `_Timing` (built on first use, with
    aiohttp). It replaces aiohttp's trace hooks, which cost a tenth of a request's CPU: the connection
    phase is `_create_connection` (DNS included, so it is taken out), DNS is the resolver's `resolve`
    (never called for an IP address), and its loop is a `_TimedLoop` that splits TCP from TLS."""
    import aiohttp

    class _TimedResolver(aiohttp.ThreadedResolver):
        async def resolve(self, host: str, port: int = 0, family: Any = 0) -> Any:
            timing = _current_timing.get()
            if timing is None:
                return await super().resolve(host, port, family)
            timing.dns_started = began = time.perf_counter()
            try:
                return await super().resolve(host, port, family)
            finally:
                ended = time.perf_counter()
                timing.dns += ended - began
                if timing.marks is not None:
                    timing.marks.append(("dns", began, ended))

    class _TimedConnector(aiohttp.TCPConnector):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(resolver=_TimedResolver(), **kwargs)
            self._loop = _TimedLoop(self._loop)  # type: ignore[assignment]

        async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
            timing = _current_timing.get()
            if timing is None:
                return await super()._create_connection(req, traces, timeout)
            timing.conn_started = time.perf_counter()
            timing.tcp_done = 0.0
            protocol = await super()._create_connection(req, traces, timeout)
            _connection_made(timing)
            return protocol

    return _TimedConnector


def _connection_made(timing: _Timing) -> None:
    now = time.perf_counter()
    # The connection phase includes DNS in aiohttp; take it out so the phases add up.
    begin = max(timing.conn_started, timing.dns_started + timing.dns if timing.dns_started else 0.0)
    if timing.tcp_done:
        timing.connect += max(0.0, timing.tcp_done - begin)
        timing.tls += now - timing.tcp_done
    else:
        timing.connect += max(0.0, now - begin)
    if timing.marks is not None:
        timing.marks.append(("connect", begin, timing.tcp_done or now))
        if timing.tcp_done:
            timing.marks.append(("tls", timing.tcp_done, now))


def expiry_sentence(days: object, condition: str) -> str | None:
    """`prober.probes.certs.expiry_sentence`, imported when a condition fails (cryptography is heavy)."""
    from prober.probes.certs import expiry_sentence as sentence

    return sentence(days, condition)


async def _new_session() -> aiohttp.ClientSession:
    # force_close: no keep-alive, every run opens its own connection so the phase times are real.
    # use_dns_cache=False: every run resolves the name again.
    import aiohttp

    connector = _timed_connector_class()(force_close=True, use_dns_cache=False, limit=0, enable_cleanup_closed=False)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=True,
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def _close_session(session: aiohttp.ClientSession) -> None:
    await session.close()


def _uses(check: HttpCheck, metric: str) -> bool:
    return metric in check.expect or metric in check.warn


def _client_error_sentence(exc: aiohttp.ClientError, check: HttpCheck) -> str:
    import aiohttp

    if isinstance(exc, aiohttp.TooManyRedirects):
        return f"too many redirects (more than {check.max_redirects}; a redirect loop?)"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate rejected: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return f"TLS handshake failed: {exc.os_error}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return network_sentence(exc, exc.host, exc.port)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without a response"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the response body was cut short: {exc}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"invalid HTTP response: {exc.message}"
    if isinstance(exc, getattr(aiohttp, "RedirectClientError", ())):  # aiohttp 3.10+: Location file://, ftp://, junk
        target = str(getattr(exc, "url", "") or exc)[:200]
        plain = isinstance(exc, getattr(aiohttp, "NonHttpUrlClientError", ()))
        return f"the server redirected to {target!r}, which is {'not an http(s) URL' if plain else 'not a valid URL'}"
    return f"HTTP request failed: {type(exc).__name__}: {exc}"


@register("http")
class HttpProbe:
    """HTTP(S) request with phase timings, body/JSON/header subjects and, for https, certificate days left."""

    type_name: ClassVar[str]
    Config = HttpCheck
    metrics: ClassVar[Mapping[str, MetricSpec]] = {
        spec.name: spec
        for spec in (
            MetricSpec("status", "HTTP status code of the final response"),
            MetricSpec("latency", "total time: request start to the end of the body read", unit="s"),
            MetricSpec("dns", "name resolution time (all hops)", unit="s"),
            MetricSpec("connect", "TCP connect time (all hops)", unit="s"),
            MetricSpec("tls", "TLS handshake time (all hops)", unit="s"),
            MetricSpec("ttfb", "time to first byte: request start to the final response's headers", unit="s"),
            MetricSpec("transfer", "time reading the body", unit="s"),
            MetricSpec("body_size", "bytes of body read (at most max_body)", unit="bytes"),
            MetricSpec("redirects", "redirects followed"),
            MetricSpec("body_contains", "text that must appear in the body", kind="contains", subject="body"),
            MetricSpec("body_matches", "regular expression searched in the body", kind="matches", subject="body"),
            MetricSpec("json", "dotted paths into the JSON body", kind="paths", subject="json"),
            MetricSpec(
                "headers",
                "response header name -> condition",
                kind="paths",
                subject="headers",
                case_insensitive_paths=True,
            ),
            MetricSpec(
                "cert_days_remaining",
                "days until the server certificate expires (https)",
                unit="days",
                describe=expiry_sentence,
            ),
        )
    }

    exports: ClassVar[Mapping[str, tuple[Export, ...]]] = standard_exports(
        "http",
        metrics,
        rename={"status": "probe_http_status_code"},
        extra={
            "dns": (Export(_PHASES, "seconds", labels=(("phase", "resolve"),), help=_PHASES_HELP),),
            "connect": (Export(_PHASES, "seconds", labels=(("phase", "connect"),), help=_PHASES_HELP),),
            "tls": (Export(_PHASES, "seconds", labels=(("phase", "tls"),), help=_PHASES_HELP),),
            "transfer": (Export(_PHASES, "seconds", labels=(("phase", "transfer"),), help=_PHASES_HELP),),
            "ttfb": (
                Export(
                    _PHASES,
                    "seconds",
                    labels=(("phase", "processing"),),
                    minus=("dns", "connect", "tls"),
                    help=_PHASES_HELP,
                ),
            ),
            "cert_days_remaining": (
                Export("probe_ssl_earliest_cert_expiry", "seconds", kind="days_until", help=CERT_EXPIRY_HELP),
            ),
        },
    )
    headline: ClassVar[tuple[str, ...]] = ("status", "latency")
    secrets: ClassVar[Mapping[str, SecretKind]] = {
        "url": "url",
        "headers": "headers",
        "body": "text",
        "json_body": "text",
    }
    target = url_target

    def default_expect(self, check: HttpCheck) -> Mapping[str, Any]:
        return {"status": "2xx"}

    async def run(self, check: HttpCheck, ctx: ProbeContext) -> Observation:
        import aiohttp

        session: aiohttp.ClientSession = await ctx.resources.get(_SESSION_KEY, _new_session, _close_session)
        timing = _Timing(marks=[] if ctx.timeline.enabled else None)
        token = _current_timing.set(timing)
        metrics: dict[str, Any] = {}
        details: dict[str, Any] = {}
        try:
            headers = check.headers
            if ctx.trace is not None and check.trace_context:
                headers = {**ctx.trace.headers(), **headers}  # the check's own headers win
            kwargs: dict[str, Any] = {
                "headers": headers,
                "allow_redirects": check.follow_redirects and check.max_redirects > 0,
                # aiohttp counts the final response too, and treats 0 as "no limit".
                "max_redirects": check.max_redirects + 1,
            }
            if not check.verify_tls:
                kwargs["ssl"] = False
            if check.body is not None:
                kwargs["data"] = check.body.encode()
            elif check.json_body is not None:
                kwargs["json"] = check.json_body
            timing.start = time.perf_counter()
            async with session.request(check.method, request_url(check.url, check.headers), **kwargs) as response:
                headers_at = time.perf_counter()
                timing.redirects = len(response.history)
                metrics["status"] = response.status
                if check.follow_redirects and not check.max_redirects and response.status in _REDIRECTS:
                    raise aiohttp.TooManyRedirects(response.request_info, (response,))
                if timing.peer_cert:
                    from prober.probes.certs import leaf_days_remaining

                    metrics["cert_days_remaining"] = round(leaf_days_remaining(timing.peer_cert), 2)
                body, truncated = await _read_capped(response, check.max_body)
                done = time.perf_counter()
                subjects = _subjects(check, response, body, details)
        except aiohttp.ClientError as exc:
            metrics.update(_phases(timing, time.perf_counter(), None, None))
            sentence = _client_error_sentence(exc, check)
            _record(ctx, check, timing, time.perf_counter(), metrics.get("status"), sentence, type(exc).__name__)
            raise ProbeError(sentence, metrics=metrics) from None
        finally:
            _current_timing.reset(token)
        _record(ctx, check, timing, done, response.status, None, None)
        metrics.update(_phases(timing, done, headers_at, done))
        metrics["body_size"] = len(body)
        metrics["redirects"] = timing.redirects
        if truncated:
            details["body_truncated_at"] = check.max_body
        if str(response.url) != check.url:
            details["final_url"] = str(response.url.with_user(None).with_password(None))
        json_error = details.pop("json_error", None)
        if json_error:
            raise ProbeError(
                f"the response body is not JSON ({json_error}); status {response.status}",
                metrics=metrics,
                details=details,
            )
        return Observation(metrics=metrics, subjects=subjects, details=details)


def _record(
    ctx: ProbeContext,
    check: HttpCheck,
    timing: _Timing,
    end: float,
    status: int | None,
    error: str | None,
    error_type: str | None,
) -> None:
    """Put the phases of the request (every hop's dns, connect, tls, then the request) in the timeline."""
    if timing.marks is None or not timing.start:
        return
    for name, start, stop in timing.marks:
        ctx.timeline.add(name, start, stop)
    attributes: dict[str, Any] = {"http.request.method": check.method, "url.full": redact_url(check.url)}
    parts = urlsplit(check.url)
    attributes["server.address"] = parts.hostname or ""
    attributes["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
    if status is not None:
        attributes["http.response.status_code"] = status
    if error_type is not None:
        attributes["error.type"] = error_type
    elif status is not None and status >= 400:
        attributes["error.type"] = str(status)
    # Semantic conventions: an HTTP client span is named by its method.
    ctx.timeline.add(check.method, timing.start, end, error, **attributes)


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Read at most `limit` bytes; report whether more was on offer (the rest is never read)."""
    if response.method == "HEAD":
        return b"", False
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(min(_CHUNK, limit - size))
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    truncated = not response.content.at_eof()
    if truncated:
        response.close()
    return b"".join(chunks), truncated


def _subjects(
    check: HttpCheck, response: aiohttp.ClientResponse, body: bytes, details: dict[str, Any]
) -> dict[str, Any]:
    """Build only what the conditions of this check will look at."""
    subjects: dict[str, Any] = {}
    if _uses(check, "headers"):
        subjects["headers"] = {key: value for key, value in response.headers.items()}
    if _uses(check, "body_contains") or _uses(check, "body_matches"):
        try:
            subjects["body"] = body.decode(response.charset or "utf-8", errors="replace")
        except LookupError:
            subjects["body"] = body.decode("utf-8", errors="replace")
    if _uses(check, "json"):
        try:
            subjects["json"] = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            details["json_error"] = str(exc).split(":")[0] if body else "the body is empty"
        except RecursionError:  # a hostile body: [[[[... nested deeper than the parser goes
            details["json_error"] = "it is nested too deeply to parse"
    return subjects


def _phases(timing: _Timing, end: float, headers_at: float | None, body_done: float | None) -> dict[str, float]:
    phases = {"latency": end - timing.start, "dns": timing.dns, "connect": timing.connect}
    if timing.tls:
        phases["tls"] = timing.tls
    if headers_at is not None:
        phases["ttfb"] = headers_at - timing.start
        if body_done is not None:
            phases["transfer"] = max(0.0, body_done - headers_at)
    return {key: round(value, 6) for key, value in phases.items()}
