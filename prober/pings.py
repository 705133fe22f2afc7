"""Heartbeat pings: what a job's call to `/ping/<token>[/start|/fail|/<exit-code>]` is, as data.

A `Ping` is an inbound event: the API builds one from a request (`ping_action` reads the path's last part),
the daemon hands it to the store (the only writer), peers receive a copy (`forward_header` /
`read_forward_header`: the id travels so a copy counted twice is stored once), and the heartbeat probe
reads the recent ones back to measure how late the job is. This module is pure data: it never does I/O,
never reads a clock (times come in with each ping) and never judges anything.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from prober.results import format_timestamp

__all__ = [
    "FORWARD_HEADER",
    "MAX_BODY",
    "MAX_FORWARD_AGE",
    "Ping",
    "PingKind",
    "forward_header",
    "ping_action",
    "read_forward_header",
]

PingKind = Literal["success", "start", "fail"]

MAX_BODY = 1000
"""Characters of a ping's body kept as its log (the first ones); the rest is dropped."""
FORWARD_HEADER = "X-Prober-Forwarded-Ping"
"""Set on a ping one hub passes on to its peers: `<ping id> <received at>`. A ping carrying it is stored under
that id (a copy received twice is stored once) and is never passed on again (the loop guard)."""
MAX_FORWARD_AGE = timedelta(minutes=10)
"""A forwarded ping keeps the time the first hub received it, unless that is older than this or in the future
(a peer with a broken clock, or a forged header): then it counts as received now."""

_EXIT_CODE = re.compile(r"^[0-9]{1,3}$")
_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class Ping:
    """One ping of a heartbeat check.

    kind       success (`/ping/<token>`, or exit code 0), start (`/start`), fail (`/fail`, or a non-zero code)
    exit_code  the code of `/ping/<token>/<exit-code>`, else None
    body       the first MAX_BODY characters of the request body (the job's log), or ""
    forwarded  received from a peer hub (so not passed on again)
    """

    check: str
    kind: PingKind
    received_at: datetime
    exit_code: int | None = None
    body: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    forwarded: bool = False

    @property
    def finishes(self) -> bool:
        """True for a ping that ends a run of the job (success or failure), False for `/start`."""
        return self.kind != "start"


def ping_action(action: str) -> tuple[PingKind, int | None] | None:
    """The kind and exit code of a ping path's last part: "" (success), "start", "fail" or an exit code
    0-255; None for anything else (answered 404 like an unknown token)."""
    if action == "":
        return "success", None
    if action in ("start", "fail"):
        return action, None  # type: ignore[return-value]
    if _EXIT_CODE.match(action) and int(action) <= 255:
        code = int(action)
        return ("success" if code == 0 else "fail"), code
    return None


def forward_header(ping: Ping) -> str:
    return f"{ping.id} {format_timestamp(ping.received_at)}"


def read_forward_header(value: str, now: datetime) -> tuple[str, datetime] | None:
    """The id and receiving time of a forwarded ping, or None when the header is malformed. The time is
    clamped to `now` when it lies in the future or more than MAX_FORWARD_AGE in the past."""
    ping_id, _, moment = value.strip().partition(" ")
    if not _ID.match(ping_id):
        return None
    try:
        received = datetime.fromisoformat(moment.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if received.tzinfo is None:
        received = received.replace(tzinfo=UTC)
    if received > now or now - received > MAX_FORWARD_AGE:
        received = now
    return ping_id, received
