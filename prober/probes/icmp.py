"""The `icmp` check type: ping a host a few times (ICMP echo, with icmplib) and report round trips and loss.

Two kinds of socket can send an echo request. A raw socket needs root or CAP_NET_RAW; an unprivileged
ICMP datagram socket needs the process's group inside `net.ipv4.ping_group_range` (the Linux sysctl
that also governs ICMPv6 ones; Docker and Podman set it wide for containers). The probe tries the kind
that fits the process first (raw as root, datagram otherwise), falls back to the other, remembers
which worked, and when neither may be opened says so in one sentence with the uid, the gid and the
sysctl's range.

It measures and never judges: 100 % loss is a measurement (`loss: 1`, no round trips); the default
expect (`loss: "< 1"`) makes it down. ProbeError only when no echo could be sent at all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from prober.config.conditions import MetricSpec
from prober.config.durations import format_duration
from prober.config.models import CheckBase, Duration, PlainHost
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.network import network_sentence
from prober.probes.registry import Export, SecretKind, register, standard_exports

__all__ = ["IcmpCheck", "IcmpProbe", "no_socket_sentence"]

_PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
_working_mode: dict[int, bool] = {}
"""Address family -> privileged (raw) or not, once one kind of socket has worked in this process."""


class IcmpCheck(CheckBase):
    """`type: icmp`."""

    type: Literal["icmp"]
    host: PlainHost = Field(description="host name or IP address to ping")
    count: int = Field(3, ge=1, le=100, description="echo requests sent per run")
    interval: Duration = Field(0.2, description="time between two echo requests; at least 10ms")
    packet_timeout: Duration = Field(1.0, description="how long to wait for each reply before sending the next")
    ip_version: Literal[4, 6] | None = Field(None, description="resolve the host to IPv4 or IPv6 only; default either")
    payload_size: int = Field(56, ge=0, le=65000, description="bytes of payload in each echo request")

    @field_validator("interval")
    @classmethod
    def _sane_interval(cls, value: float) -> float:
        if value < 0.01:
            raise ValueError(f"interval must be at least 10ms, got {format_duration(value)}")
        return value

    @field_validator("packet_timeout")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("packet_timeout must be greater than 0")
        return value

    @model_validator(mode="after")
    def _fits_in_timeout(self) -> IcmpCheck:
        # icmplib sends the next request only once the previous one is answered or has timed out.
        needed = self.count * self.packet_timeout + (self.count - 1) * self.interval
        if needed > self.timeout:
            raise ValueError(
                f"{self.count} pings {format_duration(self.interval)} apart, each waiting up to "
                f"{format_duration(self.packet_timeout)} for its reply, take up to {format_duration(needed)}: more "
                f"than the check's timeout of {format_duration(self.timeout)}; lower count, interval or "
                "packet_timeout, or raise timeout"
            )
        return self


def no_socket_sentence(uid: int, gid: int, group_range: str | None) -> str:
    """Why this process can send no ICMP echo at all, and the ways out."""
    shown = f"({group_range})" if group_range else "(unreadable)"
    return (
        f"cannot send ICMP echo requests: this process (uid {uid}, gid {gid}) may not open raw sockets "
        f"(needs root or CAP_NET_RAW) and its group is outside net.ipv4.ping_group_range {shown}, "
        f"which unprivileged ICMP sockets need; run as root, grant CAP_NET_RAW, or set the sysctl "
        f"net.ipv4.ping_group_range to include gid {gid}"
    )


def _group_range() -> str | None:
    try:
        return " ".join(_PING_GROUP_RANGE.read_text().split())
    except OSError:
        return None


async def _resolve(check: IcmpCheck) -> str:
    try:
        ipaddress.ip_address(check.host)
        return check.host
    except ValueError:
        pass
    family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(check.ip_version or 0, socket.AF_UNSPEC)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(check.host, None, family=family, type=socket.SOCK_RAW)
    except OSError as exc:
        raise ProbeError(network_sentence(exc, check.host, None)) from None
    return str(infos[0][4][0])


async def _ping(address: str, check: IcmpCheck) -> Any:
    from icmplib import async_ping
    from icmplib.exceptions import SocketPermissionError

    family = 6 if ":" in address else 4
    known = _working_mode.get(family)
    order = [known] if known is not None else ([True, False] if os.geteuid() == 0 else [False, True])
    for privileged in order:
        try:
            host = await async_ping(
                address,
                count=check.count,
                interval=check.interval,
                timeout=check.packet_timeout,
                privileged=privileged,
                payload_size=check.payload_size,
            )
        except SocketPermissionError:
            continue
        _working_mode[family] = privileged
        return host, privileged
    raise ProbeError(no_socket_sentence(os.geteuid(), os.getegid(), _group_range()))


def _loss_sentence(loss: object, condition: str) -> str | None:
    if isinstance(loss, int | float) and loss >= 1:
        return f"no reply to any echo request (loss 100%, expected {condition})"
    if isinstance(loss, int | float):
        return f"{loss:.0%} of echo requests got no reply (loss {loss:g}, expected {condition})"
    return None


@register("icmp")
class IcmpProbe:
    """Send `count` echo requests; report round-trip times, loss and the address pinged."""

    type_name: ClassVar[str]
    Config = IcmpCheck
    metrics: ClassVar[Mapping[str, MetricSpec]] = {
        spec.name: spec
        for spec in (
            MetricSpec("rtt_min", "the fastest round trip", unit="s"),
            MetricSpec("rtt_avg", "the mean round trip", unit="s"),
            MetricSpec("rtt_max", "the slowest round trip", unit="s"),
            MetricSpec("loss", "the share of echo requests without a reply, 0 to 1", describe=_loss_sentence),
            MetricSpec("sent", "echo requests sent"),
            MetricSpec("received", "echo replies received"),
            MetricSpec("resolved_ip", "the address pinged (the host resolved)"),
            MetricSpec("privileged", "a raw socket was used (false: an unprivileged ICMP socket)"),
        )
    }
    exports: ClassVar[Mapping[str, tuple[Export, ...]]] = standard_exports(
        "icmp",
        metrics,
        text=("resolved_ip",),
        rename={"loss": "probe_icmp_packet_loss_ratio", "sent": "probe_icmp_sent", "received": "probe_icmp_received"},
        extra={"rtt_avg": (Export("probe_icmp_duration_seconds", "seconds", labels=(("phase", "rtt"),)),)},
    )
    headline: ClassVar[tuple[str, ...]] = ("rtt_avg", "loss")
    secrets: ClassVar[Mapping[str, SecretKind]] = {}
    """An icmp check has no secrets: a host and counts."""

    def target(self, check: IcmpCheck) -> str:
        return check.host

    def default_expect(self, check: IcmpCheck) -> Mapping[str, Any]:
        return {"loss": "< 1"}

    async def run(self, check: IcmpCheck, ctx: ProbeContext) -> Observation:
        address = await _resolve(check)
        try:
            host, privileged = await _ping(address, check)
        except OSError as exc:
            raise ProbeError(network_sentence(exc, address, None), metrics={"resolved_ip": address}) from None
        metrics: dict[str, Any] = {
            "sent": host.packets_sent,
            "received": host.packets_received,
            "loss": round(float(host.packet_loss), 4),
            "resolved_ip": address,
            "privileged": privileged,
        }
        if host.packets_received:
            metrics["rtt_min"] = round(host.min_rtt / 1000, 6)
            metrics["rtt_avg"] = round(host.avg_rtt / 1000, 6)
            metrics["rtt_max"] = round(host.max_rtt / 1000, 6)
        return Observation(metrics=metrics, details={"rtts": [round(rtt / 1000, 6) for rtt in host.rtts]})
