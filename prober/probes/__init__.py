"""The registry of check types: the ONE list of them. Config validation, docs and the CLI read it.

Adding a check type is one module with `@register` on its probe class and one import line below.
"""

from __future__ import annotations

from typing import Any

from prober.probes.base import Observation, Probe, ProbeContext, ProbeError

__all__ = ["PROBES", "Observation", "Probe", "ProbeContext", "ProbeError", "get_probe", "register"]

PROBES: dict[str, Probe[Any]] = {}


def register(type_name: str) -> Any:
    """Class decorator: instantiate the probe once and file it under its type name."""

    def decorate(cls: type[Any]) -> type[Any]:
        if type_name in PROBES:
            raise RuntimeError(f"check type {type_name!r} is registered twice")
        cls.type_name = type_name
        PROBES[type_name] = cls()
        return cls

    return decorate


def get_probe(type_name: str) -> Probe[Any]:
    try:
        return PROBES[type_name]
    except KeyError:
        raise KeyError(f"unknown check type {type_name!r}; valid types: {', '.join(sorted(PROBES))}") from None


# One line per check type.
from prober.probes import browser as _browser  # noqa: E402,F401
from prober.probes import hls as _hls  # noqa: E402,F401
from prober.probes import http as _http  # noqa: E402,F401
from prober.probes import tls as _tls  # noqa: E402,F401
from prober.probes import websocket as _websocket  # noqa: E402,F401
