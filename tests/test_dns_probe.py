"""The `dns` check type against Debian's dnsmasq on a loopback port (every record type, NXDOMAIN, REFUSED, a
truncated answer retried over TCP), a small dnspython server for SERVFAIL, a UDP socket that never answers;
and the sentences for bad definitions."""

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

import dns.message
import dns.rcode
import pytest
import yaml
from loopback import free_port

from prober.config.loader import ConfigError, load_config
from prober.probes import PROBES
from prober.probes import dns as dns_probe
from prober.results import Result
from prober.scheduling.runner import Runner

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
ZONE = "prober.test"
BIG = [letter * 200 for letter in "abc"]
"""Three 200-byte TXT strings: 600+ bytes, more than a plain (no EDNS) UDP answer may carry."""


def dnsmasq_argv(port: int) -> list[str]:
    """dnsmasq as an authoritative server for prober.test on 127.0.0.1:port (TCP and UDP)."""
    return [
        DNSMASQ, "--no-daemon", f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
        "--no-hosts", "--pid-file=", "--log-facility=/dev/null",
        f"--auth-server=ns1.{ZONE},127.0.0.1", f"--auth-zone={ZONE}", f"--auth-soa=2026010101,hostmaster.{ZONE}",
        f"--host-record=h.{ZONE},192.0.2.10,2001:db8::10", f"--host-record=h2.{ZONE},192.0.2.11",
        f"--cname=www.{ZONE},h.{ZONE}", f"--txt-record=t.{ZONE},v=spf1 -all", f"--mx-host={ZONE},mail.{ZONE},10",
        f"--srv-host=_sip._udp.{ZONE},sip.{ZONE},5060,1,2",
        f"--dns-rr={ZONE},257,000569737375656c657473656e63727970742e6f7267",  # CAA 0 issue "letsencrypt.org"
        *(f"--txt-record=big.{ZONE},{text}" for text in BIG),
    ]  # fmt: skip


def _wait_tcp(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"dnsmasq does not listen on 127.0.0.1:{port}")


@pytest.fixture(scope="module")
def dnsmasq() -> Iterator[str]:
    """`127.0.0.1:port` of a dnsmasq started for this module."""
    assert shutil.which(DNSMASQ), "dnsmasq is not installed (apt-get install dnsmasq; scripts/test installs it)"
    port = free_port()
    process = subprocess.Popen(dnsmasq_argv(port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_tcp(port)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


class _Answering(asyncio.DatagramProtocol):
    """Answers every query with `rcode` and no records (a server that cannot resolve, or will not)."""

    def __init__(self, rcode: dns.rcode.Rcode) -> None:
        self.rcode = rcode
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # a _SelectorDatagramTransport, not a DatagramTransport subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        response = dns.message.make_response(dns.message.from_wire(data))
        response.set_rcode(self.rcode)
        self.transport.sendto(response.to_wire(), addr)


class _Silent(asyncio.DatagramProtocol):
    """Receives queries and never answers."""


@contextlib.asynccontextmanager
async def udp_server(protocol: asyncio.DatagramProtocol) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: protocol, local_addr=("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
    finally:
        transport.close()


def _write(tmp_path: Path, *checks: dict[str, Any]) -> Path:
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "checks": list(checks)}), encoding="utf-8")
    return path


def _check(**keys: Any) -> dict[str, Any]:
    return {"name": "lookup", "type": "dns", "timeout": "2s", **keys}


async def _run(tmp_path: Path, **keys: Any) -> Result:
    config = load_config([_write(tmp_path, _check(**keys))])
    return await Runner().run(config.checks[0])


# --- each record type -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "record_type", "answers"),
    [
        (f"h.{ZONE}", "A", ["192.0.2.10"]),
        (f"h.{ZONE}", "AAAA", ["2001:db8::10"]),
        (f"www.{ZONE}", "CNAME", [f"h.{ZONE}"]),
        (f"www.{ZONE}", "A", ["192.0.2.10"]),  # through the CNAME
        (ZONE, "MX", [f"10 mail.{ZONE}"]),
        (f"t.{ZONE}", "TXT", ["v=spf1 -all"]),
        (ZONE, "NS", [f"ns1.{ZONE}"]),
        (ZONE, "SOA", [f"ns1.{ZONE} hostmaster.{ZONE} 2026010101 1200 180 1209600 600"]),
        (f"_sip._udp.{ZONE}", "SRV", [f"1 2 5060 sip.{ZONE}"]),
        (ZONE, "CAA", ["0 issue letsencrypt.org"]),
    ],
)
async def test_each_record_type_reports_its_answers_as_text(
    tmp_path: Path, dnsmasq: str, query: str, record_type: str, answers: list[str]
) -> None:
    result = await _run(
        tmp_path, query=query, record_type=record_type, server=dnsmasq, expect={"answers": {"contains": answers[0]}}
    )

    assert result.status == "up", result.error
    assert result.metrics["rcode"] == "NOERROR"
    assert result.metrics["answers"] == answers
    assert result.metrics["answer_count"] == len(answers)
    assert result.metrics["authoritative"] is True
    assert result.metrics["truncated"] is False and result.metrics["transport"] == "udp"
    assert result.metrics["ttl_min"] == 600
    assert 0 < result.metrics["latency"] < 1
    if record_type == "SOA":
        assert result.metrics["serial"] == 2026010101


async def test_an_answer_without_the_expected_address_is_down_naming_what_came(tmp_path: Path, dnsmasq: str) -> None:
    result = await _run(tmp_path, query=f"h2.{ZONE}", server=dnsmasq, expect={"answers": {"contains": "192.0.2.10"}})

    assert result.status == "down"
    assert result.error == "answers was ['192.0.2.11'], expected contains 192.0.2.10"


