"""prober: synthetic uptime and streaming checks (HTTP, TLS, HLS, WebSocket, browser) from YAML.

The public API is small on purpose: load definitions, run a check once, read the result.

Its names are imported when first used (PEP 562), so `import prober.alerts` or `prober --help` does not pay
for the configuration models, the probes and their libraries (aiohttp, Playwright, PyAV).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prober.config.loader import CheckSpec, Config, ConfigError, Problem, load_config
    from prober.results import Assertion, Result, Status
    from prober.scheduling.runner import Runner

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

_HOMES = {
    "Assertion": "prober.results",
    "CheckSpec": "prober.config.loader",
    "Config": "prober.config.loader",
    "ConfigError": "prober.config.loader",
    "Problem": "prober.config.loader",
    "Result": "prober.results",
    "Runner": "prober.scheduling.runner",
    "Status": "prober.results",
    "load_config": "prober.config.loader",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()[name] = version = _version()
        return version
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'prober' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES, "__version__"])


def _version() -> str:
    """The installed distribution's version (pyproject.toml is the one place it is written); a source checkout
    that was never installed says so instead of guessing. Read on first use: importlib.metadata costs start."""
    from importlib import metadata

    try:
        return metadata.version("prober")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"
