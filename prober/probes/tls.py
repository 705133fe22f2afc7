"""The `tls` check type (docs/checks/tls.md): a TLS handshake that reports the server's certificate and session.

It reports every metric even when the certificate is expired, self-signed or for another host, and
leaves the verdict to the conditions (default: `days_remaining > 0`, `chain_valid`, `hostname_match`).

How `chain_valid` is decided: the first handshake verifies the chain with OpenSSL against the system
trust store (or only `ca_file` when given), with the hostname check off. When it succeeds (the usual
case) that one connection gives every metric. When OpenSSL rejects the chain, its reason ("certificate
has expired", "self-signed certificate") goes to `details.verify_error` and a second handshake with
verification off reads the certificate anyway. Verifying inside the handshake keeps OpenSSL's exact
rules and error texts (what curl or Python clients would say) and costs nothing for healthy targets;
Python 3.11 does not expose the peer's intermediate certificates, so the chain cannot be re-verified
afterwards. `hostname_match` is computed from the leaf's SANs against `server_name` (certs.py).

This module never judges: a certificate that fails a condition is still a successful measurement. It
raises ProbeError only when there is no certificate to report: connection refused, DNS failure, a
server that does not speak TLS or aborts the handshake.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from prober.config.conditions import MetricSpec
from prober.config.durations import format_duration
from prober.config.models import CaFile, CheckBase, PlainHost
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.certs import certificate_facts, expiry_sentence, hostname_matches
from prober.probes.network import network_sentence
from prober.probes.registry import (
    CERT_EXPIRY_HELP,
    Export,
    SecretKind,
    host_port_target,
    register,
    standard_exports,
)

__all__ = ["TlsCheck", "TlsProbe"]

_NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"}
)
_CLOSE_WAIT = 0.5
"""Seconds to wait for the server's close_notify before dropping the connection."""


class TlsCheck(CheckBase):
    """The keys of a `tls` check."""

    type: Literal["tls"]
    host: PlainHost = Field(description="host name or IP address to connect to")
    port: int = Field(443, ge=1, le=65535)
    server_name: str | None = Field(None, description="SNI name and the name the certificate must match; default host")
    ca_file: CaFile = Field(
        None, description="PEM bundle of trusted CAs used instead of the system trust store for chain_valid"
    )


# Contexts are expensive to build (loading the system trust store) and safe to share between connections.
# Keyed by purpose and ca_file; a ca_file edited on disk (new mtime or size) replaces its entry.
_contexts: dict[str, tuple[tuple[int, int], ssl.SSLContext]] = {}


def _verifying_context(ca_file: str | None) -> ssl.SSLContext:
    """Verify the chain (not the name) against the system store, or only `ca_file` when given."""
    stamp = (0, 0)
    if ca_file is not None:
        try:
            stat = os.stat(ca_file)
        except OSError as exc:
            raise ProbeError(f"cannot read ca_file {ca_file}: {exc.strerror or exc}") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
    key = f"verify:{ca_file or ''}"
    cached = _contexts.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ProbeError(f"cannot load ca_file {ca_file}: {exc}") from None
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    _contexts[key] = (stamp, context)
    return context


def _reading_context() -> ssl.SSLContext:
    """Verification off: only to read the certificate and session of a server whose chain failed."""
    cached = _contexts.get("read")
    if cached is not None:
        return cached[1]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _contexts["read"] = ((0, 0), context)
    return context


@dataclass(slots=True)
class _Session:
    der: bytes
    tls_version: str | None
    cipher: str | None
    connect: float
    handshake: float


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, float]:
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        raise ProbeError(network_sentence(exc, host, port)) from None
    return reader, writer, time.perf_counter() - started


