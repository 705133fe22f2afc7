"""The HTTP side every segmented stream type (HLS, DASH) shares: one session per run, and one sentence per
kind of failed download. Measures nothing itself; never raises out of `fetch_reason`."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from prober.config.durations import format_duration
from prober.probes.network import network_sentence

__all__ = ["age_seconds", "fetch_reason", "stream_session"]


def stream_session(*, verify_tls: bool, headers: Mapping[str, str], user_agent: str) -> aiohttp.ClientSession:
    """A session for one run: fresh connections, no overall timeout (budgets are per request)."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None),
        headers={"User-Agent": user_agent, **headers},
        connector=aiohttp.TCPConnector(ssl=verify_tls, limit=32),
        trust_env=False,
    )


def fetch_reason(exc: BaseException, budget: float) -> str:
    """Why a playlist, manifest or segment download failed, as a sentence."""
    if isinstance(exc, TimeoutError):
        return f"no complete answer within {format_duration(budget)}"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return network_sentence(exc, exc.host, exc.port)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the download was cut short ({exc})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    return f"{type(exc).__name__}: {str(exc) or type(exc).__name__}"


def age_seconds(raw: str | None) -> float | None:
    """An HTTP `Age` header in seconds; None when absent or not a non-negative number."""
    try:
        value = float((raw or "").strip())
    except ValueError:
        return None
    return value if value >= 0 else None
