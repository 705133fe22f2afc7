"""The SQLite store: the one place results, state, incidents and notification attempts are written.

    store = Store("prober.db")          # opens or creates the file, applies migrations (blocking, once)
    await store.start()                 # starts the single writer task
    await store.write(result)           # returns once the result is COMMITTED
    store.current(); store.uptime("api-health", 86400); store.latency_percentiles("api-health", 86400)
    await store.close()                 # commits what is queued, stops the writer, closes the file

Or `async with Store(path) as store:`; a reader that never writes (`prober status`) may use a plain
`with Store(path, create=False) as store:` and never start the writer.

One file in WAL mode. Writes go through one writer task that batches every queued operation into one
transaction on its own thread; reads use a second connection and never block it. Raw results are stored
in the compact encoding of codec.py (result_rows; `results` is a view with the columns of schema version 2);
other times are ISO 8601 UTC text (sortable), other JSON columns compact JSON. Nothing outside this package writes the
database, and this package never sends, schedules or judges anything.

Errors: StoreError (opening, migrating, writing failed; the message names the file and the cause).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlite_utils import Database

from prober.config.models import RetentionConfig
from prober.pings import Ping
from prober.results import STATUSES, Result, format_timestamp
from prober.store.check_queries import CheckReader
from prober.store.outbox import (
    IncidentChange,
    OutboxEntry,
    OutboxRow,
    delivery_op,
    forget_op,
    pending_op,
    transition_op,
)
from prober.store.pings import write_op as write_ping_op
from prober.store.push import PendingIds, PushCursor, save_cursor_op
from prober.store.queries import CurrentState, Incident, Notification, Rollup
from prober.store.retention import DEFAULT_BATCH
from prober.store.retention import prune as _prune
from prober.store.rollups import BUCKET_BOUNDS
from prober.store.schema import (
    SCHEMA_VERSION,
    StoreError,
    Synchronous,
    migrate,
    open_read_connection,
    open_write_connection,
)
from prober.store.writer import EncodedResult, WriteHealth, Writer, WriterStats, encode_result, to_json

__all__ = [
    "BUCKET_BOUNDS",
    "SCHEMA_VERSION",
    "CurrentState",
    "Incident",
    "IncidentChange",
    "Notification",
    "OutboxEntry",
    "OutboxRow",
    "PendingIds",
    "PushCursor",
    "ReadOnlyStore",
    "Rollup",
    "Store",
    "StoreError",
    "WriterStats",
]


def _now() -> str:
    return format_timestamp(datetime.now(UTC))


class ReadOnlyStore(CheckReader):
    """What a reader of a running store may use: every query (Reader and CheckReader, methods all) and the
    writer's counters, no write.
    The HTTP API is typed against this, so it cannot write by construction (prober.api.source)."""

    @property
    def stats(self) -> WriterStats:
        """Commits, results written, duplicates ignored, largest batch, time spent committing."""
        raise NotImplementedError

    @property
    def write_health(self) -> WriteHealth:
        """Whether the database takes writes, since when it does not, and results held in memory meanwhile."""
        raise NotImplementedError

    @property
    def queued(self) -> int:
        """Write operations waiting for the writer's next transaction."""
        raise NotImplementedError


