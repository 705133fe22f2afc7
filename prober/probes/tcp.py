"""The `tcp` check type: connect, optionally TLS or STARTTLS, then an ordered `send` / `expect` conversation.

Like blackbox_exporter's tcp prober with `query_response`: a Redis `PING` answered `+PONG`, an SMTP
greeting matching `^220`, a TLS port's certificate days. Each `expect` step waits for its text (or RE2
pattern) in what the server sent since the previous match, until the run's deadline.

It measures and never judges: a reply that never came or did not match is `steps_passed: false` with the
step and what arrived in `details.errors` (the default expect turns it into down), so a conversation that
breaks half-way still reports its connect time, banner and the steps that passed. It raises ProbeError
only when there is no conversation at all: refused, unresolvable, a failed TLS handshake or STARTTLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from prober.config.conditions import MetricSpec
from prober.config.models import CaFile, CheckBase, PlainHost, StrictModel
from prober.config.regex import UserRegex, compile_user_regex
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.conversation import Conversation, Miss, first_line, shown
from prober.probes.network import network_sentence, where
from prober.probes.registry import Export, SecretKind, host_port_target, register, standard_exports
from prober.probes.starttls import StartTls, upgrade

__all__ = ["TcpCheck", "TcpProbe", "TcpStep"]

_MARGIN = 0.25
"""Seconds kept before the runner's deadline so a silent server gets a sentence naming the step."""


class TcpStep(StrictModel):
    """One step of the conversation: exactly one of `send`, `expect`, `expect_regex`."""

    send: str | None = Field(None, description='text sent as is (YAML escapes: "PING\\r\\n")')
    expect: str | None = Field(None, description="text that must arrive before the next step")
    expect_regex: str | None = Field(None, description="RE2 pattern that must match what arrives")
    _pattern: UserRegex | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _exactly_one(self) -> TcpStep:
        given = [key for key in ("send", "expect", "expect_regex") if getattr(self, key) is not None]
        if len(given) != 1:
            got = ", ".join(given) if given else "none"
            raise ValueError(f"a step has exactly one of send, expect, expect_regex; got {got}")
        if self.expect == "":
            raise ValueError("expect must not be empty; give the text the server must send")
        if self.expect_regex is not None:
            try:
                self._pattern = compile_user_regex(self.expect_regex)
            except ValueError as exc:
                raise ValueError(f"invalid regular expression {self.expect_regex!r}: {exc}") from None
        return self

    @property
    def pattern(self) -> UserRegex | None:
        return self._pattern


class TcpCheck(CheckBase):
    """`type: tcp`."""

    type: Literal["tcp"]
    host: PlainHost = Field(description="host name or IP address to connect to")
    port: int = Field(ge=1, le=65535)
    ip_version: Literal[4, 6] | None = Field(None, description="connect over IPv4 or IPv6 only; default either")
    tls: bool = Field(False, description="TLS from the first byte (SMTPS, IMAPS, rediss)")
    starttls: StartTls | None = Field(
        None, description="ask for TLS in plaintext first: smtp, imap, pop3, ftp or postgres"
    )
    server_name: str | None = Field(None, description="SNI name and the name the certificate must match; default host")
    ca_file: CaFile = Field(None, description="PEM bundle of trusted CAs instead of the system trust store")
    verify_tls: bool = Field(True, description="refuse a certificate that does not verify (chain and name)")
    steps: list[TcpStep] = Field(default_factory=list, description="the conversation, in order, after connect/TLS")

    @field_validator("starttls")
    @classmethod
    def _one_tls(cls, value: StartTls | None, info: ValidationInfo) -> StartTls | None:
        if value is not None and info.data.get("tls"):
            raise ValueError(f"give either tls: true (TLS from the first byte) or starttls: {value}, not both")
        return value

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.starttls is not None


def _context(check: TcpCheck) -> ssl.SSLContext:
    if not check.verify_tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=check.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ProbeError(f"cannot load ca_file {check.ca_file}: {exc}") from None


def _step_sentence(index: int, step: TcpStep, at: str, miss: Miss) -> str:
    wanted = f"{step.expect!r}" if step.expect is not None else f"/{step.expect_regex}/"
    head = f"step {index}: expected {wanted} from {at}"
    if miss.reason == "closed":
        return f"{head}, but it closed the connection" + (f" after sending {shown(miss.received)}" if miss.received
                                                         else " without sending anything")  # fmt: skip
    if miss.reason == "overflow":
        return f"{head}, but it sent 64 KiB without it (starting {shown(miss.received, 60)})"
    got = f"received {shown(miss.received)}" if miss.received else "received nothing"
    return f"{head} within {miss.waited:.1f}s; {got}"


async def _connect(check: TcpCheck) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, float]:
    family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(check.ip_version or 0, socket.AF_UNSPEC)
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(check.host, check.port, family=family)
    except OSError as exc:
        raise ProbeError(network_sentence(exc, check.host, check.port)) from None
    return reader, writer, time.perf_counter() - started


async def _start_tls(check: TcpCheck, writer: asyncio.StreamWriter, deadline: float, at: str) -> float:
    started = time.perf_counter()
    name = check.server_name or check.host
    try:
        async with asyncio.timeout_at(deadline):
            await writer.start_tls(_context(check), server_hostname=name)
    except TimeoutError:
        raise ProbeError(f"{at} sent no TLS handshake answer within the timeout; is it a TLS port?") from None
    except ssl.SSLCertVerificationError as exc:
        raise ProbeError(network_sentence(exc, name, check.port)) from None
    except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
        if isinstance(exc, ssl.SSLError) and exc.reason == "WRONG_VERSION_NUMBER":
            raise ProbeError(f"{at} does not speak TLS: it answered the ClientHello with something else") from None
        if isinstance(exc, ssl.SSLError):
            raise ProbeError(network_sentence(exc, check.host, check.port)) from None
        raise ProbeError(f"{at} closed the connection during the TLS handshake") from None
    return time.perf_counter() - started