def _handshake_failure(exc: BaseException, where: str) -> str:
    """The sentence for a handshake that failed for a reason other than an untrusted certificate."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason.upper() in _NOT_TLS_REASONS:
        said = reason.lower().replace("_", " ")
        return f"{where} does not speak TLS: it answered the TLS ClientHello with something else ({said})"
    if isinstance(exc, ssl.SSLEOFError | ConnectionError | asyncio.IncompleteReadError | EOFError):
        return f"{where} closed the connection during the TLS handshake"
    if isinstance(exc, ssl.SSLError):
        text = reason.lower().replace("_", " ") if isinstance(reason, str) else str(exc)
        return f"TLS handshake with {where} failed: {text}"
    return f"TLS handshake with {where} failed: {exc or type(exc).__name__}"


async def _close(writer: asyncio.StreamWriter, graceful: bool, ctx: ProbeContext) -> None:
    """Drop the connection; after a good handshake first send close_notify and wait a moment. Never raises."""
    try:
        if graceful:
            writer.close()
            async with asyncio.timeout(min(_CLOSE_WAIT, ctx.remaining())):
                await writer.wait_closed()
    except (TimeoutError, OSError, ssl.SSLError):
        pass
    finally:
        writer.transport.abort()


async def _handshake(check: TlsCheck, server_name: str, context: ssl.SSLContext, ctx: ProbeContext) -> _Session:
    """One TCP connection and one TLS handshake; raises ssl.SSLCertVerificationError for a rejected chain."""
    where = _where(check.host, check.port)
    _, writer, connect = await _open(check.host, check.port)
    completed = False
    try:
        # Stop a little before the runner's deadline, so a silent server gets a sentence saying so.
        margin = min(0.25, ctx.timeout * 0.1)
        started = time.perf_counter()
        try:
            async with asyncio.timeout_at(ctx.deadline - margin):
                await writer.start_tls(context, server_hostname=server_name)
        except TimeoutError:
            waited = format_duration(time.perf_counter() - started)
            raise ProbeError(
                f"{where} accepted the connection but sent no TLS handshake answer within {waited}; is it a TLS port?",
                metrics={"connect": round(connect, 6)},
            ) from None
        except ssl.SSLCertVerificationError:
            raise
        except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
            raise ProbeError(_handshake_failure(exc, where), metrics={"connect": round(connect, 6)}) from None
        handshake = time.perf_counter() - started
        completed = True
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            raise ProbeError(f"{where} completed the TLS handshake without presenting a certificate")
        cipher = ssl_object.cipher()
        return _Session(
            der=der,
            tls_version=ssl_object.version(),
            cipher=cipher[0] if cipher else None,
            connect=connect,
            handshake=handshake,
        )
    finally:
        await _close(writer, completed, ctx)


def _verify_text(exc: ssl.SSLCertVerificationError) -> str:
    message = exc.verify_message or exc.reason or str(exc)
    return str(message)


@register("tls")
class TlsProbe:
    """Handshake, read the leaf certificate, report its facts and whether chain and name check out."""

    type_name: ClassVar[str]
    Config = TlsCheck
    metrics: ClassVar[Mapping[str, MetricSpec]] = {
        spec.name: spec
        for spec in (
            MetricSpec(
                "days_remaining",
                "days until the leaf certificate expires; negative once expired",
                unit="days",
                describe=expiry_sentence,
            ),
            MetricSpec("not_after", "when the leaf certificate expires, ISO 8601 UTC"),
            MetricSpec("not_before", "when the leaf certificate became valid, ISO 8601 UTC"),
            MetricSpec("issuer", "the leaf certificate's issuer, RFC 4514 (CN=R11,O=Let's Encrypt,C=US)"),
            MetricSpec("subject", "the leaf certificate's subject, RFC 4514"),
            MetricSpec("sans", "DNS names and IP addresses the leaf certificate is issued for"),
            MetricSpec("self_signed", "the leaf certificate is signed by its own key"),
            MetricSpec("chain_valid", "the chain verifies against the system trust store (or ca_file)"),
            MetricSpec("hostname_match", "the leaf certificate covers server_name (default host)"),
            MetricSpec("tls_version", "the negotiated protocol: TLSv1.2, TLSv1.3"),
            MetricSpec("cipher", "the negotiated cipher suite, e.g. TLS_AES_256_GCM_SHA384"),
            MetricSpec("connect", "time to open the TCP connection", unit="s"),
            MetricSpec("handshake", "time of the TLS handshake after the TCP connect", unit="s"),
        )
    }

    exports: ClassVar[Mapping[str, tuple[Export, ...]]] = standard_exports(
        "tls",
        metrics,
        text=("not_after", "not_before", "issuer", "subject", "sans", "tls_version", "cipher"),
        rename={"days_remaining": "probe_tls_cert_remaining_seconds"},
        extra={
            "not_after": (
                Export("probe_ssl_earliest_cert_expiry", "seconds", kind="timestamp", help=CERT_EXPIRY_HELP),
            ),
            "tls_version": (Export("probe_tls_version_info", kind="info", info_label="version"),),
        },
    )
    headline: ClassVar[tuple[str, ...]] = ("days_remaining",)
    secrets: ClassVar[Mapping[str, SecretKind]] = {}
    """A tls check has no secrets: host, port, server name and CA file are not credentials."""
    target = host_port_target

    def default_expect(self, check: TlsCheck) -> Mapping[str, Any]:
        return {"days_remaining": "> 0", "chain_valid": True, "hostname_match": True}

    async def run(self, check: TlsCheck, ctx: ProbeContext) -> Observation:
        server_name = check.server_name or check.host
        details: dict[str, Any] = {}
        try:
            session = await _handshake(check, server_name, _verifying_context(check.ca_file), ctx)
            chain_valid = True
        except ssl.SSLCertVerificationError as exc:
            chain_valid = False
            details["verify_error"] = _verify_text(exc)
            try:
                session = await _handshake(check, server_name, _reading_context(), ctx)
            except ProbeError as second:
                second.details.setdefault("verify_error", details["verify_error"])
                raise
        try:
            facts = certificate_facts(session.der)
        except ValueError as exc:
            raise ProbeError(str(exc)) from None
        hostname_match = hostname_matches(facts.sans, facts.common_name, server_name)
        if not hostname_match:
            names = ", ".join(facts.sans) or (f"CN={facts.common_name}" if facts.common_name else "no names")
            details["hostname_error"] = f"the certificate is for {names}, not {server_name}"
        metrics: dict[str, Any] = {
            "days_remaining": facts.days_remaining,
            "not_after": facts.not_after,
            "not_before": facts.not_before,
            "issuer": facts.issuer,
            "subject": facts.subject,
            "sans": facts.sans,
            "self_signed": facts.self_signed,
            "chain_valid": chain_valid,
            "hostname_match": hostname_match,
            "tls_version": session.tls_version,
            "cipher": session.cipher,
            "connect": round(session.connect, 6),
            "handshake": round(session.handshake, 6),
        }
        return Observation(metrics=metrics, details=details)
