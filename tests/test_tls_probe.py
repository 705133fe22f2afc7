"""The `tls` check type against real TLS servers on 127.0.0.1, and the certificate helpers it shares with http."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from certs_factory import (
    HOST,
    OTHER_HOST,
    closing_server,
    garbage_server,
    make_cert,
    server_ssl_context,
    silent_server,
    tls_server,
    unused_port,
)

from prober.config.loader import ConfigError, load_config
from prober.probes import get_probe
from prober.probes.certs import certificate_facts, hostname_matches, leaf_days_remaining
from prober.results import Result
from prober.scheduling.runner import Runner

if TYPE_CHECKING:
    from conftest import ProberCli

ALL_METRICS = set(get_probe("tls").metrics)


def _check(name: str, port: int, **keys: Any) -> dict[str, Any]:
    return {"name": name, "type": "tls", "host": HOST, "port": port, "timeout": "2s", **keys}


def _write(tmp_path: Path, *checks: dict[str, Any]) -> Path:
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "checks": list(checks)}), encoding="utf-8")
    return path


async def _run(tmp_path: Path, port: int, **keys: Any) -> Result:
    config = load_config([_write(tmp_path, _check("tls-target", port, **keys))])
    return await Runner().run(config.checks[0])


# --- the probe against real servers ---------------------------------------------------------------


async def test_expired_certificate_is_down_and_still_reports_every_metric(tmp_path: Path) -> None:
    files = make_cert("expired", tmp_path)
    async with tls_server(server_ssl_context(files)) as port:
        result = await _run(tmp_path, port, ca_file=str(files.ca))

    assert result.status == "down"
    assert set(result.metrics) == ALL_METRICS
    assert -3.01 <= result.metrics["days_remaining"] <= -2.99
    assert result.metrics["chain_valid"] is False
    assert result.metrics["hostname_match"] is True
    assert result.details["verify_error"] == "certificate has expired"
    assert result.error == "certificate expired 3 days ago (days_remaining -3, expected > 0); and 1 more failed"
    not_after = datetime.fromisoformat(result.metrics["not_after"].replace("Z", "+00:00"))
    assert abs(not_after - (datetime.now(UTC) - timedelta(days=3))) < timedelta(minutes=5)


async def test_self_signed_certificate_is_down_because_its_chain_is_not_trusted(tmp_path: Path) -> None:
    files = make_cert("self_signed", tmp_path)
    async with tls_server(server_ssl_context(files)) as port:
        result = await _run(tmp_path, port)

    assert result.status == "down"
    assert set(result.metrics) == ALL_METRICS
    assert result.metrics["self_signed"] is True
    assert result.metrics["chain_valid"] is False
    assert result.metrics["hostname_match"] is True
    assert result.metrics["issuer"] == result.metrics["subject"] == "CN=localhost"
    assert 89.9 < result.metrics["days_remaining"] <= 90
    assert result.details["verify_error"].replace(" ", "-") == "self-signed-certificate"
    assert result.error == "chain_valid was false, expected true"


async def test_certificate_for_another_host_is_down_with_hostname_match_false(tmp_path: Path) -> None:
    files = make_cert("wrong_host", tmp_path)
    async with tls_server(server_ssl_context(files)) as port:
        result = await _run(tmp_path, port, ca_file=str(files.ca))

    assert result.status == "down"
    assert set(result.metrics) == ALL_METRICS
    assert result.metrics["sans"] == [OTHER_HOST]
    assert result.metrics["chain_valid"] is True
    assert result.metrics["hostname_match"] is False
    assert result.details["hostname_error"] == f"the certificate is for {OTHER_HOST}, not {HOST}"
    assert result.error == "hostname_match was false, expected true"


async def test_server_name_is_sent_as_sni_and_is_the_name_the_certificate_must_cover(tmp_path: Path) -> None:
    files = make_cert("wrong_host", tmp_path)
    context = server_ssl_context(files)
    seen: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: seen.append(name)
    async with tls_server(context) as port:
        result = await _run(tmp_path, port, ca_file=str(files.ca), server_name=OTHER_HOST)

    assert result.status == "up", result.error
    assert result.metrics["hostname_match"] is True
    assert seen == [OTHER_HOST]


async def test_five_days_left_passes_the_default_expectation(tmp_path: Path) -> None:
    files = make_cert("five_days", tmp_path)
    async with tls_server(server_ssl_context(files)) as port:
        result = await _run(tmp_path, port, ca_file=str(files.ca))

    assert result.status == "up", result.error
    assert 4.99 <= result.metrics["days_remaining"] <= 5.01
    assert round(result.metrics["days_remaining"], 2) == result.metrics["days_remaining"]


async def test_five_days_left_under_a_fourteen_day_expectation_is_down_showing_the_actual_days(tmp_path: Path) -> None:
    files = make_cert("five_days", tmp_path)
    async with tls_server(server_ssl_context(files)) as port:
        result = await _run(tmp_path, port, ca_file=str(files.ca), expect={"days_remaining": ">= 14"})

    assert result.status == "down"
    assert result.error == "days_remaining was 5, expected >= 14"
    failed = [a for a in result.assertions if not a.ok]
    assert [(a.metric, a.condition, a.actual) for a in failed] == [("days_remaining", ">= 14", 5.0)]


async def test_five_days_left_under_a_thirty_day_warning_is_degraded(tmp_path: Path) -> None:
    files = make_cert("five_days", tmp_path)
    async with tls_server(server_ssl_context(files)) as port:
        result = await _run(tmp_path, port, ca_file=str(files.ca), warn={"days_remaining": ">= 30"})

    assert result.status == "degraded"
    assert result.error == "warning: days_remaining was 5, expected >= 30"


async def test_good_certificate_trusted_through_ca_file_is_up_with_session_details(tmp_path: Path) -> None:
    files = make_cert("good", tmp_path)
    async with tls_server(server_ssl_context(files)) as port:
        result = await _run(tmp_path, port, ca_file=str(files.ca))

    assert result.status == "up", result.error
    metrics = result.metrics
    assert set(metrics) == ALL_METRICS
    assert metrics["chain_valid"] is True and metrics["hostname_match"] is True
    assert metrics["self_signed"] is False
    assert metrics["sans"] == ["localhost", "prober.test", HOST]
    assert "O=trustme" in metrics["issuer"]
    assert metrics["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert isinstance(metrics["cipher"], str) and metrics["cipher"]
    assert 0 < metrics["connect"] < 2 and 0 < metrics["handshake"] < 2
    assert "verify_error" not in result.details
    json.dumps(result.to_json())  # every metric is JSON-able


async def test_good_certificate_without_its_ca_is_down_because_the_issuer_is_unknown(tmp_path: Path) -> None:
    files = make_cert("good", tmp_path)
    async with tls_server(server_ssl_context(files)) as port:
        result = await _run(tmp_path, port)

    assert result.status == "down"
    assert result.metrics["chain_valid"] is False
    assert result.metrics["days_remaining"] > 89
    assert result.details["verify_error"] == "unable to get local issuer certificate"


async def test_refused_port_is_down_with_connection_refused(tmp_path: Path) -> None:
    port = unused_port()
    result = await _run(tmp_path, port)

    assert result.status == "down"
    assert result.error == f"connection refused by {HOST}:{port}"


async def test_plain_tcp_server_that_never_speaks_tls_is_down_within_the_timeout(tmp_path: Path) -> None:
    async with silent_server() as port:
        started = time.perf_counter()
        result = await _run(tmp_path, port, timeout="1s")
        elapsed = time.perf_counter() - started

    assert result.status == "down"
    assert elapsed < 1.5, f"a silent server held the check for {elapsed:.2f}s with a 1s timeout"
    assert result.error is not None
    assert "sent no TLS handshake answer" in result.error and "is it a TLS port?" in result.error


async def test_server_answering_garbage_is_down_saying_it_does_not_speak_tls(tmp_path: Path) -> None:
    async with garbage_server() as port:
        result = await _run(tmp_path, port)

    assert result.status == "down"
    assert result.error is not None
    assert result.error.startswith(f"{HOST}:{port} does not speak TLS: it answered the TLS ClientHello")
    assert "connect" in result.metrics


async def test_server_hanging_up_before_the_handshake_is_down_saying_so(tmp_path: Path) -> None:
    async with closing_server() as port:
        result = await _run(tmp_path, port)

    assert result.status == "down"
    assert result.error == f"{HOST}:{port} closed the connection during the TLS handshake"


async def test_unresolvable_host_is_down_naming_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_such_name(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # The resolver is replaced (no DNS traffic leaves the machine); the probe's own error path is real.
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_such_name)
    config = load_config([_write(tmp_path, {**_check("tls-target", 443), "host": "nowhere.test"})])
    result = await Runner().run(config.checks[0])

    assert result.status == "down"
    assert result.error == "cannot resolve host nowhere.test: Name or service not known"


async def test_a_trusted_certificate_costs_one_connection_an_untrusted_one_two(tmp_path: Path) -> None:
    files = make_cert("good", tmp_path)
    context = server_ssl_context(files)
    handshakes: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: handshakes.append(name)
    async with tls_server(context) as port:
        await _run(tmp_path, port, ca_file=str(files.ca), server_name="localhost")
        trusted = len(handshakes)
        await _run(tmp_path, port, server_name="localhost")
        untrusted = len(handshakes) - trusted

    assert (trusted, untrusted) == (1, 2)


async def test_a_ca_file_replaced_on_disk_is_read_again_on_the_next_run(tmp_path: Path) -> None:
    files = make_cert("good", tmp_path / "served")
    stranger = make_cert("good", tmp_path / "stranger")
    trusted = tmp_path / "trusted.pem"
    trusted.write_bytes(stranger.ca.read_bytes())
    async with tls_server(server_ssl_context(files)) as port:
        before = await _run(tmp_path, port, ca_file=str(trusted))
        trusted.write_bytes(files.ca.read_bytes())
        stat = trusted.stat()
        os.utime(trusted, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        after = await _run(tmp_path, port, ca_file=str(trusted))

    assert (before.metrics["chain_valid"], after.metrics["chain_valid"]) == (False, True)


# --- validation -----------------------------------------------------------------------------------


def test_missing_ca_file_is_a_validation_error_naming_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, _check("tls-target", 443, ca_file=str(tmp_path / "nope.pem")))
    with pytest.raises(ConfigError) as raised:
        load_config([path])

    [problem] = raised.value.problems
    assert (problem.check, problem.field) == ("tls-target", "ca_file")
    assert "does not exist" in problem.message


def test_ca_file_without_certificates_is_a_validation_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    with pytest.raises(ConfigError) as raised:
        load_config([_write(tmp_path, _check("tls-target", 443, ca_file=str(bogus)))])

    [problem] = raised.value.problems
    assert problem.field == "ca_file" and "no usable PEM certificates" in problem.message


@pytest.mark.parametrize(
    ("host", "words"),
    [("https://example.com", "not a URL"), ("example.com:443", "port"), ("", "must not be empty")],
)
def test_host_must_be_a_bare_name_or_address(tmp_path: Path, host: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config([_write(tmp_path, {**_check("tls-target", 443), "host": host})])

    [problem] = raised.value.problems
    assert problem.field == "host" and words in problem.message


def test_ipv6_literal_host_is_accepted_with_or_without_brackets(tmp_path: Path) -> None:
    config = load_config([_write(tmp_path, {**_check("a", 443), "host": "[::1]"}, {**_check("b", 443), "host": "::1"})])

    assert [spec.model.host for spec in config.checks] == ["::1", "::1"]  # type: ignore[attr-defined]


def test_unknown_metric_in_expect_lists_the_tls_metrics(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config([_write(tmp_path, _check("tls-target", 443, expect={"days_left": ">= 14"}))])

    [problem] = raised.value.problems
    assert problem.field == "expect.days_left" and "days_remaining" in problem.message


# --- the CLI --------------------------------------------------------------------------------------


async def test_cli_check_json_reports_each_bad_certificate_as_down(tmp_path: Path, prober_cli: ProberCli) -> None:
    expired, self_signed, wrong_host, five_days = (
        make_cert(kind, tmp_path) for kind in ("expired", "self_signed", "wrong_host", "five_days")
    )
    async with (
        tls_server(server_ssl_context(expired)) as expired_port,
        tls_server(server_ssl_context(self_signed)) as self_signed_port,
        tls_server(server_ssl_context(wrong_host)) as wrong_host_port,
        tls_server(server_ssl_context(five_days)) as five_days_port,
    ):
        path = _write(
            tmp_path,
            _check("expired", expired_port, ca_file=str(expired.ca)),
            _check("self-signed", self_signed_port),
            _check("wrong-host", wrong_host_port, ca_file=str(wrong_host.ca)),
            _check("five-days", five_days_port, ca_file=str(five_days.ca), expect={"days_remaining": ">= 14"}),
        )
        process = await asyncio.create_subprocess_exec(
            *prober_cli.argv("check", "--json", path),
            cwd=tmp_path,
            env=prober_cli.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)

    assert process.returncode == 1, stderr.decode()
    results = {item["check"]: item for item in map(json.loads, stdout.decode().splitlines())}
    assert set(results) == {"expired", "self-signed", "wrong-host", "five-days"}
    assert all(item["status"] == "down" and item["type"] == "tls" for item in results.values())
    assert all(set(item["metrics"]) == ALL_METRICS for item in results.values())
    assert results["expired"]["metrics"]["days_remaining"] < 0
    assert results["expired"]["details"]["verify_error"] == "certificate has expired"
    assert results["self-signed"]["metrics"]["self_signed"] is True
    assert results["self-signed"]["error"] == "chain_valid was false, expected true"
    assert results["wrong-host"]["metrics"]["hostname_match"] is False
    assert results["five-days"]["error"] == "days_remaining was 5, expected >= 14"


# --- certificate helpers (pure) -------------------------------------------------------------------


def _der(path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def test_certificate_facts_reads_expiry_names_and_issuer(tmp_path: Path) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    files = make_cert("good", tmp_path, now=now)
    facts = certificate_facts(_der(files.cert), now=now + timedelta(days=30, hours=12))

    assert facts.days_remaining == 59.5
    assert facts.not_after == "2030-04-01T00:00:00Z"
    assert facts.not_before == "2029-12-31T00:00:00Z"
    assert facts.sans == ["localhost", "prober.test", HOST]
    assert facts.self_signed is False
    assert facts.issuer.startswith("OU=Testing CA") and facts.issuer != facts.subject


def test_days_remaining_is_negative_after_expiry_and_rounded_to_two_decimals(tmp_path: Path) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    files = make_cert("good", tmp_path, now=now)
    later = now + timedelta(days=90, hours=6, minutes=1)

    assert leaf_days_remaining(_der(files.cert), now=later) == -0.25
    assert certificate_facts(_der(files.cert), now=later).days_remaining == -0.25


def test_self_signed_certificate_is_recognised(tmp_path: Path) -> None:
    facts = certificate_facts(_der(make_cert("self_signed", tmp_path).cert))

    assert facts.self_signed is True and facts.issuer == facts.subject == "CN=localhost"


def test_certificate_facts_rejects_bytes_that_are_not_a_certificate() -> None:
    with pytest.raises(ValueError, match="could not be parsed"):
        certificate_facts(b"\x30\x03\x02\x01\x00")


@pytest.mark.parametrize(
    ("sans", "cn", "hostname", "matches"),
    [
        (["example.com"], None, "example.com", True),
        (["Example.COM"], None, "example.com.", True),
        (["*.example.com"], None, "api.example.com", True),
        (["*.example.com"], None, "example.com", False),
        (["*.example.com"], None, "a.b.example.com", False),
        (["a.*.example.com"], None, "a.b.example.com", False),
        (["f*.example.com"], None, "foo.example.com", False),
        (["*.com"], None, "example.com", False),
        (["other.test"], None, "example.com", False),
        (["127.0.0.1"], None, "127.0.0.1", True),
        (["127.0.0.1"], None, "127.0.0.2", False),
        (["*.0.0.1"], None, "127.0.0.1", False),
        (["::1"], None, "0:0:0:0:0:0:0:1", True),
        (["::1"], None, "[::1]", True),
        (["example.com"], None, "127.0.0.1", False),
        ([], "example.com", "example.com", True),
        (["www.example.com"], "example.com", "example.com", False),
        ([], None, "example.com", False),
        (["xn--bcher-kva.example"], None, "bücher.example", True),
    ],
)
def test_hostname_matching_follows_rfc_6125(sans: list[str], cn: str | None, hostname: str, matches: bool) -> None:
    assert hostname_matches(sans, cn, hostname) is matches