@register("tcp")
class TcpProbe:
    """Connect, optional TLS/STARTTLS, run the steps; report timings, banner, certificate days."""

    type_name: ClassVar[str]
    Config = TcpCheck
    metrics: ClassVar[Mapping[str, MetricSpec]] = {
        spec.name: spec
        for spec in (
            MetricSpec("connect", "time to open the TCP connection", unit="s"),
            MetricSpec("tls", "time of the TLS handshake (after STARTTLS when used)", unit="s"),
            MetricSpec("response", "time from connected (and TLS) to the last expect step's match", unit="s"),
            MetricSpec("responses", "seconds each expect step waited for its text, in order"),
            MetricSpec("steps_passed", "every expect step received its text"),
            MetricSpec("banner", "the first line the server sent (an SMTP or SSH greeting)"),
            MetricSpec("resolved_ip", "the IP address connected to"),
            MetricSpec("tls_version", "the negotiated TLS protocol when TLS is used: TLSv1.2, TLSv1.3"),
            MetricSpec("cert_days_remaining", "days until the server's TLS certificate expires", unit="days"),
        )
    }
    exports: ClassVar[Mapping[str, tuple[Export, ...]]] = standard_exports(
        "tcp",
        metrics,
        text=("responses", "banner", "resolved_ip", "tls_version"),
        rename={"cert_days_remaining": "probe_tcp_cert_remaining_seconds"},
        extra={"tls_version": (Export("probe_tls_version_info", kind="info", info_label="version"),)},
    )
    headline: ClassVar[tuple[str, ...]] = ("connect", "response")
    secrets: ClassVar[Mapping[str, SecretKind]] = {"steps.send": "text"}
    """What is sent may carry a password (Redis `AUTH`, SMTP `AUTH PLAIN`)."""
    target = host_port_target

    def default_expect(self, check: TcpCheck) -> Mapping[str, Any]:
        return {"steps_passed": True} if any(step.send is None for step in check.steps) else {}

    async def run(self, check: TcpCheck, ctx: ProbeContext) -> Observation:
        at = where(check.host, check.port)
        deadline = ctx.deadline - min(_MARGIN, ctx.timeout * 0.1)
        reader, writer, connect = await _connect(check)
        metrics: dict[str, Any] = {"connect": round(connect, 6)}
        peer = writer.get_extra_info("peername")
        if peer:
            metrics["resolved_ip"] = str(peer[0])
        conversation = Conversation(reader, writer)
        try:
            if check.starttls is not None:
                refused = await upgrade(check.starttls, conversation, at, deadline)
                if refused:
                    raise ProbeError(refused, metrics=_with_banner(metrics, conversation))
            if check.uses_tls:
                handshake = await _start_tls_measured(check, writer, deadline, at, metrics, conversation)
                metrics["tls"] = round(handshake, 6)
                conversation.rebind(reader, writer)
                _certificate(writer, metrics)
            details = await _converse(check, conversation, deadline, at, metrics)
        finally:
            writer.transport.abort()
        _with_banner(metrics, conversation)
        return Observation(metrics=metrics, details=details)


async def _start_tls_measured(
    check: TcpCheck,
    writer: asyncio.StreamWriter,
    deadline: float,
    at: str,
    metrics: dict[str, Any],
    conversation: Conversation,
) -> float:
    try:
        return await _start_tls(check, writer, deadline, at)
    except ProbeError as exc:
        exc.metrics = {**_with_banner(metrics, conversation), **exc.metrics}
        raise


def _with_banner(metrics: dict[str, Any], conversation: Conversation) -> dict[str, Any]:
    if conversation.received_any and "banner" not in metrics:
        metrics["banner"] = first_line(conversation.received_any)
    return metrics


def _certificate(writer: asyncio.StreamWriter, metrics: dict[str, Any]) -> None:
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is None:
        return
    metrics["tls_version"] = ssl_object.version()
    der = ssl_object.getpeercert(binary_form=True)
    if der:
        from prober.probes.certs import leaf_days_remaining  # cryptography only when TLS is used

        with contextlib.suppress(ValueError):
            metrics["cert_days_remaining"] = leaf_days_remaining(der)


async def _converse(
    check: TcpCheck, conversation: Conversation, deadline: float, at: str, metrics: dict[str, Any]
) -> dict[str, Any]:
    """Run the steps; fill `response`, `responses`, `steps_passed`; details name the failed step."""
    started = time.perf_counter()
    responses: list[float] = []
    steps: list[dict[str, Any]] = []
    passed = True
    for index, step in enumerate(check.steps, 1):
        if step.send is not None:
            try:
                await conversation.send(step.send)
            except (ConnectionError, OSError) as exc:
                passed = False
                steps.append({"step": index, "error": f"step {index}: {network_sentence(exc, check.host, check.port)}"})
                break
            continue
        outcome = await conversation.wait_for(text=step.expect, pattern=step.pattern, deadline=deadline)
        if isinstance(outcome, Miss):
            passed = False
            steps.append({"step": index, "error": _step_sentence(index, step, at, outcome)})
            break
        responses.append(round(outcome[1], 6))
        steps.append({"step": index, "seconds": round(outcome[1], 6), "received": outcome[0]})
    details: dict[str, Any] = {}
    if check.steps:
        metrics["responses"] = responses
        metrics["steps_passed"] = passed
        if passed and responses:
            metrics["response"] = round(time.perf_counter() - started, 6)
        details["steps"] = steps
        errors = [item["error"] for item in steps if "error" in item]
        if errors:
            details["errors"] = errors
    return details
