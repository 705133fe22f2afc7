"""prober: synthetic uptime and streaming checks (HTTP, TLS, HLS, WebSocket, browser) from YAML.

The public API is small on purpose: load definitions, run a check once, read the result.
"""

from __future__ import annotations

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
