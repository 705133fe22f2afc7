"""The `tcp` check type against real servers on loopback: Debian's redis-server (PING -> +PONG), an aiosmtpd
SMTP server offering STARTTLS with a trustme certificate, a port that accepts and never answers, a refused
port; and the sentences for bad definitions."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import SMTP
from certs_factory import make_cert, server_ssl_context, silent_server, tls_server
from loopback import free_port

from prober.config.loader import ConfigError, load_config
from prober.results import Result
from prober.scheduling.runner import Runner

REDIS = shutil.which("redis-server")


def _write(tmp_path: Path, *checks: dict[str, Any]) -> Path:
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "checks": list(checks)}), encoding="utf-8")
    return path


def _check(port: int, **keys: Any) -> dict[str, Any]:
    return {"name": "port", "type": "tcp", "host": "127.0.0.1", "port": port, "timeout": "2s", **keys}


async def _run(tmp_path: Path, port: int, **keys: Any) -> Result:
    config = load_config([_write(tmp_path, _check(port, **keys))])
    return await Runner().run(config.checks[0])


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    assert REDIS, "redis-server is not installed (apt-get install redis-server; scripts/test installs it)"
    port = free_port()
    process = subprocess.Popen(
        [
            REDIS,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--requirepass",
            "Sesame-Pw-51",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.asynccontextmanager
async def smtp_server(tls_context: Any | None) -> AsyncIterator[int]:
    """aiosmtpd on 127.0.0.1 in this loop; STARTTLS offered when a context is given."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Sink(), hostname="mail.prober.test", tls_context=tls_context, require_starttls=False),
        "127.0.0.1",
        0,
    )
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


# --- redis ----------------------------------------------------------------------------------------


async def test_redis_answers_ping_with_pong_after_auth(tmp_path: Path, redis_port: int) -> None:
    steps = [{"send": "AUTH Sesame-Pw-51\r\n"}, {"expect": "+OK"}, {"send": "PING\r\n"}, {"expect": "+PONG"}]
    result = await _run(tmp_path, redis_port, steps=steps)

    assert result.status == "up", result.error
    assert result.metrics["steps_passed"] is True
    assert result.metrics["banner"] == "+OK"
    assert len(result.metrics["responses"]) == 2
    assert 0 < result.metrics["connect"] < 1 and 0 < result.metrics["response"] < 1
    assert [step["received"] for step in result.details["steps"]] == ["+OK", "+PONG"]
    assert "Sesame-Pw-51" not in repr(result)


async def test_redis_reply_that_does_not_match_names_the_step_and_what_arrived(tmp_path: Path, redis_port: int) -> None:
    result = await _run(tmp_path, redis_port, steps=[{"send": "PING\r\n"}, {"expect_regex": "^\\+PONG"}])

    assert result.status == "down"
    assert result.metrics["steps_passed"] is False
    assert result.metrics["banner"].startswith("-NOAUTH Authentication required")
    assert result.error is not None
    assert result.error.startswith("steps_passed was false, expected true (step 2: expected /^\\+PONG/ from ")
    assert "received '-NOAUTH Authentication required" in result.error
    assert "response" not in result.metrics


async def test_redis_over_ipv6_loopback_is_refused_when_it_listens_on_ipv4_only(
    tmp_path: Path, redis_port: int
) -> None:
    result = await _run(tmp_path, redis_port, host="::1")

    assert result.status == "down"
    assert result.error == f"connection refused by [::1]:{redis_port}"


# --- SMTP with STARTTLS ---------------------------------------------------------------------------


