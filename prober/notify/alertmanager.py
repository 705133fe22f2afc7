"""Incidents as Prometheus Alertmanager alerts: the client side of Alertmanager's API (`POST /api/v2/alerts`).

A notifier with `alertmanager: [peer URLs]` turns every incident into one alert, posted to every listed peer of
an Alertmanager cluster, as Alertmanager's clients are asked to:

- a label set that names the incident and is the same on every hub that judges it: `alertname` (ProberCheckDown),
  `check`, `group` (when the check has one), `type`, plus the check's own `alert.labels` (severity, team...) for
  Alertmanager's routing. Never a hub or instance label: two hubs posting the same incident post one alert, and
  Alertmanager (deduplicating by label set, gossiping between peers) sends one page;
- annotations `summary` (the title of the Apprise message) and `description` (its body: the error, the
  locations, since when);
- `startsAt`: when the outage began; `endsAt` once it is resolved; `generatorURL`: the check's page under
  `status_page.url`, when that is set.

The opened and resolved alerts are messages like any other: committed with their transition in the store's
notification outbox, one row per peer, delivered by the notifier's lane of that peer (retried on its own, so a
peer that is down delays no other), sent again after a crash. Their target is the peer's URL with the prefix
`alertmanager+` (`alertmanager+http://am-0:9093`): `target` makes it, `peer_of` reads it back; the message body
holds the alert as JSON. `Resender` then keeps Alertmanager's side of the contract: a firing alert is posted
again every `interval` (30 s; Alertmanager resolves an alert it has not heard of for `resolve_timeout`), and a
resolved one, with its `endsAt`, for `resolved_for` (5 min) so every peer learns it even if it missed the first.
Nothing is sent for an incident inside a maintenance window (its transitions do not notify).

This module never decides incidents (prober.alerts does), never writes to the store (the daemon does), and never
logs a peer URL unredacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp

from prober.alerts import Transition
from prober.config.models import RESERVED_LABELS, check_label_name
from prober.notify.message import Message, format_message
from prober.redact import redact_url

__all__ = [
    "ALERTNAME",
    "PREFIX",
    "RESERVED_LABELS",
    "Resender",
    "alert_labels",
    "build_alert",
    "check_label_name",
    "is_target",
    "message_for",
    "peer_of",
    "post_alerts",
    "target",
    "test_alert",
]

log = logging.getLogger("prober.notify")

PREFIX = "alertmanager+"
"""Marks a notifier target as an Alertmanager peer rather than an Apprise URL."""
ALERTNAME = "ProberCheckDown"
ALERTS_PATH = "/api/v2/alerts"


def target(peer: str) -> str:
    """The notifier target of an Alertmanager peer (`http://am-0:9093` → `alertmanager+http://am-0:9093`)."""
    return PREFIX + peer.rstrip("/")


def is_target(url: str) -> bool:
    return url.startswith(PREFIX)


def peer_of(url: str) -> str:
    """The peer's URL of a target made by `target`."""
    return url[len(PREFIX) :] if url.startswith(PREFIX) else url


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def alert_labels(check: str, group: str | None, check_type: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The label set of a check's incident alert: identical on every hub (nothing of the hub in it)."""
    labels = {name: value for name, value in extra.items() if value}
    labels.update(alertname=ALERTNAME, check=check, type=check_type)
    if group:
        labels["group"] = group
    return labels


def build_alert(
    transition: Transition,
    *,
    labels: Mapping[str, str],
    page_url: str | None,
) -> dict[str, Any]:
    """The alert for an opened, repeated or resolved transition (`page_url`: the check's page, or None)."""
    message = format_message(transition)
    alert: dict[str, Any] = {
        "labels": dict(labels),
        "annotations": {"summary": message.title, "description": message.body},
        "startsAt": _rfc3339(transition.started_at),
    }
    if transition.kind == "resolved":
        alert["endsAt"] = _rfc3339(max(transition.ended_at or transition.at, transition.started_at))
    if page_url:
        alert["generatorURL"] = page_url
    return alert


def page_url(base: str | None, check: str) -> str | None:
    """The check's page under the status page's public URL."""
    if not base:
        return None
    return f"{base.rstrip('/')}/checks/{quote(check, safe='')}"


def message_for(transition: Transition, alert: Mapping[str, Any]) -> Message:
    """The outbox message that carries `alert` (its body is the alert's JSON)."""
    title = str(alert["annotations"]["summary"])
    return Message(transition.kind, title, json.dumps(alert, sort_keys=True), transition.check, transition.incident_id)


def test_alert(now: datetime) -> dict[str, Any]:
    """What `prober notify-test` posts: an alert that resolves itself after a minute."""
    return {
        "labels": {"alertname": "ProberNotifyTest"},
        "annotations": {
            "summary": "prober test notification",
            "description": "A test alert from prober; if a receiver got it, this route works. It ends in a minute.",
        },
        "startsAt": _rfc3339(now),
        "endsAt": _rfc3339(now + timedelta(minutes=1)),
    }


def alert_of(message: Message, now: datetime) -> dict[str, Any]:
    """The alert a message carries (a test message carries none: `test_alert`)."""
    if message.kind == "test":
        return test_alert(now)
    data = json.loads(message.body)
    if not isinstance(data, dict) or not isinstance(data.get("labels"), dict):
        raise ValueError("the message holds no Alertmanager alert")
    return data


async def post_alerts(peer: str, alerts: Sequence[Mapping[str, Any]], *, timeout: float = 10.0) -> str | None:
    """POST alerts to one Alertmanager peer; None when it accepted them, else a sentence saying why not (the
    peer's URL redacted)."""
    where = redact_url(peer)
    url = peer.rstrip("/") + ALERTS_PATH
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.post(url, json=list(alerts)) as response,
        ):
            if response.status == 200:
                return None
            text = (await response.content.read(2000)).decode("utf-8", "replace")
            said = " ".join(text.split())[:300] or "no details"
            return f"the Alertmanager at {where} answered HTTP {response.status}: {said}"
    except TimeoutError:
        return f"the Alertmanager at {where} did not answer within {timeout:g} s"
    except (aiohttp.ClientError, OSError) as exc:
        return f"cannot reach the Alertmanager at {where}: {type(exc).__name__}: {exc}".replace(peer, where)


