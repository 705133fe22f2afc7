"""One sentence for a network failure, whichever probe and library met it.

Every check type talks to the network through a different library (aiohttp, asyncio streams, websockets,
Chromium), and each phrased its errors its own way: an unresolvable host read four ways. A result's error is
read by a tired on-call engineer and matched by alert rules, so all probes name the same failure the same way,
with the host and port:

    cannot resolve host api.example.com: Name or service not known
    connection refused by 127.0.0.1:8443
    127.0.0.1:8443 reset the connection
    no answer from 127.0.0.1:8443 within 5s
    the TLS certificate of api.example.com is not valid: certificate has expired
    the TLS handshake with 127.0.0.1:8443 failed: wrong version number
    10.9.9.9:443 is unreachable: No route to host

Pure: no I/O, no imports of the libraries whose exceptions it reads (it duck-types them).
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Mapping

from prober.config.durations import format_duration

__all__ = ["network_sentence", "request_url", "where"]

_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}
_DNS_ERRORS = {socket.EAI_NONAME, socket.EAI_AGAIN, socket.EAI_FAIL, getattr(socket, "EAI_NODATA", -5)}


def where(host: str, port: int | None) -> str:
    """`host:port`, with an IPv6 address in brackets."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return shown if port is None else f"{shown}:{port}"


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc or type(exc).__name__)


def _is_dns(exc: BaseException) -> bool:
    if isinstance(exc, socket.gaierror):
        return True
    if type(exc).__name__ == "ClientConnectorDNSError":
        return True
    return isinstance(exc, OSError) and exc.errno in _DNS_ERRORS and "resolve" in str(exc).lower()


def network_sentence(exc: BaseException, host: str, port: int | None, *, within: float | None = None) -> str:
    """What went wrong talking to host:port, as one sentence. `within`: the time budget, for timeouts."""
    target = where(host, port)
    # aiohttp wraps the OS error (ClientConnectorError.os_error) and the certificate error.
    certificate = getattr(exc, "certificate_error", None)
    if isinstance(certificate, BaseException):
        exc = certificate
    if _is_dns(exc):
        inner = getattr(exc, "os_error", exc)
        return f"cannot resolve host {host}: {_reason(inner)}"
    inner = getattr(exc, "os_error", None)
    if isinstance(inner, BaseException) and not isinstance(exc, ssl.SSLError):
        exc = inner
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the TLS certificate of {host} is not valid: {exc.verify_message or _reason(exc)}"
    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake with {target} failed: {_reason(exc)}"
    if isinstance(exc, TimeoutError):
        return f"no answer from {target} within {format_duration(within)}" if within else f"no answer from {target}"
    if isinstance(exc, ConnectionRefusedError) or (isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED):
        return f"connection refused by {target}"
    if isinstance(exc, ConnectionResetError) or (isinstance(exc, OSError) and exc.errno == errno.ECONNRESET):
        return f"{target} reset the connection"
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE:
        return f"{target} is unreachable: {_reason(exc)}"
    if isinstance(exc, OSError):
        return f"cannot connect to {target}: {_reason(exc)}"
    return f"cannot connect to {target}: {type(exc).__name__}: {exc}"


def request_url(url: str, headers: Mapping[str, str]) -> str:
    """The URL to send: an explicit Authorization header wins over user:password in the URL (as in curl).
    aiohttp refuses the pair outright, so a check carrying both could otherwise never run."""
    if "@" not in url or not any(name.lower() == "authorization" for name in headers):
        return url
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    return f"{scheme}{sep}{authority.rpartition('@')[2]}{slash}{path}"
