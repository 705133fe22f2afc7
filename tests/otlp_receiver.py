"""A real OTLP/HTTP receiver on 127.0.0.1 for tests: decodes what prober exports with the official
protobuf classes (opentelemetry-proto) and keeps it, plus every raw body (to search for secrets)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def value_of(item: AnyValue) -> Any:
    kind = item.WhichOneof("value")
    return getattr(item, kind) if kind else None


def attributes(items: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in items if isinstance(kv, KeyValue)}


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start: int
    end: int
    attributes: dict[str, Any]
    status_code: int
    status_message: str
    resource: dict[str, Any]


@dataclass
class Point:
    name: str
    unit: str
    kind: str
    value: float
    attributes: dict[str, Any]
    resource: dict[str, Any]
    temporality: int | None


@dataclass
class OtlpReceiver:
    port: int = 0
    spans: list[Span] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        message = ExportTraceServiceRequest.FromString(body)
        for resource_spans in message.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        Span(
                            span.name, span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(),
                            span.kind, span.start_time_unix_nano, span.end_time_unix_nano,
                            attributes(span.attributes), span.status.code, span.status.message, resource,
                        )
                    )  # fmt: skip
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.bodies.append(body)
        message = ExportMetricsServiceRequest.FromString(body)
        for resource_metrics in message.resource_metrics:
            resource = attributes(resource_metrics.resource.attributes)
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    data = getattr(metric, kind)
                    temporality = getattr(data, "aggregation_temporality", None)
                    for point in data.data_points:
                        value = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
                        self.points.append(
                            Point(metric.name, metric.unit, kind, value, attributes(point.attributes), resource,
                                  temporality)
                        )  # fmt: skip
        return web.Response(
            body=ExportMetricsServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    async def start(self) -> OtlpReceiver:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._traces)
        app.router.add_post("/v1/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def raw(self) -> bytes:
        return b"".join(self.bodies)
