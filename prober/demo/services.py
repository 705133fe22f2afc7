"""The demo's targets that do not speak HTTP: a Redis-like line server and a small authoritative DNS server.

`start_line_server` answers the lines a Redis client sends: `PING` with `+PONG`, `QUIT` with `+OK` (and
closes), anything else with `-ERR unknown command`. `start_dns_server` answers queries for the demo's zone
`demo.test` (a name reserved for testing, RFC 6761) over UDP and TCP on one loopback port, built with
dnspython: A, AAAA, CNAME, MX, TXT, NS and SOA records, NXDOMAIN (with the SOA) for a name it does not
have, REFUSED for a name outside the zone, FORMERR for bytes that are not a query.

Everything listens on 127.0.0.1 and is stopped when the demo's exit stack closes. Never used outside the
demo and its tests; never judges anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from contextlib import AsyncExitStack
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["DEMO_ZONE", "answer_query", "start_dns_server", "start_line_server"]

DEMO_ZONE = "demo.test."
_TTL = 300
_RECORDS: dict[tuple[str, str], list[str]] = {
    ("demo.test.", "SOA"): ["ns1.demo.test. hostmaster.demo.test. 2024010101 3600 600 86400 300"],
    ("demo.test.", "NS"): ["ns1.demo.test."],
    ("demo.test.", "MX"): ["10 mail.demo.test."],
    ("demo.test.", "TXT"): ['"v=spf1 -all"'],
    ("ns1.demo.test.", "A"): ["127.0.0.1"],
    ("shop.demo.test.", "A"): ["127.0.0.1"],
    ("shop.demo.test.", "AAAA"): ["::1"],
    ("mail.demo.test.", "A"): ["127.0.0.1"],
    ("www.demo.test.", "CNAME"): ["shop.demo.test."],
}
"""The demo zone: (owner, type) -> records as zone-file text."""


def _rrset(owner: str, kind: str) -> dns.rrset.RRset | None:
    texts = _RECORDS.get((owner, kind))
    if not texts:
        return None
    return dns.rrset.from_text_list(owner, _TTL, dns.rdataclass.IN, kind, texts)


def answer_query(wire: bytes) -> bytes | None:
    """The answer to one query's bytes (None: not even a DNS header, nothing to answer)."""
    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        if len(wire) < 12:
            return None
        response = dns.message.Message(id=int.from_bytes(wire[:2], "big"))
        response.flags = dns.flags.QR
        response.set_rcode(dns.rcode.FORMERR)
        return response.to_wire()
    response = dns.message.make_response(query)
    if len(query.question) != 1:
        response.set_rcode(dns.rcode.FORMERR)
        return response.to_wire()
    question = query.question[0]
    name = question.name.to_text().lower()
    zone = dns.name.from_text(DEMO_ZONE)
    if not question.name.is_subdomain(zone):
        response.set_rcode(dns.rcode.REFUSED)
        return response.to_wire()
    response.flags |= dns.flags.AA
    kind = dns.rdatatype.to_text(question.rdtype)
    if not any(owner == name for owner, _ in _RECORDS):
        response.set_rcode(dns.rcode.NXDOMAIN)
        soa = _rrset(DEMO_ZONE, "SOA")
        if soa is not None:
            response.authority.append(soa)
        return response.to_wire()
    found = _rrset(name, kind)
    if found is None and kind != "CNAME" and (alias := _rrset(name, "CNAME")) is not None:
        response.answer.append(alias)
        found = _rrset(str(alias[0].target), kind)
    if found is not None:
        response.answer.append(found)
    return response.to_wire()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        reply = answer_query(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def _tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        for _ in range(100):  # a bounded number of queries per connection
            size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 10), "big")
            reply = answer_query(await asyncio.wait_for(reader.readexactly(size), 10))
            if reply is None:
                break
            writer.write(len(reply).to_bytes(2, "big") + reply)
            await writer.drain()
    except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def start_dns_server(stack: AsyncExitStack) -> int:
    """Serve the demo zone on 127.0.0.1 over UDP and TCP on the same port (chosen by the system); its port."""
    loop = asyncio.get_running_loop()
    for _ in range(20):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        port = int(udp.getsockname()[1])
        try:
            server = await asyncio.start_server(_tcp, "127.0.0.1", port)
        except OSError:
            udp.close()  # the TCP side of this port is taken: try another
            continue
        transport, _ = await loop.create_datagram_endpoint(_Udp, sock=udp)
        stack.callback(transport.close)
        stack.push_async_callback(server.wait_closed)
        stack.callback(server.close)
        return port
    raise OSError("no loopback port was free for both UDP and TCP for the demo's DNS server")


async def _line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        for _ in range(1000):
            line = await asyncio.wait_for(reader.readline(), 30)
            if not line:
                break
            command = line.strip().upper()
            if command == b"QUIT":
                writer.write(b"+OK\r\n")
                break
            writer.write(b"+PONG\r\n" if command == b"PING" else b"-ERR unknown command\r\n")
            await writer.drain()
    except (TimeoutError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def start_line_server(stack: AsyncExitStack) -> int:
    """A Redis-like `PING` / `+PONG` server on 127.0.0.1; its port."""
    server = await asyncio.start_server(_line, "127.0.0.1", 0)
    stack.push_async_callback(server.wait_closed)
    stack.callback(server.close)
    return int(server.sockets[0].getsockname()[1])
