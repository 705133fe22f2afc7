"""The `dns` check type: one query (A, AAAA, CNAME, MX, TXT, NS, SOA, SRV, CAA) at a given server or the
system resolver, with dnspython.

Over UDP, retried over TCP when the answer comes back truncated (the TC bit), or over TCP only when the
check says so. It reports the response code, the answers of the asked type as text (`192.0.2.10`,
`10 mail.example.com`, `v=spf1 -all`), their count and smallest TTL, the AA and TC flags and the time
the exchange took. NXDOMAIN, SERVFAIL or REFUSED are answers, not failures: they are measured and the
default expect (`rcode: NOERROR`) judges them. ProbeError only when no answer came at all.

It never judges and never caches: every run sends its own query.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar, Literal

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.resolver
from pydantic import Field, field_validator

from prober.config.conditions import MetricSpec
from prober.config.models import CheckBase
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.network import network_sentence, where
from prober.probes.registry import Export, SecretKind, register, standard_exports

__all__ = ["DnsCheck", "DnsProbe", "parse_server", "record_text"]

RecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "SRV", "CAA"]
_MARGIN = 0.25
"""Seconds kept before the runner's deadline so a silent server gets a sentence naming it."""


def parse_server(text: str) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 address -> (host, port); ValueError with a sentence."""
    value = text.strip()
    if not value:
        raise ValueError("server must not be empty; give an address like 192.0.2.53 or 192.0.2.53:5353")
    if "/" in value:
        raise ValueError(f"server is an address like 192.0.2.53:53, not a URL; got {text!r}")
    host, port_text = value, ""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    if port_text and (not port_text.isdigit() or not 1 <= int(port_text) <= 65535):
        raise ValueError(f"server port must be a number from 1 to 65535; got {port_text!r} in {text!r}")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(
                f"server {text!r} is not an address; write IPv6 with a port as [2001:db8::53]:53"
            ) from None
    return host, int(port_text or 53)


class DnsCheck(CheckBase):
    """`type: dns`."""

    type: Literal["dns"]
    query: str = Field(description="the name to look up, like www.example.com")
    record_type: RecordType = Field("A", description="A, AAAA, CNAME, MX, TXT, NS, SOA, SRV or CAA")
    server: str | None = Field(
        None, description="the DNS server, host or host:port ([v6]:port); default the system resolver"
    )
    transport: Literal["udp", "tcp"] = Field(
        "udp", description="udp: UDP, retried over TCP when the answer is truncated; tcp: TCP only"
    )
    recursion: bool = Field(True, description="set the RD flag (ask the server to recurse)")

    @field_validator("query")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        value = value.strip()
        if not value or "/" in value or " " in value:
            raise ValueError(f"query is a DNS name like www.example.com; got {value!r}")
        try:
            dns.name.from_text(value)
        except dns.exception.DNSException as exc:
            raise ValueError(f"query {value!r} is not a valid DNS name: {exc}") from None
        return value

    @field_validator("server")
    @classmethod
    def _valid_server(cls, value: str | None) -> str | None:
        if value is not None:
            parse_server(value)
        return value


def _name(value: Any) -> str:
    return str(value.to_text(omit_final_dot=True))


def record_text(rdata: dns.rdata.Rdata) -> str:
    """One answer as a user writes it in a condition: names without the final dot, TXT unquoted."""
    kind = rdata.rdtype
    if kind in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return str(rdata.address)  # type: ignore[attr-defined]
    if kind in (dns.rdatatype.CNAME, dns.rdatatype.NS):
        return _name(rdata.target)  # type: ignore[attr-defined]
    if kind == dns.rdatatype.MX:
        return f"{rdata.preference} {_name(rdata.exchange)}"  # type: ignore[attr-defined]
    if kind == dns.rdatatype.TXT:
        return "".join(part.decode("utf-8", "replace") for part in rdata.strings)  # type: ignore[attr-defined]
    if kind == dns.rdatatype.SRV:
        r: Any = rdata
        return f"{r.priority} {r.weight} {r.port} {_name(r.target)}"
    if kind == dns.rdatatype.SOA:
        r = rdata
        return f"{_name(r.mname)} {_name(r.rname)} {r.serial} {r.refresh} {r.retry} {r.expire} {r.minimum}"
    if kind == dns.rdatatype.CAA:
        r = rdata
        return f"{r.flags} {r.tag.decode('ascii', 'replace')} {r.value.decode('utf-8', 'replace')}"
    return str(rdata.to_text())


@cache
def _system_nameserver() -> tuple[str, int]:
    """The first nameserver of /etc/resolv.conf (read once per process)."""
    try:
        resolver = dns.resolver.Resolver(configure=True)
    except dns.exception.DNSException as exc:
        raise ProbeError(f"no server given and the system resolver configuration cannot be read: {exc}") from None
    if not resolver.nameservers:
        raise ProbeError("no server given and /etc/resolv.conf names no nameserver")
    return str(resolver.nameservers[0]), int(resolver.port)


async def _address(host: str, port: int) -> str:
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise ProbeError(network_sentence(exc, host, port)) from None
    return str(infos[0][4][0])


@register("dns")
class DnsProbe:
    """Send one query, report the answer's code, records, TTLs, flags and time."""

    type_name: ClassVar[str]
    Config = DnsCheck
    metrics: ClassVar[Mapping[str, MetricSpec]] = {
        spec.name: spec
        for spec in (
            MetricSpec("rcode", "the response code: NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ..."),
            MetricSpec("answers", "the answers of the asked type as text: 192.0.2.10, 10 mail.example.com"),
            MetricSpec("answer_count", "how many answers of the asked type came back"),
            MetricSpec("authority_count", "records in the authority section"),
            MetricSpec("additional_count", "records in the additional section"),
            MetricSpec(
                "latency", "time from sending the query to the answer (both tries when retried over TCP)", unit="s"
            ),
            MetricSpec("ttl_min", "the smallest TTL in the answer section", unit="s"),
            MetricSpec("authoritative", "the server set the AA flag (it is authoritative for the name)"),
            MetricSpec("truncated", "the UDP answer had the TC bit (it was retried over TCP)"),
            MetricSpec("transport", "udp or tcp: how the answer that counts arrived"),
            MetricSpec("serial", "the zone's serial, for a SOA query"),
        )
    }
    exports: ClassVar[Mapping[str, tuple[Export, ...]]] = standard_exports(
        "dns",
        metrics,
        text=("rcode", "answers", "transport"),
        rename={
            "answer_count": "probe_dns_answer_rrs",
            "authority_count": "probe_dns_authority_rrs",
            "additional_count": "probe_dns_additional_rrs",
            "latency": "probe_dns_lookup_time_seconds",
        },
        extra={"rcode": (Export("probe_dns_rcode_info", kind="info", info_label="rcode"),)},
    )
    headline: ClassVar[tuple[str, ...]] = ("rcode", "latency", "answer_count")
    secrets: ClassVar[Mapping[str, SecretKind]] = {}
    """A dns check has no secrets: a name, a type and a server address."""

    def target(self, check: DnsCheck) -> str:
        at = f" @{check.server}" if check.server else ""
        return f"{check.query} {check.record_type}{at}"

    def default_expect(self, check: DnsCheck) -> Mapping[str, Any]:
        return {"rcode": "NOERROR"}

    async def run(self, check: DnsCheck, ctx: ProbeContext) -> Observation:
        host, port = parse_server(check.server) if check.server else _system_nameserver()
        address = await _address(host, port)
        query = dns.message.make_query(check.query, check.record_type)
        if not check.recursion:
            query.flags &= ~dns.flags.RD
        budget = max(0.05, ctx.remaining() - min(_MARGIN, ctx.timeout * 0.1))
        started = time.perf_counter()
        try:
            if check.transport == "tcp":
                response = await dns.asyncquery.tcp(query, address, timeout=budget, port=port)
                used_tcp = True
            else:
                response, used_tcp = await dns.asyncquery.udp_with_fallback(query, address, timeout=budget, port=port)
        except dns.exception.Timeout:
            raise ProbeError(network_sentence(TimeoutError(), host, port, within=budget)) from None
        except OSError as exc:
            raise ProbeError(network_sentence(exc, host, port)) from None
        except dns.exception.DNSException as exc:
            raise ProbeError(f"the answer from {where(host, port)} is not valid DNS: {exc}") from None
        latency = time.perf_counter() - started
        return Observation(metrics=_metrics(check, response, latency, used_tcp))


def _metrics(check: DnsCheck, response: dns.message.Message, latency: float, used_tcp: bool) -> dict[str, Any]:
    wanted = dns.rdatatype.from_text(check.record_type)
    answers = [record_text(rdata) for rrset in response.answer if rrset.rdtype == wanted for rdata in rrset]
    ttls = [rrset.ttl for rrset in response.answer]
    metrics: dict[str, Any] = {
        "rcode": dns.rcode.to_text(response.rcode()),
        "answers": answers,
        "answer_count": len(answers),
        "authority_count": sum(len(rrset) for rrset in response.authority),
        "additional_count": sum(len(rrset) for rrset in response.additional),
        "latency": round(latency, 6),
        "authoritative": bool(response.flags & dns.flags.AA),
        "truncated": used_tcp and check.transport == "udp",
        "transport": "tcp" if used_tcp else "udp",
    }
    if ttls:
        metrics["ttl_min"] = min(ttls)
    if wanted == dns.rdatatype.SOA:
        serials = [rdata.serial for rrset in response.answer if rrset.rdtype == wanted for rdata in rrset]
        if serials:
            metrics["serial"] = serials[0]
    return metrics