async def test_smtp_starttls_upgrades_and_reports_the_certificate(tmp_path: Path) -> None:
    files = make_cert("good", tmp_path)
    async with smtp_server(server_ssl_context(files)) as port:
        result = await _run(
            tmp_path,
            port,
            starttls="smtp",
            ca_file=str(files.ca),
            steps=[
                {"send": "EHLO prober.test\r\n"},
                {"expect_regex": "(?m)^250 "},
                {"send": "QUIT\r\n"},
                {"expect": "221"},
            ],
        )

    assert result.status == "up", result.error
    assert result.metrics["banner"].startswith("220 mail.prober.test")
    assert 0 < result.metrics["tls"] < 1
    assert result.metrics["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert 89.9 < result.metrics["cert_days_remaining"] <= 90
    assert result.metrics["steps_passed"] is True


async def test_smtp_starttls_with_an_untrusted_certificate_is_down_with_the_reason(tmp_path: Path) -> None:
    files = make_cert("good", tmp_path)
    async with smtp_server(server_ssl_context(files)) as port:
        result = await _run(tmp_path, port, starttls="smtp")  # system trust store: the test CA is unknown

    assert result.status == "down"
    assert result.error is not None
    assert result.error.startswith("the TLS certificate of 127.0.0.1 is not valid: ")
    assert result.metrics["banner"].startswith("220 ")
    assert "connect" in result.metrics


async def test_smtp_starttls_verification_off_reads_an_expired_certificate(tmp_path: Path) -> None:
    files = make_cert("expired", tmp_path)
    async with smtp_server(server_ssl_context(files)) as port:
        result = await _run(tmp_path, port, starttls="smtp", verify_tls=False, expect={"cert_days_remaining": "> 0"})

    assert result.status == "down"
    assert result.error == "cert_days_remaining was -3, expected > 0"


async def test_smtp_server_without_starttls_says_it_does_not_offer_it(tmp_path: Path) -> None:
    async with smtp_server(None) as port:
        result = await _run(tmp_path, port, starttls="smtp")

    assert result.status == "down"
    assert result.error is not None
    assert result.error.startswith(f"127.0.0.1:{port} answered STARTTLS with '")
    assert result.error.endswith("not 220: it does not offer STARTTLS")


async def test_implicit_tls_reports_handshake_time_and_certificate_days(tmp_path: Path) -> None:
    files = make_cert("five_days", tmp_path)
    async with tls_server(server_ssl_context(files)) as port:
        result = await _run(tmp_path, port, tls=True, ca_file=str(files.ca))

    assert result.status == "up", result.error
    assert 4.9 < result.metrics["cert_days_remaining"] < 5.1
    assert set(result.metrics) == {"connect", "tls", "tls_version", "cert_days_remaining", "resolved_ip"}


# --- silent, refused ------------------------------------------------------------------------------


async def test_a_port_that_accepts_and_never_answers_fails_the_expect_step_before_the_timeout(
    tmp_path: Path,
) -> None:
    async with silent_server() as port:
        started = time.perf_counter()
        result = await _run(tmp_path, port, timeout="1s", steps=[{"send": "PING\r\n"}, {"expect": "+PONG"}])
        waited = time.perf_counter() - started

    assert result.status == "down"
    assert result.error is not None
    assert result.error.startswith(
        f"steps_passed was false, expected true (step 2: expected '+PONG' from 127.0.0.1:{port} within 0."
    )
    assert result.error.endswith("s; received nothing)")
    assert "connect" in result.metrics and "banner" not in result.metrics
    assert waited < 1.2


async def test_a_port_that_accepts_is_up_when_no_step_expects_anything(tmp_path: Path) -> None:
    async with silent_server() as port:
        result = await _run(tmp_path, port)

    assert result.status == "up", result.error
    assert result.metrics["resolved_ip"] == "127.0.0.1"
    assert "steps_passed" not in result.metrics


async def test_a_refused_port_is_down_with_the_shared_network_sentence(tmp_path: Path) -> None:
    port = free_port()
    result = await _run(tmp_path, port, steps=[{"expect": "x"}])

    assert result.status == "down"
    assert result.error == f"connection refused by 127.0.0.1:{port}"


async def test_tls_against_a_plaintext_port_says_it_does_not_speak_tls(tmp_path: Path, redis_port: int) -> None:
    result = await _run(tmp_path, redis_port, tls=True)

    assert result.status == "down"
    assert result.error is not None
    assert f"127.0.0.1:{redis_port}" in result.error
    assert "TLS" in result.error


# --- bad definitions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "field", "words"),
    [
        ({"tls": True, "starttls": "smtp"}, "starttls", "either tls: true (TLS from the first byte) or starttls: smtp"),
        ({"starttls": "xmpp"}, "starttls", "'smtp', 'imap', 'pop3', 'ftp' or 'postgres'"),
        (
            {"steps": [{"send": "a", "expect": "b"}]},
            "steps[0]",
            "exactly one of send, expect, expect_regex; got send, expect",
        ),
        ({"steps": [{}]}, "steps[0]", "got none"),
        ({"steps": [{"expect_regex": "(a)\\1"}]}, "steps[0]", "back-references"),
        ({"steps": [{"expect": ""}]}, "steps[0]", "expect must not be empty"),
        ({"host": "127.0.0.1:6379"}, "host", "write it in `port`"),
        ({"port": 0}, "port", "greater than or equal to 1"),
        ({"ip_version": 5}, "ip_version", "4 or 6"),
    ],
)
def test_bad_definitions_name_file_check_and_field(
    tmp_path: Path, keys: dict[str, Any], field: str, words: str
) -> None:
    path = _write(tmp_path, {**_check(6379), **keys})
    with pytest.raises(ConfigError) as raised:
        load_config([path])

    [problem] = raised.value.problems
    assert (problem.check, problem.field) == ("port", field)
    assert words in problem.message, problem.message
    assert str(path) in str(problem)


def test_a_missing_port_is_named(tmp_path: Path) -> None:
    check = _check(1)
    del check["port"]
    with pytest.raises(ConfigError) as raised:
        load_config([_write(tmp_path, check)])

    [problem] = raised.value.problems
    assert problem.field == "port" and "required" in problem.message.lower()
