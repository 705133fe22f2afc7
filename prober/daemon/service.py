"""`prober run`: wires config, scheduler, runner, store, alerts, notifier and the HTTP API together.

The daemon owns the lifecycle (start, reload, graceful stop) and the order of effects for every result:
first the store commits it, then the alert state machine sees it, then the notifier is handed any
transition. A transition and the messages it sends are committed together (the store's notification
outbox), so a crash loses no page: what was not delivered is sent after the restart. One daemon per
database (an OS file lock, prober/lock.py). Every background task runs supervised (prober/supervise.py).
It never measures (probes do), never decides incidents (alerts.py does) and never writes
SQL (the store does). With `push_url` it is an agent (docs/deployment.md): results are committed as usual, a
pusher (agent.py) sends them to the hub, and alerting is left to the hub: an agent never notifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prober.agent import Pusher, PushSettings, PushStats
from prober.alerts import CheckAlertState, LocationState, Transition, due_repeats, forget_locations, observe
from prober.config.loader import CheckSpec, Config, ConfigError, collect_files, load_config
from prober.config.maintenance import active_window
from prober.daemon.health import Runtime
from prober.daemon.heartbeat import Heartbeat
from prober.daemon.lock import DatabaseLock
from prober.daemon.ping_peers import PingForwarder
from prober.daemon.supervise import Supervisor
from prober.notify import alertmanager
from prober.notify.message import DeliveryAttempt, Message, format_message
from prober.notify.notifier import Notifier
from prober.pings import Ping
from prober.probes.registry import passive
from prober.redact import LOG_SECRETS, config_secrets, redact_url
from prober.results import Result, format_timestamp
from prober.scheduling.runner import Runner
from prober.scheduling.scheduler import Scheduler
from prober.store import IncidentChange, OutboxEntry, Store, StoreError
from prober.store.artifacts import prune_artifacts
from prober.store.outbox import url_key
from prober.telemetry import start_exporter, telemetry_settings

if TYPE_CHECKING:
    from prober.telemetry.exporter import Exporter

__all__ = ["Daemon", "DaemonOptions"]

log = logging.getLogger("prober.daemon")


@dataclass(slots=True)
class DaemonOptions:
    paths: Sequence[str]
    db: Path
    location: str = "default"
    listen: str | None = "127.0.0.1:8080"
    artifacts: Path | None = None
    max_concurrency: int = 64
    stop_grace: float = 10.0
    watch_interval: float = 2.0
    tick_interval: float = 5.0
    prune_interval: float = 3600.0
    notify_base_delay: float = 2.0
    notify_attempts: int | None = None
    """None: retry until delivered or 24 h old (notify_give_up_after)."""
    notify_give_up_after: float = 86400.0
    batch_window: float = 0.05
    """The scheduler starts due checks together at most every this many seconds (see prober/scheduler.py)."""
    shard: tuple[int, int] | None = None
    push_url: str | None = None
    push_urls: Sequence[str] = ()
    """Every hub to push to (one Pusher each); `push_url` alone is the one-hub form."""
    token: str | None = field(default=None, repr=False)  # never in a log line or a traceback
    push_settings: PushSettings | None = None
    alertmanager_resend: float = 30.0
    """Seconds between re-sends of open incidents' alerts to Alertmanager (at most 60)."""
    ping_peers: Sequence[str] = ()
    """Peer hubs every heartbeat ping received here is passed on to (prober.daemon.ping_peers)."""