@dataclass(slots=True)
class _Active:
    peers: tuple[str, ...]
    alert: dict[str, Any]
    next_at: float
    """Monotonic time of its next re-send."""
    until: float | None
    """Monotonic time after which a resolved alert is no longer re-sent (None: firing)."""


class Resender:
    """Posts every open incident's alert again every `interval`, and resolved ones for `resolved_for`.

    `firing(check, peers, alert)` and `resolved(...)` are called by the daemon after the transition committed
    (the outbox has just sent the alert once): the alert's first re-send comes `interval` later, and so for an
    incident restored after a restart, so a hub catches up with its agents' backlog (which may resolve the
    incident) before it repeats an alert. An incident shorter than `interval` is never re-sent as firing, which
    keeps the window in which a hub that lags another re-opens a just-resolved alert small. `run()` is the loop
    (start it supervised): it wakes every `tick` seconds; each peer gets one request holding all its due
    alerts; a failing peer is logged once until it heals and delays no other.
    """

    def __init__(
        self,
        *,
        interval: float = 30.0,
        resolved_for: float = 300.0,
        timeout: float = 10.0,
        tick: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < interval <= 60:
            raise ValueError(f"the Alertmanager re-send interval must be between 0 and 60 s, got {interval}")
        self.interval = interval
        self.resolved_for = resolved_for
        self.timeout = timeout
        self.tick = min(tick, interval)
        self._clock = clock
        self._active: dict[str, _Active] = {}
        self._failing: set[str] = set()
        self.sent = 0
        """Alerts re-sent (one per peer and alert) since the start."""

    @property
    def alerts(self) -> dict[str, dict[str, Any]]:
        """check → the alert it re-sends (for tests and the daemon's own view)."""
        return {check: entry.alert for check, entry in self._active.items()}

    def firing(self, check: str, peers: Iterable[str], alert: dict[str, Any]) -> None:
        self._keep(check, peers, alert, None)

    def resolved(self, check: str, peers: Iterable[str], alert: dict[str, Any]) -> None:
        self._keep(check, peers, alert, self._clock() + self.resolved_for)

    def _keep(self, check: str, peers: Iterable[str], alert: dict[str, Any], until: float | None) -> None:
        found = tuple(dict.fromkeys(peers))
        if found:
            self._active[check] = _Active(found, alert, self._clock() + self.interval, until)
        else:
            self._active.pop(check, None)

    def forget(self, check: str) -> None:
        self._active.pop(check, None)

    def due(self) -> dict[str, list[dict[str, Any]]]:
        """peer → the alerts to post to it now; each is due again `interval` later. Resolved alerts re-sent for
        `resolved_for` are dropped."""
        now = self._clock()
        by_peer: dict[str, list[dict[str, Any]]] = {}
        for check, entry in list(self._active.items()):
            if entry.until is not None and entry.until < now:
                del self._active[check]
                continue
            if entry.next_at > now:
                continue
            entry.next_at = now + self.interval
            for peer in entry.peers:
                by_peer.setdefault(peer, []).append(entry.alert)
        return by_peer

    async def send_round(self) -> dict[str, str | None]:
        """Post what is due to every peer at once; return peer (redacted) → None or the error."""
        due = self.due()
        peers = list(due)
        errors = await asyncio.gather(*(post_alerts(peer, due[peer], timeout=self.timeout) for peer in peers))
        report: dict[str, str | None] = {}
        for peer, error in zip(peers, errors, strict=True):
            where = redact_url(peer)
            report[where] = error
            if error is None:
                self.sent += len(due[peer])
                if peer in self._failing:
                    self._failing.discard(peer)
                    log.info("the Alertmanager takes alerts again", extra={"fields": {"alertmanager": where}})
            elif peer not in self._failing:
                self._failing.add(peer)
                log.warning(
                    f"could not re-send open alerts; trying again every {self.interval:g} s: {error}",
                    extra={"fields": {"alertmanager": where, "alerts": len(due[peer])}},
                )
        return report

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.send_round(), self.interval + self.timeout)
