"""Delivering incident notifications through Apprise, with retries, per-URL records and redaction.

`format_message` turns an alert Transition into a title and body; `Notifier` delivers them. Every URL
gets its own lane: a FIFO queue, one Apprise object (so success is known per URL) and one worker task.
Lanes run independently, so a slow or dead receiver delays only its own messages, and messages to one
URL arrive in the order they were submitted (a "resolved" never overtakes its "down"). A failed
delivery is retried with exponential backoff (base_delay, 2×, 4×, … capped at max_delay) until it gets
through, until `give_up_after` (24 h) has passed since the message was created (then it is `abandoned`,
with a log line), or, when `max_attempts` is set, until that many attempts failed. Every attempt is
reported to the injected async `record` callback as a DeliveryAttempt and logged, with the URL redacted.

Messages may carry the id of their row in the store's notification outbox (`enqueue`): the daemon
commits them with their transition and the record of the final attempt deletes the row, so what a crash
interrupts is sent again on the next start. At shutdown such messages are kept (not abandoned): they
are still in the outbox. Lanes run supervised: a bug in a lane is logged, the lane restarts with backoff
and the message it was sending is tried again.

Apprise notification types: opened → failure, resolved → success, repeat → warning, test → info.
A target `alertmanager+<peer URL>` is not Apprise: its messages carry an Alertmanager alert as JSON and are
posted to that peer (prober.notify.alertmanager), through the same lanes, retries and outbox.

It must never block or slow the caller (`submit` only enqueues), never raise out of a worker, never
write a notifier URL unredacted to a log or a record, and never outlive `aclose(timeout)` by more than
about a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import apprise

from prober.alerts import Transition
from prober.config.durations import format_duration
from prober.daemon.supervise import Supervisor
from prober.notify import alertmanager
from prober.notify.message import DeliveryAttempt, Message, Outcome, RecordCallback, build_test_message, format_message
from prober.redact import LOG_SECRETS, redact_url, scrub

__all__ = ["LOG_REDACTION", "Notifier"]

log = logging.getLogger("prober.notify")

LOG_REDACTION = LOG_SECRETS
"""Scrubs every notifier URL this process has used from the `apprise` logger's records (Apprise logs
request URLs, tokens in the path included, at DEBUG level). Add it to other loggers or handlers too."""
logging.getLogger("apprise").addFilter(LOG_REDACTION)

_ABANDON_RECORD_BUDGET = 1.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Job:
    message: Message
    url: str
    attempts: int = 0
    outbox_id: int | None = None
    created_at: datetime | None = None


@dataclass(slots=True)
class _Lane:
    url: str
    redacted: str
    queue: deque[_Job] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    current: _Job | None = None
    task: asyncio.Task[None] | None = None
    apprise: Any = None


class Notifier:
    """Queues messages per URL and delivers them through Apprise with retries.

    Create it inside the running event loop. `submit`, `submit_message` and `enqueue` must be called from
    the loop's thread; they never wait. `aclose(timeout)` lets queued deliveries finish for up to `timeout`
    seconds, then stops; undelivered messages without an outbox row are recorded as `abandoned`, those
    with one stay in the outbox for the next start.
    """

    def __init__(
        self,
        *,
        record: RecordCallback | None = None,
        base_delay: float = 2.0,
        max_delay: float = 60.0,
        max_attempts: int | None = None,
        give_up_after: float = 86400.0,
        attempt_timeout: float = 20.0,
        max_pending: int = 500,
        clock: Callable[[], datetime] = _utcnow,
        supervisor: Supervisor | None = None,
    ) -> None:
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._record_cb = record
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_attempts = max_attempts
        self.give_up_after = give_up_after
        self.attempt_timeout = attempt_timeout
        self.max_pending = max_pending
        self._clock = clock
        self.supervisor = supervisor or Supervisor()
        self._lanes: dict[str, _Lane] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def pending(self) -> int:
        """Messages not yet delivered, given up or dropped, over all URLs."""
        return sum(len(lane.queue) + (lane.current is not None) for lane in self._lanes.values())

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return float(min(self.max_delay, self.base_delay * 2 ** min(attempt - 1, 40)))

    def submit(self, transition: Transition, urls: Iterable[str]) -> None:
        """Queue the transition's message for every URL (each once). Returns at once.

        Transitions with `notify=False` (maintenance) are not sent. After `aclose` nothing is sent.
        """
        if not transition.notify:
            log.debug("Not notifying %s %s: it happened during a maintenance window", transition.check, transition.kind)
            return
        self.submit_message(format_message(transition), urls)

    def submit_message(self, message: Message, urls: Iterable[str]) -> None:
        """Queue a ready-made message for every URL (each once). Returns at once."""
        for url in dict.fromkeys(urls):
            self.enqueue(message, url)

    def enqueue(
        self, message: Message, url: str, *, outbox_id: int | None = None, created_at: datetime | None = None
    ) -> None:
        """Queue one message for one URL, behind what is already queued for it. `outbox_id`: its row in the
        store's outbox (the record of its final attempt deletes it); `created_at`: when it was first queued,
        which starts the give_up_after clock (default now)."""
        if self._closing:
            log.warning("Notifier is shut down; not sending %r", message.title)
            return
        if not url.strip():
            log.warning("Skipping an empty notifier URL for %r (is its environment variable empty?)", message.title)
            return
        lane = self._lane(url)
        if len(lane.queue) >= self.max_pending:
            dropped = lane.queue.popleft()
            log.error(
                "Dropping the oldest notification %r for %s: more than %d are waiting for this URL",
                dropped.message.title,
                lane.redacted,
                self.max_pending,
            )
            self._spawn(self._record(self._closing_record(lane, dropped, "dropped")))
        lane.queue.append(_Job(message, url, outbox_id=outbox_id, created_at=created_at or self._clock()))
        lane.wakeup.set()

    async def send_test(self, urls: Iterable[str]) -> dict[str, str | None]:
        """Send the test message once to every URL, concurrently, without retries.

        Returns redacted URL → None when delivered, else the error. Attempts are recorded as kind "test".
        """
        message = build_test_message(self._clock())
        unique = list(dict.fromkeys(urls))
        for url in unique:
            LOG_REDACTION.add(url)
        lanes = [_Lane(url, redact_url(url)) for url in unique]
        errors = await asyncio.gather(
            *(self._attempt_and_record(lane, _Job(message, lane.url, created_at=self._clock()), 1) for lane in lanes)
        )
        report: dict[str, str | None] = {}
        for lane, error in zip(lanes, errors, strict=True):
            key, n = lane.redacted, 1
            while key in report:
                n += 1
                key = f"{lane.redacted} (#{n})"
            report[key] = error
        return report

    async def aclose(self, timeout: float = 10.0) -> None:
        """Stop accepting messages, let queued ones finish for up to `timeout` seconds, then cancel the
        rest. Messages with an outbox row stay there (sent on the next start); the others are recorded as
        `abandoned` (recording gets at most one more second).
        """
        self._closing = True
        for lane in self._lanes.values():
            lane.wakeup.set()
        workers = {lane.task: lane for lane in self._lanes.values() if lane.task is not None}
        tasks: set[asyncio.Task[None]] = set(workers) | self._side_tasks
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, timeout))
        if not pending:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _ABANDON_RECORD_BUDGET
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=_ABANDON_RECORD_BUDGET)
        leftovers: list[DeliveryAttempt] = []
        kept = 0
        for task in pending:
            stuck = workers.get(task)
            if stuck is None:
                continue
            jobs = ([stuck.current] if stuck.current is not None else []) + list(stuck.queue)
            stuck.current = None
            stuck.queue.clear()
            kept += sum(job.outbox_id is not None for job in jobs)
            leftovers.extend(self._closing_record(stuck, job, "abandoned") for job in jobs if job.outbox_id is None)
        if kept:
            log.warning("%d undelivered notification(s) stay in the outbox and are sent on the next start", kept)
        for item in leftovers:
            log.error(
                "Notification %r to %s was not delivered before shutdown (%d attempt(s) made)",
                item.title,
                item.url,
                item.attempt,
            )
        remaining = deadline - loop.time()
        if leftovers and remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(self._record(item) for item in leftovers)), remaining)

    async def __aenter__(self) -> Notifier:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # --- internals -------------------------------------------------------------------------------

    def _lane(self, url: str) -> _Lane:
        lane = self._lanes.get(url)
        if lane is None:
            LOG_REDACTION.add(url)
            lane = self._lanes[url] = _Lane(url, redact_url(url))
        if lane.task is None or lane.task.done():
            lane.task = self.supervisor.spawn("notify", lambda: self._run_lane(lane))
        return lane

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            await coro

        task = asyncio.get_running_loop().create_task(run())
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _record(self, item: DeliveryAttempt) -> None:
        if self._record_cb is None:
            return
        try:
            await self._record_cb(item)
        except Exception:
            log.exception("Could not record the notification attempt to %s (%s)", item.url, item.outcome)

    def _closing_record(self, lane: _Lane, job: _Job, outcome: Literal["abandoned", "dropped"]) -> DeliveryAttempt:
        if outcome == "abandoned":
            error = "not delivered: prober was shutting down before the message got through"
        else:
            error = f"dropped: more than {self.max_pending} notifications were waiting for this URL"
        return DeliveryAttempt(
            kind=job.message.kind,
            check=job.message.check,
            incident_id=job.message.incident_id,
            url=lane.redacted,
            title=job.message.title,
            attempt=job.attempts,
            max_attempts=self.max_attempts or 0,
            outcome=outcome,
            error=error,
            at=self._clock(),
            duration=0.0,
            outbox_id=job.outbox_id,
        )

    async def _run_lane(self, lane: _Lane) -> None:
        """The lane's worker (supervised: if it raises, the job it held goes back to the front and it restarts)."""
        while True:
            if not lane.queue:
                if self._closing:
                    return
                lane.wakeup.clear()
                await lane.wakeup.wait()
                continue
            job = lane.current = lane.queue.popleft()
            try:
                await self._deliver(lane, job)
            except Exception:
                lane.current = None
                lane.queue.appendleft(job)
                raise
            lane.current = None  # not when cancelled: aclose accounts for the job in hand

    async def _deliver(self, lane: _Lane, job: _Job) -> None:
        while True:
            job.attempts += 1
            error = await self._attempt_and_record(lane, job, self.max_attempts)
            if error is None or lane.apprise is False:
                return
            if self.max_attempts is not None and job.attempts >= self.max_attempts:
                return
            if self._age(job) >= self.give_up_after:
                return
            await asyncio.sleep(self.backoff(job.attempts))

    def _age(self, job: _Job) -> float:
        if job.created_at is None:
            return 0.0
        return (self._clock() - job.created_at).total_seconds()

    async def _attempt_and_record(self, lane: _Lane, job: _Job, max_attempts: int | None) -> str | None:
        attempt = max(job.attempts, 1)
        started_at = self._clock()
        began = time.monotonic()
        error = await self._attempt(lane, job.message)
        duration = time.monotonic() - began
        permanent = lane.apprise is False
        exhausted = max_attempts is not None and attempt >= max_attempts
        expired = self._age(job) >= self.give_up_after
        retrying = error is not None and not permanent and not exhausted and not expired
        outcome: Outcome
        if error is None:
            outcome = "delivered"
        elif retrying:
            outcome = "retrying"
        elif expired and not permanent and not exhausted:
            outcome = "abandoned"
            error = f"undeliverable for {format_duration(self.give_up_after)}: {error}"
        else:
            outcome = "failed"
        delay = self.backoff(attempt) if retrying else None
        title = job.message.title
        of = f" of {max_attempts}" if max_attempts is not None else ""
        if error is None:
            log.info("Sent %r to %s", title, lane.redacted)
        elif retrying:
            log.warning(
                "Could not send %r to %s (attempt %d%s): %s; retrying in %s",
                title,
                lane.redacted,
                attempt,
                of,
                error,
                format_duration(delay or 0.0),
            )
        elif outcome == "abandoned":
            log.error("Abandoned %r to %s after %d attempt(s): %s", title, lane.redacted, attempt, error)
        else:
            log.error("Gave up sending %r to %s after %d attempt(s): %s", title, lane.redacted, attempt, error)
        await self._record(
            DeliveryAttempt(
                kind=job.message.kind,
                check=job.message.check,
                incident_id=job.message.incident_id,
                url=lane.redacted,
                title=title,
                attempt=attempt,
                max_attempts=max_attempts or 0,
                outcome=outcome,
                error=error,
                at=started_at,
                duration=duration,
                next_retry_in=delay,
                outbox_id=job.outbox_id,
            )
        )
        return error

    async def _attempt(self, lane: _Lane, message: Message) -> str | None:
        """One delivery; None on success, else a redacted sentence saying what went wrong."""
        if alertmanager.is_target(lane.url):
            try:
                alert = alertmanager.alert_of(message, self._clock())
            except ValueError as exc:
                return f"not sent: {exc}"
            peer = alertmanager.peer_of(lane.url)
            error = await alertmanager.post_alerts(peer, [alert], timeout=self.attempt_timeout)
            return None if error is None else scrub(error, [lane.url, peer])
        try:
            if lane.apprise is None:
                lane.apprise = await asyncio.to_thread(_build_apprise, lane.url)
            if lane.apprise is False:
                return (
                    "Apprise does not understand this URL (unknown scheme, or a required part is missing); "
                    "it will not be retried"
                )
            result = await asyncio.wait_for(
                lane.apprise.async_notify(
                    body=message.body,
                    title=message.title,
                    notify_type=message.notify_type,
                    body_format=apprise.NotifyFormat.TEXT,
                ),
                timeout=self.attempt_timeout,
            )
        except TimeoutError:
            return f"no answer within {format_duration(self.attempt_timeout)}"
        except Exception as exc:
            return scrub(f"{type(exc).__name__}: {exc}", [lane.url])
        if result:
            return None
        return scrub(_apprise_error(result), [lane.url])


def _build_apprise(url: str) -> Any:
    """An Apprise object holding just `url`, or False when Apprise rejects the URL."""
    apobj = apprise.Apprise()
    return apobj if apobj.add(url) and len(apobj) == 1 else False


def _apprise_error(result: Any) -> str:
    logs = getattr(result, "logs", None)
    messages: list[str] = []
    if callable(logs):
        with contextlib.suppress(Exception):
            messages = [str(entry.message) for entry in logs() if str(entry.level) in ("WARNING", "ERROR", "CRITICAL")]
    status = getattr(getattr(result, "status", None), "name", None)
    if not messages and status == "TIMEOUT":
        return "the service did not answer in time"
    text = " ".join(dict.fromkeys(m.strip() for m in messages if m.strip()))
    return text or "the service did not accept the message (Apprise gave no reason)"
