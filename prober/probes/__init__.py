"""The check types: the ONE list of them. Config validation, the CLI, /metrics and the API read it.

The registry and the contract each probe declares live in `prober.probes.registry`. Adding a check type
is its module (with `@register` on its probe class), one `declare` line below, and its tests. A type's
module is imported the first time the type is looked up (`PROBES["hls"]`), so a process pays only for
the types it uses: `prober check` of http checks never imports PyAV or Playwright.
"""

from __future__ import annotations

from prober.probes.base import Observation, Probe, ProbeContext, ProbeError
from prober.probes.registry import PROBES, Export, RegisteredProbe, SecretKind, declare, get_probe, register

declare("browser", "prober.probes.browser.probe")
declare("dash", "prober.probes.dash.probe")
declare("dns", "prober.probes.dns")
declare("flv", "prober.probes.flv")
declare("heartbeat", "prober.probes.heartbeat")
declare("grpc", "prober.probes.grpc")
declare("hls", "prober.probes.hls.probe")
declare("http", "prober.probes.http")
declare("multistep", "prober.probes.multistep")
declare("icmp", "prober.probes.icmp")
declare("rtmp", "prober.probes.rtmp")
declare("tcp", "prober.probes.tcp")
declare("tls", "prober.probes.tls")
declare("websocket", "prober.probes.websocket.probe")

__all__ = [
    "PROBES",
    "Export",
    "Observation",
    "Probe",
    "ProbeContext",
    "ProbeError",
    "RegisteredProbe",
    "SecretKind",
    "get_probe",
    "register",
]
