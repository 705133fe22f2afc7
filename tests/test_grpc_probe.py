"""The `grpc` check type against a real grpc.aio server with the standard health service on 127.0.0.1:
serving, not serving, an unknown service, a server without the health service, TLS with a trustme CA, a down
server, a port that never speaks HTTP/2; the sentence when grpcio is not installed; bad definitions."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from certs_factory import make_cert, silent_server
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from loopback import free_port

from prober.config.loader import ConfigError, load_config
from prober.probes.grpc import MISSING_EXTRA
from prober.results import Result
from prober.scheduling.runner import Runner

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING


@contextlib.asynccontextmanager
async def health_server(
    *, statuses: dict[str, int] | None = None, health: bool = True, tls: tuple[bytes, bytes] | None = None
) -> AsyncIterator[int]:
    """A grpc.aio server on 127.0.0.1 whose health service reports `statuses` (service -> status)."""
    server = grpc.aio.server()
    if health:
        servicer = HealthServicer()
        for service, status in (statuses or {"": SERVING}).items():
            await servicer.set(service, status)
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if tls is not None:
        credentials = grpc.ssl_server_credentials([(tls[1], tls[0])])
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port
    finally:
        await server.stop(None)


def _write(tmp_path: Path, *checks: dict[str, Any]) -> Path:
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "checks": list(checks)}), encoding="utf-8")
    return path


def _check(**keys: Any) -> dict[str, Any]:
    return {"name": "health", "type": "grpc", "host": "127.0.0.1", "timeout": "2s", **keys}


async def _run(tmp_path: Path, **keys: Any) -> Result:
    config = load_config([_write(tmp_path, _check(**keys))])
    return await Runner().run(config.checks[0])


async def test_a_serving_server_is_up(tmp_path: Path) -> None:
    async with health_server() as port:
        result = await _run(tmp_path, port=port)

    assert result.status == "up", result.error
    assert result.metrics["serving_status"] == "SERVING"
    assert result.metrics["status_code"] == 0 and result.metrics["tls"] is False
    assert 0 < result.metrics["latency"] < 1


async def test_a_service_that_is_not_serving_is_down(tmp_path: Path) -> None:
    async with health_server(statuses={"": SERVING, "billing": NOT_SERVING}) as port:
        result = await _run(tmp_path, port=port, service="billing")

    assert result.status == "down"
    assert result.error == "serving_status was 'NOT_SERVING', expected SERVING"
    assert result.metrics["status_code"] == 0


async def test_an_unknown_service_names_it_and_reports_not_found(tmp_path: Path) -> None:
    async with health_server() as port:
        result = await _run(tmp_path, port=port, service="payments")

    assert result.status == "down"
    assert result.error == f"127.0.0.1:{port} knows no service 'payments': its health service answered NOT_FOUND"
    assert result.metrics["status_code"] == 5


async def test_a_server_without_the_health_service_says_so(tmp_path: Path) -> None:
    async with health_server(health=False) as port:
        result = await _run(tmp_path, port=port)

    assert result.status == "down"
    assert result.error is not None and "does not implement the gRPC health protocol" in result.error
    assert result.metrics["status_code"] == 12


async def test_tls_with_the_servers_ca_is_up(tmp_path: Path) -> None:
    files = make_cert("good", tmp_path)
    async with health_server(tls=(files.cert.read_bytes(), files.key.read_bytes())) as port:
        result = await _run(tmp_path, port=port, tls=True, ca_file=str(files.ca), server_name="prober.test")

    assert result.status == "up", result.error
    assert result.metrics["tls"] is True


async def test_tls_with_an_untrusted_certificate_is_down(tmp_path: Path) -> None:
    files = make_cert("good", tmp_path)
    other = make_cert("good", tmp_path / "other")
    async with health_server(tls=(files.cert.read_bytes(), files.key.read_bytes())) as port:
        result = await _run(tmp_path, port=port, tls=True, ca_file=str(other.ca))

    assert result.status == "down"
    assert result.error is not None and result.error.startswith(f"the TLS handshake with 127.0.0.1:{port} failed")
    assert result.metrics["status_code"] == 14


async def test_a_down_server_is_refused_with_the_shared_sentence(tmp_path: Path) -> None:
    port = free_port()
    result = await _run(tmp_path, port=port)

    assert result.status == "down"
    assert result.error == f"connection refused by 127.0.0.1:{port}"
    assert result.metrics["status_code"] == 14


async def test_a_port_that_never_speaks_http2_is_down_before_the_runner_timeout(tmp_path: Path) -> None:
    async with silent_server() as port:
        started = time.perf_counter()
        result = await _run(tmp_path, port=port, timeout="1s")
        waited = time.perf_counter() - started

    assert result.status == "down"
    assert result.error is not None and result.error.startswith(f"no answer from 127.0.0.1:{port} within ")
    assert waited < 1.2


async def test_without_grpcio_the_sentence_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "grpc", None)  # `import grpc` raises ImportError, as when not installed
    result = await _run(tmp_path, port=50051)

    assert result.status == "down"
    assert result.error == MISSING_EXTRA
    assert "pip install 'prober[grpc]'" in MISSING_EXTRA


@pytest.mark.parametrize(
    ("keys", "field", "words"),
    [
        ({"port": 70000}, "port", "less than or equal to 65535"),
        ({"port": 1, "host": "grpc://h"}, "host", "not a URL"),
        ({"port": 1, "ca_file": "/nonexistent.pem"}, "ca_file", "does not exist"),
        ({"port": 1, "tls": "maybe"}, "tls", "boolean"),
    ],
)
def test_bad_definitions_name_file_check_and_field(
    tmp_path: Path, keys: dict[str, Any], field: str, words: str
) -> None:
    path = _write(tmp_path, _check(**keys))
    with pytest.raises(ConfigError) as raised:
        load_config([path])

    [problem] = raised.value.problems
    assert (problem.check, problem.field) == ("health", field)
    assert words in problem.message, problem.message
    assert str(path) in str(problem)
