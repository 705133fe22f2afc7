"""One sentence per network failure, the same for every probe: a table of real exceptions."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import aiohttp
import pytest

from prober.probes.network import network_sentence, where


def _cert_error() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "certificate has expired"
    return error


def _connector(os_error: OSError) -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 8443, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, os_error)


CASES = [
    ("refused", ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
     "connection refused by 127.0.0.1:8443"),
    ("refused via aiohttp", _connector(ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")),
     "connection refused by 127.0.0.1:8443"),
    ("reset", ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
     "127.0.0.1:8443 reset the connection"),
    ("dns", socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
     "cannot resolve host 127.0.0.1: Name or service not known"),
    ("timeout", TimeoutError(), "no answer from 127.0.0.1:8443 within 5s"),
    ("asyncio timeout", TimeoutError(), "no answer from 127.0.0.1:8443 within 5s"),
    ("certificate", _cert_error(), "the TLS certificate of 127.0.0.1 is not valid: certificate has expired"),
    ("tls", ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
     "the TLS handshake with 127.0.0.1:8443 failed: "),
    ("unreachable", OSError(errno.EHOSTUNREACH, "No route to host"), "127.0.0.1:8443 is unreachable: No route to host"),
    ("network unreachable", OSError(errno.ENETUNREACH, "Network is unreachable"),
     "127.0.0.1:8443 is unreachable: Network is unreachable"),
    ("other", OSError(errno.EMFILE, "Too many open files"), "cannot connect to 127.0.0.1:8443: Too many open files"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "exc", "expected"), CASES, ids=[case[0] for case in CASES])
def test_each_failure_reads_one_way(label: str, exc: BaseException, expected: str) -> None:
    assert network_sentence(exc, "127.0.0.1", 8443, within=5.0).startswith(expected)


def test_an_ipv6_address_is_bracketed() -> None:
    assert where("::1", 443) == "[::1]:443"
    assert network_sentence(ConnectionRefusedError(), "::1", 443) == "connection refused by [::1]:443"


async def test_real_failures_on_loopback_read_the_same(free_port: int) -> None:
    port = free_port
    try:
        await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        assert network_sentence(exc, "127.0.0.1", port) == f"connection refused by 127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        try:
            await session.get(f"http://127.0.0.1:{port}/")
        except aiohttp.ClientError as exc:
            assert network_sentence(exc, "127.0.0.1", port) == f"connection refused by 127.0.0.1:{port}"
