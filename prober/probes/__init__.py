"""The check types: the ONE list of them. Config validation, the CLI, /metrics and the API read it.

The registry and the contract each probe declares live in `prober.probes.registry`. Adding a check type
is its module (with `@register` on its probe class), one import line below, and its tests.
"""

from __future__ import annotations

from prober.probes import browser, hls, http, tls, websocket  # noqa: F401 - one name per check type
from prober.probes.base import Observation, Probe, ProbeContext, ProbeError
from prober.probes.registry import PROBES, Export, RegisteredProbe, SecretKind, get_probe, register

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
