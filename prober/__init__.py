"""prober: synthetic uptime and streaming checks (HTTP, TLS, HLS, WebSocket, browser) from YAML.

The public API is small on purpose: load definitions, run a check once, read the result.

The names below are imported on first use (PEP 562), not when the package is: `import prober.alerts`
or `prober --help` must not pay for pydantic models, aiohttp or the probes (tests/test_package.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

__version__ = "0.1.0"

_HOMES = {
    "Assertion": "prober.results",
    "CheckSpec": "prober.config",
    "Config": "prober.config",
    "ConfigError": "prober.config",
    "Problem": "prober.config",
    "Result": "prober.results",
    "Runner": "prober.runner",
    "Status": "prober.results",
    "load_config": "prober.config",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'prober' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
