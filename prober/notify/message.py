"""Notification messages: what an alert transition says, and the record of each delivery attempt.

`format_message` turns a Transition into a title and body readable on a phone at 3 a.m. (scrubbed of every
secret the process knows); `DeliveryAttempt` is what a notifier route reports for each try. Shared by the
Apprise lanes (`prober.notify.notifier`) and the Alertmanager route (`prober.notify.alertmanager`). Pure: it
sends nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import apprise

from prober.alerts import FLAP_WINDOW, Transition
from prober.config.durations import format_duration
from prober.redact import LOG_SECRETS

__all__ = [
    "NOTIFY_TYPES",
    "DeliveryAttempt",
    "Message",
    "MessageKind",
    "Outcome",
    "RecordCallback",
    "build_test_message",
    "format_message",
]

MessageKind = Literal["opened", "resolved", "repeat", "test"]
Outcome = Literal["delivered", "retrying", "failed", "abandoned", "dropped"]

NOTIFY_TYPES: dict[MessageKind, apprise.NotifyType] = {
    "opened": apprise.NotifyType.FAILURE,
    "resolved": apprise.NotifyType.SUCCESS,
    "repeat": apprise.NotifyType.WARNING,
    "test": apprise.NotifyType.INFO,
}


@dataclass(frozen=True, slots=True)
class Message:
    """One notification as it is sent: what it is about, its title, body and Apprise type."""

    kind: MessageKind
    title: str
    body: str
    check: str | None = None
    incident_id: str | None = None

    @property
    def notify_type(self) -> apprise.NotifyType:
        return NOTIFY_TYPES[self.kind]


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One attempt to deliver one message to one URL, or the end of a message that was never delivered.

    outcome: delivered; retrying (failed, another attempt follows after `next_retry_in` seconds);
    failed (failed and no attempts are left); abandoned (the notifier was closed first); dropped (too
    many messages were waiting for this URL and this was the oldest). `url` is always redacted.
    """

    kind: MessageKind
    check: str | None
    incident_id: str | None
    url: str
    title: str
    attempt: int
    max_attempts: int
    outcome: Outcome
    error: str | None
    at: datetime
    duration: float
    next_retry_in: float | None = None
    outbox_id: int | None = None
    """The message's outbox row, when it has one."""

    @property
    def ok(self) -> bool:
        return self.outcome == "delivered"

    @property
    def final(self) -> bool:
        """No further attempt will be made for this message and URL."""
        return self.outcome != "retrying"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "check": self.check,
            "incident_id": self.incident_id,
            "url": self.url,
            "title": self.title,
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
            "outcome": self.outcome,
            "error": self.error,
            "at": self.at.astimezone(UTC).isoformat(),
            "duration": round(self.duration, 6),
            "next_retry_in": self.next_retry_in,
        }


RecordCallback = Callable[[DeliveryAttempt], Awaitable[None]]


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _where(locations: tuple[str, ...]) -> str:
    if not locations or locations == ("default",):
        return ""
    return f" at {', '.join(locations)}"


def format_message(transition: Transition) -> Message:
    """Title and body for an alert transition, readable on a phone at 3 a.m."""
    t = transition
    where = _where(t.locations)
    error = t.error or "no error message was recorded"
    lines: list[str]
    if t.kind == "opened":
        title = f"DOWN: {t.check}"
        lines = [f"{t.check} is down{where}: {error}.", f"Down since {_when(t.started_at)} (detected {_when(t.at)})."]
    elif t.kind == "resolved":
        title = f"RESOLVED: {t.check}"
        ended = t.ended_at or t.at
        lines = [
            f"{t.check} is back up after {format_duration(t.downtime or 0.0)} of downtime.",
            f"It was down{where} from {_when(t.started_at)} to {_when(ended)}: {error}.",
        ]
    else:
        title = f"STILL DOWN: {t.check}"
        lasting = format_duration(max(0.0, (t.at - t.started_at).total_seconds()))
        lines = [f"{t.check} is still down{where}, for {lasting} now: {error}.", f"Down since {_when(t.started_at)}."]
    if t.flapping:
        window = format_duration(FLAP_WINDOW.total_seconds())
        lines.append(f"Flapping: this is incident {t.recent_incidents} in the last {window}.")
    lines.append(f"Incident {t.incident_id}.")
    # Scrubbed of every secret this process knows (check secrets, notifier URLs), whatever wrote the error.
    return Message(t.kind, LOG_SECRETS.text(title), LOG_SECRETS.text("\n".join(lines)), t.check, t.incident_id)


def build_test_message(now: datetime) -> Message:
    """The message `prober notify-test` sends."""
    return Message(
        "test",
        "prober test notification",
        f"This is a test message from prober, sent {_when(now)}. If you can read it, this notifier works.",
    )