@dataclass
class Daemon:
    options: DaemonOptions
    config: Config = field(default_factory=Config)
    store: Store | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _alert_states: dict[str, CheckAlertState] = field(default_factory=dict)
    _saved_states: dict[str, CheckAlertState] = field(default_factory=dict)
    """The alert state last committed per check: a step that changes nothing a restart needs is not written."""
    supervisor: Supervisor = field(default_factory=Supervisor)
    runtime: Runtime = field(default_factory=Runtime)
    _alert_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _specs_by_name: dict[str, CheckSpec] = field(default_factory=dict)
    _file_stamp: tuple[tuple[str, float, int], ...] = ()
    pusher: Pusher | None = None
    telemetry: Exporter | None = None
    heartbeat: Heartbeat = field(init=False)
    """The first hub's pusher (an agent), for callers that know one hub; `pushers` holds them all."""
    pushers: list[Pusher] = field(default_factory=list)
    resender: alertmanager.Resender | None = None
    """A hub's re-sending of open (and recently resolved) incidents to Alertmanager peers."""
    ping_forwarder: PingForwarder | None = None
    """Passes heartbeat pings received here on to `options.ping_peers`."""
    _ping_runs: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    """Heartbeat checks being measured because a ping arrived (one run at a time per check)."""
    _pinged_again: set[str] = field(default_factory=set)
    """Checks pinged again while such a run was going on: they are measured once more."""

    # ---- lifecycle -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Start everything, run until SIGTERM/SIGINT (or `stopping` is set), then stop gracefully."""
        from prober.api.connections import raise_open_file_limit

        soft, hard = raise_open_file_limit()  # probes, the API and the database all need descriptors
        log.info("open file limit %s (hard limit %s)", soft, hard, extra={"fields": {"soft": soft, "hard": hard}})
        self._use_config(load_config(self.options.paths))
        self._file_stamp = self._stamp()
        options = self.options
        self._lock = DatabaseLock(options.db)
        self._lock.acquire()  # before the file is touched: a second prober stops here (DatabaseInUseError)
        try:
            self.store = store = Store(options.db)
        except BaseException:
            self._lock.release()
            raise
        await store.start()
        self.runtime.task_restarts = self.supervisor.restarts
        artifacts = options.artifacts or options.db.resolve().parent / "artifacts"
        self.runner = Runner(
            location=options.location, state_store=store, artifacts_dir=artifacts, persistent_state=True, pings=store
        )
        self._start_telemetry()
        self.notifier = Notifier(
            record=self._record_notification,
            base_delay=options.notify_base_delay,
            max_attempts=options.notify_attempts,
            give_up_after=options.notify_give_up_after,
            supervisor=self.supervisor,
        )
        try:
            # First, so a busy port stops the start before any check runs.
            api_runner = await self._start_api()
        except BaseException:
            await store.close()
            self._lock.release()
            raise
        hubs = list(dict.fromkeys(options.push_urls or ([options.push_url] if options.push_url else [])))
        if hubs:  # an agent: one pusher per hub sends results on; the hubs alert, so no alert state here
            self.pushers = [
                Pusher(
                    store,
                    url=hub,
                    token=options.token or "",
                    location=options.location,
                    settings=options.push_settings,
                    supervisor=self.supervisor,
                )
                for hub in hubs
            ]
            self.pusher = self.pushers[0]
            for pusher in self.pushers:
                await pusher.start()
        else:
            self.resender = alertmanager.Resender(interval=options.alertmanager_resend)
            self._restore_alerts()
            await self._resend_outbox()
        self.scheduler = Scheduler(
            self._my_checks(),
            self._run_check,
            max_concurrency=options.max_concurrency,
            batch_window=options.batch_window,
        )
        await self.scheduler.start()
        if options.ping_peers:
            self.ping_forwarder = PingForwarder(options.ping_peers)
            await self.ping_forwarder.start()
        self._install_signals()
        self.heartbeat = Heartbeat(self)  # pings `heartbeat.url` while healthy (idle without one)
        self._tasks = [
            self.supervisor.spawn("watch", self._watch_files),
            self.supervisor.spawn("tick", self._tick),
            self.supervisor.spawn("prune", self._prune_loop),
            self.supervisor.spawn("loop-lag", self.runtime.loop_lag.run),
            self.supervisor.spawn("heartbeat", self.heartbeat.run),
        ]
        if self.resender is not None:
            self._tasks.append(self.supervisor.spawn("alertmanager", self.resender.run))
        log.info(
            "prober started",
            extra={
                "fields": {
                    "checks": len(self._my_checks()),
                    "location": options.location,
                    "db": str(options.db),
                    "listen": options.listen,
                }
            },
        )
        try:
            await self.stopping.wait()
        finally:
            log.info("stopping", extra={"fields": {"grace_seconds": options.stop_grace}})
            await self.scheduler.stop(options.stop_grace)
            if self.pushers:  # after the last runs committed, before the store closes; hubs in parallel
                grace = min(5.0, options.stop_grace)
                await asyncio.gather(*(pusher.stop(timeout=grace) for pusher in self.pushers))
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for evaluation in list(self._ping_runs.values()):
                evaluation.cancel()
            await asyncio.gather(*self._ping_runs.values(), return_exceptions=True)
            if self.ping_forwarder is not None:
                await self.ping_forwarder.stop()
            if api_runner is not None:
                await api_runner.cleanup()
            await self.notifier.aclose(timeout=min(5.0, options.stop_grace))
            await self.runner.resources.aclose()
            if self.telemetry is not None:  # flush the last spans within the grace, in a worker thread
                await asyncio.to_thread(self.telemetry.shutdown, min(5.0, options.stop_grace))
            await store.close()
            self._lock.release()
            self._remove_signals()
            log.info("stopped")

    def stop(self) -> None:
        self.stopping.set()

    def _start_telemetry(self) -> None:
        """OpenTelemetry export when configured (`telemetry:` or OTEL_EXPORTER_OTLP_*); see prober/telemetry."""
        settings = telemetry_settings(self.config.telemetry, os.environ)
        if settings is None:
            return
        identity = f"{socket.gethostname()}:{self.options.db.resolve()}"
        instance = str(uuid.uuid5(uuid.NAMESPACE_URL, identity))  # stable across restarts of this daemon
        self.telemetry = start_exporter(settings, location=self.options.location, instance_id=instance)
        self.runner.tracing = settings.traces
        self.runtime.otel_dropped = lambda: self.telemetry.dropped if self.telemetry is not None else {}
        log.info(
            "exporting to OpenTelemetry",
            extra={"fields": {"traces": settings.traces, "metrics": settings.metrics}},
        )

    @property
    def push_stats(self) -> dict[str, PushStats] | None:
        """An agent's push counters by hub (None on a hub): the `hub` label of prober_push_* in /metrics."""
        if not self.pushers:
            return None
        return {pusher.hub: pusher.stats for pusher in self.pushers}

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGTERM, self.stop)
            loop.add_signal_handler(signal.SIGINT, self.stop)
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload("SIGHUP")))
        except (NotImplementedError, RuntimeError):  # not the main thread (tests) or not Unix
            log.debug("signal handlers not installed")

    def _remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)

    async def _start_api(self) -> Any:
        if not self.options.listen:
            return None
        from aiohttp import web

        from prober.api import create_app
        from prober.api.connections import DEFAULT_HEADER_TIMEOUT, GuardedSite

        assert self.store is not None
        host, _, port = self.options.listen.rpartition(":")
        app = create_app(self, title=self.config.status_page.title)
        # Idle keep-alive connections are closed as soon as a new connection needs their place, and after
        # the header timeout otherwise (aiohttp's default keeps them 75 s).
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=DEFAULT_HEADER_TIMEOUT)
        await runner.setup()
        # Bounded connections, a header timeout and descriptors kept for probing (prober.api.connections).
        await GuardedSite(runner, host.strip("[]") or "127.0.0.1", int(port)).start()
        return runner

    # ---- checks ----------------------------------------------------------------------------------

    def _my_checks(self, config: Config | None = None) -> list[CheckSpec]:
        specs = (config or self.config).select(location=self.options.location)
        if self.options.shard is not None:
            index, count = self.options.shard
            specs = [spec for spec in specs if _shard_of(spec.name, count) == index - 1]
        return specs

    async def _run_check(self, spec: CheckSpec, scheduled_at: datetime) -> None:
        result = await self.runner.run(spec)
        if self.telemetry is not None:  # what this process measured (an agent exports its own runs)
            target = getattr(spec.probe, "target", None)
            self.telemetry.submit(result, target(spec.model) if target is not None else None)
        await self.accept(result, park=True)

    async def accept(self, result: Result, *, park: bool = False) -> bool:
        """One result from any location: commit it, then let alerts see it. Used for ingest too.

        Returns False for a result already stored (an agent retrying a push); alerts never see it twice.
        An agent (push_url set) only commits: the pusher sends the result on, and the hub alerts.
        `park` (the daemon's own runs): while the database refuses writes the result waits in memory and the
        alerts see it at once; ingest does not park, so a failing hub answers 503 and the agent keeps it.
        """
        assert self.store is not None
        if not await self.store.write(result, park=park):
            return False
        if self.pusher is None:
            await self._observe(result)
        return True

    async def accept_ping(self, ping: Ping) -> bool:
        """A heartbeat ping (prober.api.ping): commit it, pass it on to the peer hubs, and measure its check at
        once (a /fail turns it down now, not at the next run). False if this ping id was already stored."""
        assert self.store is not None
        if not await self.store.write_ping(ping):
            return False
        spec = self._spec(ping.check)
        probe = passive(spec.probe, "ping") if spec is not None else None
        if spec is None or probe is None:
            return True
        if self.ping_forwarder is not None:
            self.ping_forwarder.send(ping, probe.inbound_token(spec.model))
        if self.options.location not in spec.model.locations:
            return True
        if ping.check in self._ping_runs:  # measured again once the run going on ends
            self._pinged_again.add(ping.check)
        else:
            task = asyncio.create_task(self._measure_pinged(ping.check), name=f"prober-ping {spec.name}")
            self._ping_runs[ping.check] = task
            task.add_done_callback(lambda done: self._ping_ran(ping.check, done))
        return True

    async def _measure_pinged(self, check: str) -> None:
        while True:
            self._pinged_again.discard(check)
            spec = self._spec(check)
            if spec is None:
                return
            await self._run_check(spec, datetime.now(UTC))
            if check not in self._pinged_again:
                return

    def _ping_ran(self, check: str, task: asyncio.Task[None]) -> None:
        if self._ping_runs.get(check) is task:
            del self._ping_runs[check]
        if not task.cancelled() and task.exception() is not None:
            log.error("measuring a heartbeat check after a ping failed", exc_info=task.exception(),
                      extra={"fields": {"check": check}})  # fmt: skip

    async def accept_many(self, results: Sequence[Result]) -> int:
        """An ingested batch: commit it in one transaction, then let alerts see the new results, each check's
        oldest first, committing every alert change of the batch together. Returns how many were new (ids
        already stored are left out, alerts included)."""
        assert self.store is not None
        new = await self.store.write_new(results)
        if not self.pushers:
            await self._observe_many(new)
        return len(new)

    # ---- alerts ----------------------------------------------------------------------------------

    def _restore_alerts(self) -> None:
        """Load alert state and open incidents saved before a restart, so they are neither re-sent nor lost.
        Open incidents go back to the Alertmanager re-sender (unless they opened inside a maintenance window),
        whose first round comes one interval after the start: time for the agents' backlog to arrive."""
        assert self.store is not None
        for check, data in self.store.load_alert_states().items():
            try:
                self._alert_states[check] = self._saved_states[check] = state = CheckAlertState.from_json(data)
            except (KeyError, TypeError, ValueError):
                log.warning(
                    "could not read the saved alert state; starting it afresh", extra={"fields": {"check": check}}
                )
                continue
            self._resend_open(state)

    def _resend_open(self, state: CheckAlertState) -> None:
        incident, spec = state.incident, self._spec(state.check)
        if incident is None or spec is None or self.resender is None:
            return
        _, peers = self._targets(spec)
        if not peers or active_window(self.config.maintenance, state.check, incident.opened_at) is not None:
            return
        transition = Transition(
            "opened", state.check, incident.id, incident.locations, incident.error, incident.started_at,
            incident.opened_at, flapping=incident.flapping, recent_incidents=incident.recent_incidents,
        )  # fmt: skip
        self.resender.firing(state.check, peers, self._alert(spec, transition))

    def _configured_urls(self) -> list[str]:
        """Every notifier target: Apprise URLs and `alertmanager+<peer>` targets."""
        found: list[str] = []
        for notifier in self.config.notifiers.values():
            found.extend(url for url in notifier.urls if url.strip())
            found.extend(alertmanager.target(peer) for peer in notifier.alertmanager)
        return found

    def _targets(self, spec: CheckSpec) -> tuple[list[str], list[str]]:
        """The check's Apprise URLs and Alertmanager peers, each once."""
        urls: dict[str, None] = {}
        peers: dict[str, None] = {}
        for name in spec.model.alert.notify:
            notifier = self.config.notifiers[name]
            urls.update((url, None) for url in notifier.urls if url.strip())
            peers.update((peer, None) for peer in notifier.alertmanager)
        return list(urls), list(peers)

    def _alert(self, spec: CheckSpec, transition: Transition) -> dict[str, Any]:
        """The Alertmanager alert of a transition: the same labels on every hub."""
        model = spec.model
        labels = alertmanager.alert_labels(spec.name, model.group, spec.type, model.alert.labels)
        page = alertmanager.page_url(self.config.status_page.url, spec.name)
        return alertmanager.build_alert(transition, labels=labels, page_url=page)

    async def _resend_outbox(self) -> None:
        """Queue every message a previous run committed but did not finish delivering, oldest first per URL.
        A message whose URL is no longer configured is recorded as abandoned and removed."""
        assert self.store is not None
        rows = await self.store.pending_notifications()
        if not rows:
            return
        urls = await asyncio.to_thread(lambda: {url_key(url): url for url in self._configured_urls()})
        gone: list[int] = []
        for row in rows:
            url = urls.get(row.url_key)
            message = Message(row.kind, row.title, row.body, row.check, row.incident_key)  # type: ignore[arg-type]
            if url is None:
                gone.append(row.id)
                log.error(
                    "abandoned a notification from before the restart: its notifier URL is no longer configured",
                    extra={"fields": {"title": row.title, "url": row.url, "check": row.check}},
                )
                await self.store.record_delivery(
                    None, row.incident_key, _attempt_row(row.check, row.kind, row.url, row.attempts, "abandoned",
                    "abandoned: the notifier URL is no longer configured", datetime.now(UTC)), finished=True
                )  # fmt: skip
                continue
            created = datetime.fromisoformat(row.created_at.replace("Z", "+00:00"))
            self.notifier.enqueue(message, url, outbox_id=row.id, created_at=created)
        if gone:
            await self.store.forget_notifications(gone)
        log.info(
            "sending notifications left undelivered before the restart",
            extra={"fields": {"pending": len(rows) - len(gone), "abandoned": len(gone)}},
        )

    def _spec(self, check: str) -> CheckSpec | None:
        return self._specs_by_name.get(check)

    def _use_config(self, config: Config) -> None:
        self.config = config
        self._specs_by_name = {spec.name: spec for spec in config.checks}
        LOG_SECRETS.add_secrets(config_secrets(config))  # also checks run only by agents, and ingest tokens
        # Thousands of long-lived check objects make full GC passes stall the loop for 100+ ms; freezing them
        # keeps start lag low (measured in tests/bench/bench_scheduler.py).
        gc.collect()
        gc.freeze()

    async def _observe(self, result: Result) -> None:
        spec = self._spec(result.check)
        if spec is None:
            return
        async with self._alert_lock:
            state = self._alert_states.get(result.check) or CheckAlertState(check=result.check)
            in_maintenance = active_window(self.config.maintenance, result.check, result.started_at) is not None
            state, transitions = observe(
                state, result.status, result.location, result.started_at, result.error, spec.model.alert, in_maintenance
            )
            await self._apply(spec, state, transitions)

    async def _observe_many(self, results: Sequence[Result]) -> None:
        """`_observe` for a batch: the state machine runs per result, in memory; the changed checks' steps are
        then queued together, so the writer commits them in one transaction."""
        by_check: dict[str, list[Result]] = {}
        for result in results:
            by_check.setdefault(result.check, []).append(result)
        maintenance = self.config.maintenance
        async with self._alert_lock:
            steps = []
            for check, items in by_check.items():
                spec = self._spec(check)
                if spec is None:
                    continue
                policy = spec.model.alert
                state = self._alert_states.get(check) or CheckAlertState(check=check)
                transitions: list[Transition] = []
                for result in sorted(items, key=lambda item: item.started_at) if len(items) > 1 else items:
                    in_maintenance = (
                        bool(maintenance) and active_window(maintenance, check, result.started_at) is not None
                    )
                    state, found = observe(
                        state, result.status, result.location, result.started_at, result.error, policy, in_maintenance
                    )
                    transitions.extend(found)
                if not transitions and _same_after_restart(self._saved_states.get(check), state):
                    self._alert_states[check] = state  # what _apply would do: no task for nothing to write
                    continue
                steps.append(self._apply(spec, state, transitions))
            if steps:
                await asyncio.gather(*steps)

    async def _apply(self, spec: CheckSpec, state: CheckAlertState, transitions: list[Transition]) -> None:
        """Commit the new alert state, its incident changes and its messages in one transaction, then hand
        the messages (with their outbox ids) to the notifier."""
        assert self.store is not None
        self._alert_states[spec.name] = state
        if not transitions and _same_after_restart(self._saved_states.get(spec.name), state):
            return  # an up result of a healthy check: only its up streak grew, which no decision reads
        changes = [
            IncidentChange(t.kind, t.incident_id, t.locations, t.error, t.started_at, t.ended_at or t.at)
            for t in transitions
        ]
        queued: list[tuple[Message, str]] = []
        urls, peers = self._targets(spec)
        alerts: list[tuple[Transition, dict[str, Any]]] = []
        for transition in transitions:
            if transition.notify:
                message = format_message(transition)
                queued.extend((message, url) for url in urls)
                if peers and transition.kind in ("opened", "resolved"):  # repeats: Alertmanager's repeat_interval
                    alert = self._alert(spec, transition)
                    alerts.append((transition, alert))
                    am_message = alertmanager.message_for(transition, alert)
                    queued.extend((am_message, alertmanager.target(peer)) for peer in peers)
        entries = [
            OutboxEntry(url, redact_url(url), m.kind, m.check, m.incident_id, m.title, m.body) for m, url in queued
        ]
        ids: list[int | None]
        try:
            now = datetime.now(UTC)
            ids = list(await self.store.apply_transition(spec.name, state.to_json(), changes, entries, now))
            self._saved_states[spec.name] = state
        except StoreError as exc:
            if not transitions:
                return  # the writer logs failing writes (once a minute); the state is kept in memory
            # The page matters more than the record: send from memory (lost if prober dies before delivery).
            log.error(
                "could not commit an incident change; its notifications are sent from memory",
                extra={"fields": {"check": spec.name, "error": str(exc)}},
            )
            ids = [None] * len(queued)
        for (message, url), outbox_id in zip(queued, ids, strict=True):
            self.notifier.enqueue(message, url, outbox_id=outbox_id)
        if self.resender is not None:
            for transition, alert in alerts:
                if transition.kind == "opened":
                    self.resender.firing(spec.name, peers, alert)
                else:
                    self.resender.resolved(spec.name, peers, alert)
            if any(t.kind == "resolved" and not t.notify for t in transitions):
                self.resender.forget(spec.name)  # resolved silently (maintenance): nothing more is sent
        for transition in transitions:
            log.info(
                f"incident {transition.kind}",
                extra={
                    "fields": {
                        "check": spec.name,
                        "locations": ",".join(transition.locations),
                        "error": transition.error,
                        "notify": transition.notify,
                    }
                },
            )

    async def _record_notification(self, attempt: DeliveryAttempt) -> None:
        """Store every delivery attempt (the notifier itself logs them, redacted); the final one also removes
        the message from the outbox, in the same transaction."""
        assert self.store is not None
        row = _attempt_row(
            attempt.check, attempt.kind, attempt.url, attempt.attempt, attempt.outcome, attempt.error, attempt.at
        )
        try:
            await self.store.record_delivery(attempt.outbox_id, attempt.incident_id, row, finished=attempt.final)
        except StoreError as exc:  # the disk is full: one line, no traceback (the writer says why, once a minute)
            log.error(
                "could not record a notification attempt",
                extra={"fields": {"check": attempt.check, "url": redact_url(attempt.url), "error": str(exc)}},
            )

    async def _tick(self) -> None:
        """Repeat reminders for long incidents; runs on its own so probing never waits for it."""
        while True:
            await asyncio.sleep(self.options.tick_interval)
            now = datetime.now(UTC)
            async with self._alert_lock:
                for check, state in list(self._alert_states.items()):
                    spec = self._spec(check)
                    if spec is None or not spec.model.alert.repeat:
                        continue
                    in_maintenance = active_window(self.config.maintenance, check, now) is not None
                    new_state, transitions = due_repeats(state, now, spec.model.alert, in_maintenance=in_maintenance)
                    if transitions:
                        await self._apply(spec, new_state, transitions)

    async def _prune_loop(self) -> None:
        assert self.store is not None
        while True:
            try:
                counts = await self.store.prune(self.config.retention, datetime.now(UTC))
                counts["artifacts"] = await asyncio.to_thread(
                    prune_artifacts, self.runner.artifacts_dir, self.config.retention.raw
                )
                log.debug("pruned", extra={"fields": counts})
            except Exception:
                log.exception("pruning old results failed")
            await asyncio.sleep(self.options.prune_interval)

    async def _forget_removed_locations(self) -> None:
        """After a reload, locations a check no longer runs at stop counting towards its incidents."""
        now = datetime.now(UTC)
        async with self._alert_lock:
            for spec in self.config.checks:
                state = self._alert_states.get(spec.name)
                if state is None:
                    continue
                in_maintenance = active_window(self.config.maintenance, spec.name, now) is not None
                new_state, transitions = forget_locations(
                    state, set(spec.model.locations), now, spec.model.alert, in_maintenance
                )
                if new_state != state or transitions:
                    await self._apply(spec, new_state, transitions)

    # ---- reload ----------------------------------------------------------------------------------

    def _stamp(self) -> tuple[tuple[str, float, int], ...]:
        files, _ = collect_files(self.options.paths)
        stamp = []
        for path in files:
            try:
                info = path.stat()
            except OSError:
                continue
            stamp.append((str(path), info.st_mtime, info.st_size))
        return tuple(stamp)

    async def _watch_files(self) -> None:
        while True:
            await asyncio.sleep(self.options.watch_interval)
            stamp = await asyncio.to_thread(self._stamp)
            if stamp != self._file_stamp:
                self._file_stamp = stamp
                await self.reload("file change")

    async def reload(self, reason: str) -> bool:
        """Load the definitions again; a valid set replaces the old, an invalid one is refused and logged."""
        try:
            config = await asyncio.to_thread(load_config, self.options.paths)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error(f"reload refused: {problem}", extra={"fields": {"reason": reason}})
            log.error("the new definitions are invalid; the previous ones keep running")
            return False
        self._use_config(config)
        self.scheduler.replace(self._my_checks(config))
        await self._forget_removed_locations()
        log.info("definitions reloaded", extra={"fields": {"reason": reason, "checks": len(self._my_checks())}})
        return True


