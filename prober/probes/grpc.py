"""The `grpc` check type: the standard health protocol, `grpc.health.v1.Health/Check`, over TLS or plaintext.

It asks for the health of the whole server (no service name) or of one service, on a fresh channel per run,
and reports the serving status (`SERVING`, `NOT_SERVING`, `UNKNOWN`, `SERVICE_UNKNOWN`), the RPC's status code
(0 when it succeeded) and its latency. A failed RPC (server down, unknown service, no health service) is a
ProbeError whose sentence names the cause, with `status_code` still reported.

grpcio is large, so it is an optional extra (`pip install 'prober[grpc]'`): this module imports it only when
a grpc check runs, and says how to install it when it is missing. It never judges: conditions do.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from prober.config.conditions import MetricSpec
from prober.config.models import CaFile, CheckBase, PlainHost
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.network import network_sentence, where
from prober.probes.registry import Export, SecretKind, host_port_target, register, standard_exports

__all__ = ["MISSING_EXTRA", "GrpcCheck", "GrpcProbe"]

MISSING_EXTRA = (
    "the grpc check type needs grpcio and grpcio-health-checking, which are not installed: pip install 'prober[grpc]'"
)
_MARGIN = 0.25


class GrpcCheck(CheckBase):
    """`type: grpc`."""

    type: Literal["grpc"]
    host: PlainHost = Field(description="host name or IP address of the gRPC server")
    port: int = Field(ge=1, le=65535)
    service: str = Field("", description="the service whose health is asked; empty: the whole server")
    tls: bool = Field(False, description="connect with TLS (verified against the system store or ca_file)")
    server_name: str | None = Field(None, description="the name the certificate must match (and SNI); default host")
    ca_file: CaFile = Field(None, description="PEM bundle of trusted CAs instead of the system trust store")


def _failure(code_name: str, details: str, check: GrpcCheck, budget: float) -> str:
    at = where(check.host, check.port)
    lowered = details.lower()
    if code_name == "NOT_FOUND":
        return f"{at} knows no service {check.service!r}: its health service answered NOT_FOUND"
    if code_name == "UNIMPLEMENTED":
        return f"{at} does not implement the gRPC health protocol (grpc.health.v1.Health/Check is UNIMPLEMENTED)"
    if code_name == "DEADLINE_EXCEEDED":
        return network_sentence(TimeoutError(), check.host, check.port, within=budget)
    if code_name == "UNAVAILABLE":
        if "connection refused" in lowered:
            return network_sentence(ConnectionRefusedError(), check.host, check.port)
        if "dns resolution failed" in lowered or "name or service not known" in lowered:
            return f"cannot resolve host {check.host}: {details}"
        if "ssl" in lowered or "handshake" in lowered or "certificate" in lowered:
            return f"the TLS handshake with {at} failed: {details}"
        return f"the gRPC server at {at} is unavailable: {details}"
    return f"the gRPC health check of {at} failed with {code_name}: {details}"


@register("grpc")
class GrpcProbe:
    """One Health/Check RPC on a fresh channel."""

    type_name: ClassVar[str]
    Config = GrpcCheck
    metrics: ClassVar[Mapping[str, MetricSpec]] = {
        spec.name: spec
        for spec in (
            MetricSpec("serving_status", "the health answer: SERVING, NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN"),
            MetricSpec("status_code", "the RPC's gRPC status code: 0 OK, 5 NOT_FOUND, 14 UNAVAILABLE, ..."),
            MetricSpec("latency", "time from opening the channel to the health answer", unit="s"),
            MetricSpec("tls", "the channel used TLS"),
        )
    }
    exports: ClassVar[Mapping[str, tuple[Export, ...]]] = standard_exports(
        "grpc",
        metrics,
        text=("serving_status",),
        rename={"latency": "probe_grpc_duration_seconds", "tls": "probe_grpc_ssl"},
        extra={
            "serving_status": (
                Export("probe_grpc_healthcheck_response_info", kind="info", info_label="serving_status"),
            )
        },
    )
    headline: ClassVar[tuple[str, ...]] = ("serving_status", "latency")
    secrets: ClassVar[Mapping[str, SecretKind]] = {}
    """A grpc check has no secrets: an address, a service name and a CA file."""
    target = host_port_target

    def default_expect(self, check: GrpcCheck) -> Mapping[str, Any]:
        return {"serving_status": "SERVING"}

    async def run(self, check: GrpcCheck, ctx: ProbeContext) -> Observation:
        try:
            import grpc
            from grpc_health.v1 import health_pb2, health_pb2_grpc
        except ImportError:
            raise ProbeError(MISSING_EXTRA) from None
        address = f"{where(check.host, check.port)}"
        options: list[tuple[str, Any]] = []
        if check.tls:
            roots = None
            if check.ca_file is not None:
                try:
                    with open(check.ca_file, "rb") as handle:
                        roots = handle.read()
                except OSError as exc:
                    raise ProbeError(f"cannot read ca_file {check.ca_file}: {exc.strerror or exc}") from None
            if check.server_name:
                options.append(("grpc.ssl_target_name_override", check.server_name))
            channel = grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(roots), options=options)
        else:
            channel = grpc.aio.insecure_channel(address, options=options)
        budget = max(0.05, ctx.remaining() - min(_MARGIN, ctx.timeout * 0.1))
        started = time.perf_counter()
        async with channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                response = await stub.Check(health_pb2.HealthCheckRequest(service=check.service), timeout=budget)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                metrics = {"status_code": int(code.value[0]), "latency": round(time.perf_counter() - started, 6)}
                raise ProbeError(
                    _failure(code.name, exc.details() or "", check, budget), metrics={**metrics, "tls": check.tls}
                ) from None
        latency = time.perf_counter() - started
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        return Observation(
            metrics={"serving_status": status, "status_code": 0, "latency": round(latency, 6), "tls": check.tls}
        )