async def test_nxdomain_is_measured_and_down_by_the_default_expectation(tmp_path: Path, dnsmasq: str) -> None:
    result = await _run(tmp_path, query=f"nope.{ZONE}", server=dnsmasq)

    assert result.status == "down"
    assert result.error == "rcode was 'NXDOMAIN', expected NOERROR"
    assert result.metrics["answers"] == [] and result.metrics["answer_count"] == 0
    assert result.metrics["authority_count"] == 1  # the zone's SOA, for negative caching


async def test_nxdomain_can_be_what_is_expected(tmp_path: Path, dnsmasq: str) -> None:
    result = await _run(tmp_path, query=f"nope.{ZONE}", server=dnsmasq, expect={"rcode": "NXDOMAIN"})

    assert result.status == "up", result.error


async def test_a_name_outside_its_zones_is_refused(tmp_path: Path, dnsmasq: str) -> None:
    result = await _run(tmp_path, query="example.invalid", server=dnsmasq)

    assert result.status == "down"
    assert result.error == "rcode was 'REFUSED', expected NOERROR"
    assert result.metrics["authoritative"] is False


async def test_servfail_is_measured(tmp_path: Path) -> None:
    async with udp_server(_Answering(dns.rcode.SERVFAIL)) as server:
        result = await _run(tmp_path, query="h.example.invalid", server=server)

    assert result.status == "down"
    assert result.error == "rcode was 'SERVFAIL', expected NOERROR"


async def test_a_truncated_udp_answer_is_retried_over_tcp(tmp_path: Path, dnsmasq: str) -> None:
    result = await _run(tmp_path, query=f"big.{ZONE}", record_type="TXT", server=dnsmasq)

    assert result.status == "up", result.error
    assert result.metrics["truncated"] is True
    assert result.metrics["transport"] == "tcp"
    assert sorted(result.metrics["answers"]) == BIG


async def test_tcp_only_asks_over_tcp_and_is_not_truncated(tmp_path: Path, dnsmasq: str) -> None:
    result = await _run(tmp_path, query=f"big.{ZONE}", record_type="TXT", server=dnsmasq, transport="tcp")

    assert result.status == "up", result.error
    assert result.metrics["transport"] == "tcp" and result.metrics["truncated"] is False
    assert result.metrics["answer_count"] == 3


async def test_a_silent_server_is_down_before_the_runner_timeout_with_a_sentence(tmp_path: Path) -> None:
    async with udp_server(_Silent()) as server:
        started = time.perf_counter()
        result = await _run(tmp_path, query="h.example.invalid", server=server, timeout="1s")
        waited = time.perf_counter() - started

    assert result.status == "down"
    assert result.error is not None and result.error.startswith(f"no answer from {server} within ")
    assert waited < 1.2


async def test_a_closed_tcp_port_is_refused(tmp_path: Path) -> None:
    port = free_port()
    result = await _run(tmp_path, query="h.example.invalid", server=f"127.0.0.1:{port}", transport="tcp")

    assert result.status == "down"
    assert result.error == f"connection refused by 127.0.0.1:{port}"


async def test_without_a_server_the_system_resolver_is_asked(
    tmp_path: Path, dnsmasq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, _, port = dnsmasq.partition(":")
    monkeypatch.setattr(dns_probe, "_system_nameserver", lambda: (host, int(port)))  # /etc/resolv.conf is not ours
    result = await _run(tmp_path, query=f"h.{ZONE}")

    assert result.status == "up", result.error
    assert result.metrics["answers"] == ["192.0.2.10"]


def test_the_target_names_query_type_and_server(tmp_path: Path) -> None:
    config = load_config([_write(tmp_path, _check(query="example.com", record_type="MX", server="[::1]:5353"))])
    assert PROBES["dns"].target(config.checks[0].model) == "example.com MX @[::1]:5353"


def test_server_forms_are_read_with_their_port() -> None:
    assert dns_probe.parse_server("192.0.2.53") == ("192.0.2.53", 53)
    assert dns_probe.parse_server("192.0.2.53:5353") == ("192.0.2.53", 5353)
    assert dns_probe.parse_server("[2001:db8::53]:5353") == ("2001:db8::53", 5353)
    assert dns_probe.parse_server("2001:db8::53") == ("2001:db8::53", 53)
    assert dns_probe.parse_server("ns1.example.com") == ("ns1.example.com", 53)


# --- bad definitions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "field", "words"),
    [
        ({"query": "example.com", "record_type": "PTR"}, "record_type", "'A', 'AAAA', 'CNAME'"),
        ({"query": "exa mple.com"}, "query", "query is a DNS name like www.example.com; got 'exa mple.com'"),
        ({"query": "a" * 64 + ".com"}, "query", "is not a valid DNS name"),
        ({"query": "example.com", "server": "dns://192.0.2.53"}, "server", "not a URL"),
        ({"query": "example.com", "server": "192.0.2.53:99999"}, "server", "from 1 to 65535; got '99999'"),
        ({"query": "example.com", "server": "2001:db8::zz"}, "server", "is not an address"),
        ({"query": "example.com", "transport": "doh"}, "transport", "'udp' or 'tcp'"),
        (
            {"query": "example.com", "expect": {"answers": {"has": "x"}}},
            "expect.answers",
            "got a mapping with keys has",
        ),
    ],
)
def test_bad_definitions_name_file_check_and_field(
    tmp_path: Path, keys: dict[str, Any], field: str, words: str
) -> None:
    path = _write(tmp_path, _check(**keys))
    with pytest.raises(ConfigError) as raised:
        load_config([path])

    [problem] = raised.value.problems
    assert (problem.check, problem.field) == ("lookup", field)
    assert words in problem.message, problem.message
    assert str(path) in str(problem)