def _attempt_row(
    check: str | None, kind: str, url: str, attempt: int, outcome: str, error: str | None, at: datetime
) -> dict[str, Any]:
    return {
        "check": check,
        "kind": kind,
        "url": url,
        "attempt": attempt,
        "ok": int(outcome == "delivered"),
        "outcome": outcome,
        "error": error,
        "at": format_timestamp(at.astimezone(UTC)),
    }


def _quiet(location: LocationState) -> bool:
    """Up with nothing pending: not counting as down and no down run since the last good one."""
    return not location.down and not location.downs


def _same_after_restart(saved: CheckAlertState | None, state: CheckAlertState) -> bool:
    """True when restarting from `saved` decides exactly as from `state`: they differ at most in the up streak
    (`ups`) of quiet locations, which only counts towards recovery of a location that is down. Skipping
    those writes saves a transaction per healthy result; every change that matters is still committed
    before the notifier is handed anything."""
    if saved is None or saved.incident != state.incident or saved.recent_opens != state.recent_opens:
        return False
    if saved.locations.keys() != state.locations.keys():
        return False
    for name, location in state.locations.items():
        before = saved.locations[name]
        if location != before and not (_quiet(location) and _quiet(before)):
            return False
    return True


def _shard_of(name: str, count: int) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count
