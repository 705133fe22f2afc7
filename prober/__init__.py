"""prober: synthetic uptime and streaming checks (HTTP, TLS, HLS, WebSocket, browser) from YAML.

The public API is small on purpose: load definitions, run a check once, read the result.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from prober.config import CheckSpec, Config, ConfigError, Problem, load_config
from prober.results import Assertion, Result, Status
from prober.runner import Runner

__all__ = [
    "Assertion",
    "CheckSpec",
    "Config",
    "ConfigError",
    "Problem",
    "Result",
    "Runner",
    "Status",
    "load_config",
]


def _version() -> str:
    """The installed distribution's version (pyproject.toml is the one place it is written); a source checkout
    that was never installed says so instead of guessing."""
    try:
        return _metadata.version("prober")
    except _metadata.PackageNotFoundError:
        return "0.0.0+unknown"


__version__ = _version()