class Store(ReadOnlyStore):
    """The database of one prober. Implements prober.probes.base.StateStore (`load` / `save`).

    Read methods (inherited from Reader: `current`, `checks`, `results`, `result`, `uptime`, `uptimes`,
    `latency_percentiles`, `rollups`, `incidents`, `incident`, `notifications`, `load_alert_states`; and from
    CheckReader the check page's `hourly_rows`, `raw_points`, `failed_results` ...) are synchronous, quick and
    thread-safe. Write methods are coroutines that return after COMMIT.
    """

    def __init__(self, path: str | Path, *, synchronous: Synchronous = "FULL", create: bool = True) -> None:
        self.path = Path(path)
        db = open_write_connection(self.path, synchronous=synchronous, create=create)
        try:
            migrate(db, self.path)
            reader = open_read_connection(self.path)
        except BaseException:
            db.close()
            raise
        super().__init__(reader)
        self._writer = Writer(db, self.path)
        self._unsaved_state: dict[tuple[str, str], dict[str, Any]] = {}
        """Probe states the database refused while it refused writes (one per check+location)."""
        opened = self.path.stat()
        self.file_identity: tuple[int, int] = (opened.st_dev, opened.st_ino)
        """(device, inode) of the file opened, so /healthz notices the file replaced under the daemon."""

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer task in the running event loop. Writes before this raise StoreError."""
        await self._writer.start()

    async def close(self) -> None:
        """Commit everything queued, stop the writer, close both connections. Idempotent."""
        try:
            await self._writer.close()
        finally:
            self._close_reader()

    async def __aenter__(self) -> Store:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """For read-only use without an event loop; the writer must not have been started."""
        try:
            self._writer.close_now()
        finally:
            self._close_reader()

    @property
    def stats(self) -> WriterStats:
        """Commits, results written, duplicates ignored, largest batch, time spent committing."""
        return self._writer.stats

    @property
    def write_health(self) -> WriteHealth:
        """Whether the database takes writes, since when it does not, and results held in memory meanwhile."""
        return self._writer.health

    @property
    def queued(self) -> int:
        """Write operations waiting for the writer's next transaction."""
        return self._writer.queued

    # --- results ---------------------------------------------------------------------------------------

    async def write(self, result: Result, *, park: bool = False) -> bool:
        """Store one result; return once it is committed. False when its id was already stored (then nothing
        changes). Many concurrent callers share one transaction. If the caller is cancelled after calling,
        the result may still be committed. With `park`, a result the database refuses (disk full, read-only)
        is held in memory and committed once it takes writes again; it then counts as new."""
        return await self._writer.write_results([self._encode(result)], park=park) == 1

    async def write_many(self, results: Iterable[Result]) -> int:
        """Store results in one transaction (an agent's push); ids already stored are ignored. Return how
        many were new."""
        return await self._writer.write_results([self._encode(result) for result in results])

    async def write_new(self, results: Sequence[Result]) -> list[Result]:
        """Store results in one transaction (an ingested batch, shared with whatever else is queued); return
        those that were new, in the order given. Ids already stored, or given twice, are stored once."""
        encoded = [self._encode(result) for result in results]
        new = set(await self._writer.write_new(encoded))
        fresh: list[Result] = []
        for result in results:
            if result.id in new:
                new.discard(result.id)
                fresh.append(result)
        return fresh

    @staticmethod
    def _encode(result: Result) -> EncodedResult:
        if result.status not in STATUSES:
            raise ValueError(
                f"result {result.id} of check {result.check} has status {result.status!r}; "
                "it must be up, degraded or down"
            )
        return encode_result(result)

    # --- state the probes keep between runs (StateStore) -----------------------------------------------

    async def load(self, check: str, location: str) -> dict[str, Any] | None:
        unsaved = self._unsaved_state.get((check, location))
        return dict(unsaved) if unsaved is not None else self.load_probe_state(check, location)

    async def save(self, check: str, location: str, state: dict[str, Any]) -> None:
        """Keep a probe's state for its next run. While the database refuses writes (disk full) the state is
        kept in memory instead, so the probe carries on rather than failing on the store's trouble; the next
        save after recovery writes it. (Lost if prober dies meanwhile: the probe then starts afresh.)"""
        try:
            await self._save_state(check, location, state)
        except StoreError:
            if self._writer.health.failing_since is None:
                raise
            self._unsaved_state[(check, location)] = dict(state)
        else:
            self._unsaved_state.pop((check, location), None)

    async def _save_state(self, check: str, location: str, state: dict[str, Any]) -> None:
        row = (check, location, to_json(state), _now())

        def op(db: Database) -> None:
            db.execute(
                'INSERT INTO probe_state ("check", location, state, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT '
                '("check", location) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at',
                row,
            )

        await self._writer.run(op)

    # --- heartbeat pings (prober.store.pings) -----------------------------------------------------------

    async def write_ping(self, ping: Ping) -> bool:
        """Store one ping; return once it is committed. False when its id was already stored (a peer's copy
        arriving twice): then nothing changes."""
        return await self._writer.run(write_ping_op(ping))

    async def recent_pings(self, check: str, limit: int) -> list[Ping]:
        """The check's newest pings, newest first (prober.probes.base.PingLog, which heartbeat probes read)."""
        return self.pings(check, limit)

    # --- alerting --------------------------------------------------------------------------------------

    async def apply_transition(
        self,
        check: str,
        state: dict[str, Any] | None,
        changes: Sequence[IncidentChange],
        entries: Sequence[OutboxEntry],
        now: datetime,
    ) -> list[int]:
        """One alert step in ONE transaction: the check's alert state, its incident rows (by the engine's
        incident key) and an outbox row per message and URL. Return the outbox ids, in `entries` order."""
        return await self._writer.run(transition_op(check, state, changes, entries, now))

    async def record_delivery(
        self,
        outbox_id: int | None,
        incident_key: str | None,
        row: dict[str, Any],
        *,
        finished: bool,
    ) -> None:
        """Record a delivery attempt (notifications columns but incident_id, URL already redacted); when the
        message is finished, its outbox row goes in the same transaction."""
        await self._writer.run(delivery_op(outbox_id, incident_key, row, finished=finished))

    async def pending_notifications(self) -> list[OutboxRow]:
        """Outbox rows not yet delivered nor given up, oldest first (read on the write connection)."""
        return await self._writer.run(pending_op)

    async def forget_notifications(self, ids: Sequence[int]) -> int:
        return await self._writer.run(forget_op(ids))

    # --- an agent's push cursor (prober.store.push) -----------------------------------------------------

    async def save_push_cursor(self, hub: str, location: str, cursor: PushCursor, confirmed: int = 0) -> None:
        """Move the push cursor of (hub, location) to `cursor` and add `confirmed` results to its count."""
        await self._writer.run(save_cursor_op(hub, location, cursor, confirmed, datetime.now(UTC)))

    # --- retention -------------------------------------------------------------------------------------

    async def prune(
        self, retention: RetentionConfig, now: datetime | None = None, *, batch: int = DEFAULT_BATCH
    ) -> dict[str, int]:
        """Delete raw results and state older than retention.raw, rollups, resolved incidents and
        notifications older than retention.rollup, `batch` rows per transaction. Return rows deleted per
        table (results, current_state, probe_state, rollups_hourly, rollups_daily, incidents, notifications)."""
        return await _prune(self._writer, retention, now if now is not None else datetime.now(UTC), batch=batch)
