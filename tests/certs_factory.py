"""Test helpers: certificates of every kind a prober meets, and loopback servers that present them.

Certificates come from a throwaway trustme CA (or, for a self-signed one, from `cryptography`
directly), written as PEM files under a test's tmp_path. Servers listen on 127.0.0.1 only, on a free
port, and are closed with every connection they accepted when their `async with` block ends. Nothing
here touches any other address or the system trust store.

    files = make_cert("expired", tmp_path)                      # CertFiles(cert, key, ca)
    async with tls_server(server_ssl_context(files)) as port:   # asyncio TLS server
        ...
    context = server_ssl_context(files)                         # also fits aiohttp's TCPSite(ssl_context=...)
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, NamedTuple

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from loopback import free_port

__all__ = [
    "HOST",
    "KINDS",
    "CertFiles",
    "CertKind",
    "closing_server",
    "garbage_server",
    "make_cert",
    "server_ssl_context",
    "silent_server",
    "tls_server",
    "unused_port",
]

HOST = "127.0.0.1"
CertKind = Literal["good", "expired", "five_days", "self_signed", "wrong_host"]
KINDS: tuple[CertKind, ...] = ("good", "expired", "five_days", "self_signed", "wrong_host")

GOOD_NAMES = ("localhost", "prober.test", HOST)
"""The names a `good`, `expired` or `five_days` certificate is issued for."""
OTHER_HOST = "other.test"
"""The only name a `wrong_host` certificate is issued for."""


class CertFiles(NamedTuple):
    """PEM paths: the server's certificate (leaf), its private key, and the CA that issued it."""

    cert: Path
    key: Path
    ca: Path


def _self_signed(names: tuple[str, ...], not_before: datetime, not_after: datetime) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt_names: list[x509.GeneralName] = []
    for item in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(item)))
        except ValueError:
            alt_names.append(x509.DNSName(item))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def make_cert(
    kind: CertKind,
    directory: Path,
    *,
    names: tuple[str, ...] = GOOD_NAMES,
    now: datetime | None = None,
) -> CertFiles:
    """Write a certificate of `kind` (plus key and issuing CA) as PEM files in `directory`.

    good         issued by a fresh test CA for `names`, valid 1 day ago .. 90 days ahead
    expired      as good, but expired 3 days ago (valid 30 days ago .. 3 days ago)
    five_days    as good, but notAfter is 5 days (and 1 minute) from now
    self_signed  signed by its own key for `names`, 90 days ahead; `ca` is the certificate itself
    wrong_host   as good, but issued only for `other.test`
    """
    now = now or datetime.now(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path, ca_path = (directory / f"{kind}-{part}.pem" for part in ("cert", "key", "ca"))
    if kind == "self_signed":
        cert_pem, key_pem = _self_signed(names, now - timedelta(days=1), now + timedelta(days=90))
        cert_path.write_bytes(cert_pem)
        key_path.write_bytes(key_pem)
        ca_path.write_bytes(cert_pem)
        return CertFiles(cert_path, key_path, ca_path)
    windows = {
        "good": (now - timedelta(days=1), now + timedelta(days=90)),
        "expired": (now - timedelta(days=30), now - timedelta(days=3)),
        "five_days": (now - timedelta(days=1), now + timedelta(days=5, minutes=1)),
        "wrong_host": (now - timedelta(days=1), now + timedelta(days=90)),
    }
    not_before, not_after = windows[kind]
    identities = (OTHER_HOST,) if kind == "wrong_host" else names
    ca = trustme.CA()
    leaf = ca.issue_cert(*identities, not_before=not_before, not_after=not_after)
    leaf.cert_chain_pems[0].write_to_path(str(cert_path))
    leaf.private_key_pem.write_to_path(str(key_path))
    ca.cert_pem.write_to_path(str(ca_path))
    return CertFiles(cert_path, key_path, ca_path)


def server_ssl_context(files: CertFiles) -> ssl.SSLContext:
    """A server-side context presenting `files.cert`; fits asyncio.start_server and aiohttp's TCPSite."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(files.cert), str(files.key))
    return context


unused_port = free_port
"""A 127.0.0.1 port nothing listens on (bound, then released), for `connection refused` cases."""


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def _serve(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """Run `handler` for every connection on a free 127.0.0.1 port; close everything on exit."""
    writers: set[asyncio.StreamWriter] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            await handler(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writers.discard(writer)
            writer.close()

    server = await asyncio.start_server(tracked, HOST, 0, ssl=ssl_context)
    port = int(server.sockets[0].getsockname()[1])
    try:
        yield port
    finally:
        server.close()
        for writer in list(writers):
            writer.transport.abort()
        await server.wait_closed()


async def _until_client_closes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await reader.read(65536):
        pass


def tls_server(context: ssl.SSLContext) -> contextlib.AbstractAsyncContextManager[int]:
    """A TLS server that completes handshakes and then waits for the client to go away; yields its port."""
    return _serve(_until_client_closes, context)


def silent_server() -> contextlib.AbstractAsyncContextManager[int]:
    """A plain TCP server that accepts and never sends a byte (a TLS client waits forever)."""
    return _serve(_until_client_closes)


async def _answer_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()


def garbage_server() -> contextlib.AbstractAsyncContextManager[int]:
    """A plain TCP server that answers the ClientHello with an HTTP 400 and closes."""
    return _serve(_answer_garbage)


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    return None


def closing_server() -> contextlib.AbstractAsyncContextManager[int]:
    """A plain TCP server that accepts and closes at once, before any TLS is spoken."""
    return _serve(_hang_up)
