"""The single writer: one asyncio task owning the write connection, committing work in batches.

Every change to the database goes through the writer (`write_results`, or `run(fn)` for anything
else): callers put an operation on a queue and await a future. The writer task takes everything queued
(up to a bound), runs it in ONE transaction on its own thread (a single-thread executor, so the event
loop never waits on SQLite), and only after COMMIT resolves the callers' futures. So `await
store.write(result)` returning means the result is on disk, and a hundred concurrent writes cost one
commit, not a hundred.

Inserting results also updates, in the same transaction, the current state of the result's check and
location (only when the result is not older than the one already there: agents push late) and the
hourly rollups (always, once per new result: a duplicate id is ignored and counted nowhere).

When a batch fails, it is rolled back and each operation is retried in a transaction of its own, so one
bad operation fails only its own caller.

When the database itself refuses writes (disk full, read-only, I/O error, a corrupted file), results written
with `park=True` (the daemon's own runs) are kept in a bounded memory backlog (MAX_BACKLOG_RESULTS, the
oldest dropped beyond it) and their callers are answered as if committed, so probing and alerting go on.
The backlog is committed first, oldest first, as soon as a write succeeds again (retried at least every
`retry_interval`). `health` says whether writes fail and since when (for /healthz); the error is logged
once per minute with a count, not once per write. This module never reads on behalf of the API; queries.py does,
on another connection.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database

from prober.daemon.logs import RepeatedError
from prober.results import Result, format_timestamp
from prober.store.codec import (
    SHAPE,
    STATUS_CODES,
    NameTable,
    Shape,
    encode_duration,
    encode_id,
    encode_started,
    encode_values,
    row_values,
    to_json,
)
from prober.store.rollups import UPSERT_ROLLUP_SQL, HourlyDelta, hour_key, latency_of
from prober.store.schema import StoreError

__all__ = [
    "EncodedResult",
    "WriteHealth",
    "Writer",
    "WriterStats",
    "encode_result",
    "storage_failure",
    "to_json",
    "utc",
]

log = logging.getLogger("prober.store")

T = TypeVar("T")

MAX_BATCH_OPS = 1000
"""At most this many queued operations share one transaction ..."""
MAX_BATCH_RESULTS = 5000
"""... and at most about this many results (one `write_many` may exceed it on its own)."""
MAX_BACKLOG_RESULTS = 20_000
"""Results kept in memory while the database refuses writes (about 1 KB each)."""


def storage_failure(error: BaseException | None) -> bool:
    """Whether `error` says the database cannot take writes at all (disk full, read-only, I/O error,
    corruption), rather than that one operation was wrong (a constraint, a bad value)."""
    if isinstance(error, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return False
    return isinstance(error, sqlite3.OperationalError | sqlite3.DatabaseError | OSError)


@dataclass(slots=True)
class WriteHealth:
    """Whether the database takes writes; read by /healthz."""

    failing_since: datetime | None = None
    last_error: str | None = None
    failures: int = 0
    """Failed write transactions since writes began failing."""
    held: int = 0
    """Results kept in memory, waiting for the database."""
    dropped: int = 0
    """Results dropped because the memory backlog was full (since start)."""


def utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class EncodedResult:
    """A Result turned into column values, done by the caller so the writer thread only runs SQL (and
    looks up name ids). See prober.store.codec for the encoding of result_rows."""

    id: str
    uid: bytes | str
    check: str
    location: str
    type: str
    started_at: str
    started: datetime
    started_ms: int
    status: str
    duration_ms: float
    error: str | None
    shape: Shape
    values: str
    """The metrics as a JSON array in the shape's order (result_rows.metrics and current_state.metrics)."""
    failed: int
    extra: str | None
    artifacts: str | None
    details: str | None
    latency: float

    def row(self, resolve: Callable[[int, str], int]) -> tuple[Any, ...]:
        return row_values(
            self.uid,
            (self.check, self.location, self.type),
            self.started_ms,
            STATUS_CODES[self.status],
            encode_duration(self.duration_ms),
            self.shape,
            self.values,
            self.failed,
            self.extra,
            (self.error, self.artifacts, self.details),
            resolve,
        )


def _timestamp(moment: datetime) -> str:
    """`format_timestamp` of a UTC datetime, through datetime's C isoformat (a third of the time of strftime)."""
    if moment.year < 1000:  # strftime and isoformat pad such years differently: keep format_timestamp's
        return format_timestamp(moment)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


@functools.lru_cache(maxsize=4096)
def _hour_text(hour: int) -> str:
    """The rollups' `hour` key of the `hour`-th hour since 1970 (rollups.hour_key, computed once per hour)."""
    return hour_key(datetime.fromtimestamp(hour * 3600, UTC))


def encode_result(result: Result) -> EncodedResult:
    started = utc(result.started_at)
    duration = float(result.duration_ms)
    if not math.isfinite(duration):
        raise ValueError(f"result {result.id} of check {result.check} has a duration_ms of {duration!r}")
    shape, values, failed, extra = encode_values(result.metrics, result.assertions)
    return EncodedResult(
        id=result.id,
        uid=encode_id(result.id),
        check=result.check,
        location=result.location,
        type=result.type,
        started_at=_timestamp(started),
        started=started,
        started_ms=encode_started(started),
        status=result.status,
        duration_ms=duration,
        error=result.error,
        shape=shape,
        values=values,
        failed=failed,
        extra=extra,
        artifacts=to_json(result.artifacts) if result.artifacts else None,
        details=to_json(result.details) if result.details else None,
        latency=latency_of(result.metrics, duration),
    )


_INSERT_RESULT_SQL = (
    "INSERT INTO result_rows (uid, check_id, started, location_id, type_id, status, duration, shape_id, metrics, "
    "failed, extra, error, artifacts, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (uid) DO NOTHING"
)
_SELECT_CURRENT_SQL = (
    'SELECT status, started_at, consecutive_down, consecutive_ok, last_change FROM current_state WHERE "check" = ? '
    "AND location = ?"
)
_UPSERT_CURRENT_SQL = (
    'INSERT INTO current_state ("check", location, type, status, started_at, duration_ms, error, metrics, '
    "result_id, consecutive_down, consecutive_ok, last_change, shape_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    'ON CONFLICT ("check", location) DO UPDATE SET type = excluded.type, status = excluded.status, '
    "started_at = excluded.started_at, duration_ms = excluded.duration_ms, error = excluded.error, "
    "metrics = excluded.metrics, shape_id = excluded.shape_id, result_id = excluded.result_id, "
    "consecutive_down = excluded.consecutive_down, "
    "consecutive_ok = excluded.consecutive_ok, last_change = excluded.last_change"
)


def _insert_results(db: Database, names: NameTable, results: Iterable[EncodedResult]) -> list[EncodedResult]:
    """Insert, skipping ids already stored; return the results that are new."""
    connection = db.conn

    def resolve(kind: int, name: str) -> int:
        return names.resolve(connection, kind, name)

    batch = list(results)
    if len(batch) < _SMALL:  # the daemon's own results come one or a few at a time
        return [r for r in batch if connection.execute(_INSERT_RESULT_SQL, r.row(resolve)).rowcount == 1]
    # a batch (ingest): one query finds the ids already stored, one executemany inserts the rest
    stored: set[bytes | str] = set()
    for start in range(0, len(batch), _CHUNK):
        uids = [result.uid for result in batch[start : start + _CHUNK]]
        sql = f"SELECT uid FROM result_rows WHERE uid IN ({', '.join('?' * len(uids))})"
        stored.update(row[0] for row in connection.execute(sql, uids))
    new: list[EncodedResult] = []
    for result in batch:
        if result.uid not in stored:
            stored.add(result.uid)  # the same id twice in the batch: the first one counts
            new.append(result)
    connection.executemany(_INSERT_RESULT_SQL, [result.row(resolve) for result in new])
    return new


_SMALL = 8
"""Fewer results than this are inserted one statement each (rowcount says which were new)."""
_CHUNK = 500
"""Ids or keys per `IN (...)` query (SQLite allows 32766 parameters)."""


def _current_states(connection: Any, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[Any, ...]]:
    """The current state rows (status, started_at, consecutive_down, consecutive_ok, last_change) of these
    (check, location) keys, in one query per _CHUNK keys."""
    found: dict[tuple[str, str], tuple[Any, ...]] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        sql = (
            'SELECT "check", location, status, started_at, consecutive_down, consecutive_ok, last_change '
            f'FROM current_state WHERE ("check", location) IN (VALUES {", ".join(["(?, ?)"] * len(chunk))})'
        )
        for row in connection.execute(sql, [part for key in chunk for part in key]):
            found[(row[0], row[1])] = tuple(row[2:])
    return found


def _update_current(db: Database, names: NameTable, results: list[EncodedResult]) -> None:
    """Move each check+location's current state forward through its new results, oldest first. The
    metrics are kept as in result_rows: the values array and its shape's id."""
    states: dict[tuple[str, str], tuple[Any, ...] | None] = {}
    changed: dict[tuple[str, str], tuple[Any, ...]] = {}
    if len(results) >= _SMALL:
        keys = list(dict.fromkeys((result.check, result.location) for result in results))
        states.update(dict.fromkeys(keys))
        states.update(_current_states(db.conn, keys))
    for result in sorted(results, key=lambda item: item.started_at):
        key = (result.check, result.location)
        if key not in states:
            states[key] = db.execute(_SELECT_CURRENT_SQL, key).fetchone()
        previous = states[key]
        if previous is not None and result.started_at < previous[1]:
            continue  # a late result (an agent's retried push): history and rollups only
        down = result.status == "down"
        if previous is None:
            consecutive_down, consecutive_ok, last_change = int(down), int(not down), result.started_at
        else:
            status, _, previous_down, previous_ok, previous_change = previous
            consecutive_down = previous_down + 1 if down else 0
            consecutive_ok = 0 if down else previous_ok + 1
            last_change = result.started_at if status != result.status else previous_change
        states[key] = (result.status, result.started_at, consecutive_down, consecutive_ok, last_change)
        changed[key] = (
            result.check,
            result.location,
            result.type,
            result.status,
            result.started_at,
            result.duration_ms,
            result.error,
            result.values,
            result.id,
            consecutive_down,
            consecutive_ok,
            last_change,
            names.resolve(db.conn, SHAPE, result.shape.text()),
        )
    db.conn.executemany(_UPSERT_CURRENT_SQL, changed.values())


def _update_rollups(db: Database, results: list[EncodedResult]) -> None:
    """Add the results to their hourly rollups: one upsert per (check, location, hour), all in one call."""
    deltas: dict[tuple[str, str, int], HourlyDelta] = {}
    for result in results:
        key = (result.check, result.location, result.started_ms // 3_600_000)
        delta = deltas.get(key)
        if delta is None:
            delta = deltas[key] = HourlyDelta()
        delta.add(result.status, result.latency)
    db.conn.executemany(
        UPSERT_ROLLUP_SQL,
        (delta.params(check, location, _hour_text(hour)) for (check, location, hour), delta in deltas.items()),
    )


@dataclass(slots=True)
class WriterStats:
    """Counters for the daemon's own metrics and the benchmarks."""

    commits: int = 0
    ops: int = 0
    results: int = 0
    """New results committed."""
    duplicates: int = 0
    """Results ignored because their id was already stored."""
    failed_ops: int = 0
    largest_batch: int = 0
    """Most operations committed in one transaction."""
    last_commit_seconds: float = 0.0
    commit_seconds: float = 0.0
    """Total time spent in transactions (the writer thread's busy time)."""


@dataclass(slots=True)
class _Op:
    future: asyncio.Future[Any]
    results: list[EncodedResult] | None = None
    fn: Callable[[Database], Any] | None = None
    park: bool = False
    new_ids: bool = False
    """Answer the ids of the new results rather than their count."""

    @property
    def size(self) -> int:
        return len(self.results) if self.results is not None else 1


_STOP = object()


@dataclass(slots=True)
class _Outcome:
    ok: bool
    value: Any = None
    error: BaseException | None = None


class Writer:
    """Owns the write connection. Start it inside the event loop; close it to flush and stop."""

    def __init__(self, db: Database, path: Path) -> None:
        self._db = db
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prober-store-writer")
        self._queue: asyncio.Queue[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self.stats = WriterStats()
        self.health = WriteHealth()
        self.retry_interval = 1.0
        self._backlog: deque[_Op] = deque()
        self._errors = RepeatedError(log)
        self._names = NameTable()

    @property
    def queued(self) -> int:
        """Operations waiting for the next transaction."""
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        if self._closing:
            raise StoreError(f"the store for {self._path} is closed and cannot be started again")
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(), name="prober-store-writer")

    async def close(self) -> None:
        """Commit everything already queued, stop the task, close the connection. Idempotent."""
        if self._closed:
            return
        self._closing = True
        if self._task is not None and self._queue is not None:
            if not self._task.done():
                self._queue.put_nowait(_STOP)
            await asyncio.wait({self._task})
            if not self._task.cancelled() and self._task.exception() is not None:
                log.error(
                    "the store's writer for %s had stopped on an error", self._path, exc_info=self._task.exception()
                )
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close_connection)
        self._executor.shutdown(wait=True)

    def close_now(self) -> None:
        """Close without an event loop (a Store that was never started)."""
        if self._task is not None and not self._task.done():
            raise StoreError("the store's writer is still running: use `await store.close()`")
        self._closing = self._closed = True
        self._executor.submit(self._close_connection).result()
        self._executor.shutdown(wait=True)

    async def write_results(self, results: list[EncodedResult], *, park: bool = False) -> int:
        """Insert results once committed; return how many were new (not already stored by id). With `park`,
        results the database refuses are kept in memory and committed later (then all count as new)."""
        if not results:
            return 0
        count: int = await self._submit(results=results, park=park)
        return count

    async def write_new(self, results: list[EncodedResult]) -> list[str]:
        """Insert results once committed (one transaction with whatever else is queued); return the ids of those
        that were new, i.e. not already stored. The one duplicate check an ingested batch needs."""
        if not results:
            return []
        found: list[str] = await self._submit(results=results, new_ids=True)
        return found

    async def run(self, fn: Callable[[Database], T]) -> T:
        """Run `fn(db)` inside the next transaction and return its value once committed."""
        value: T = await self._submit(fn=fn)
        return value

    async def _submit(
        self,
        *,
        results: list[EncodedResult] | None = None,
        fn: Callable[[Database], Any] | None = None,
        park: bool = False,
        new_ids: bool = False,
    ) -> Any:
        if self._closing:
            raise StoreError(f"the store for {self._path} is closed; nothing more can be written to it")
        if self._task is None or self._queue is None:
            raise StoreError(f"the store's writer for {self._path} is not running: call `await store.start()` first")
        if self._task.done():
            raise StoreError(f"the store's writer for {self._path} has stopped; nothing more can be written to it")
        op = _Op(future=asyncio.get_running_loop().create_future(), results=results, fn=fn, park=park, new_ids=new_ids)
        self._queue.put_nowait(op)
        return await op.future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        stopping = False
        batch: list[_Op] = []
        try:
            while not stopping:
                if self._backlog:
                    try:
                        first = await asyncio.wait_for(self._queue.get(), self.retry_interval)
                    except TimeoutError:
                        await self._flush_backlog()
                        continue
                    await self._flush_backlog()
                else:
                    first = await self._queue.get()
                batch = []
                size = 0
                item = first
                while True:
                    if item is _STOP:
                        stopping = True
                        break
                    batch.append(item)
                    size += item.size
                    if self._queue.empty() or len(batch) >= MAX_BATCH_OPS or size >= MAX_BATCH_RESULTS:
                        break
                    item = self._queue.get_nowait()
                if not batch:
                    continue
                outcomes = await loop.run_in_executor(self._executor, self._commit, batch)
                for op, outcome in zip(batch, outcomes, strict=True):
                    if not outcome.ok and op.park and op.results is not None and storage_failure(outcome.error):
                        self._hold(op)
                        if not op.future.done():
                            op.future.set_result(len(op.results))
                        continue
                    if op.future.done():  # the caller was cancelled; the work is done all the same
                        continue
                    if outcome.ok:
                        op.future.set_result(outcome.value)
                    else:
                        op.future.set_exception(self._as_store_error(outcome.error))
                # After holding (so the log line counts them), before any caller resumes (they see `health`).
                self._note_health(outcomes)
                batch = []
        finally:
            self._fail_pending(batch)

    def _hold(self, op: _Op) -> None:
        self._backlog.append(op)
        self.health.held += op.size
        while self.health.held > MAX_BACKLOG_RESULTS and len(self._backlog) > 1:
            dropped = self._backlog.popleft()
            self.health.held -= dropped.size
            self.health.dropped += dropped.size
            log.error(
                "the database still refuses writes and %d results are held in memory; dropped the oldest %d",
                MAX_BACKLOG_RESULTS,
                dropped.size,
            )

    async def _flush_backlog(self) -> None:
        """Commit held results, oldest first, while the database takes them."""
        loop = asyncio.get_running_loop()
        while self._backlog:
            chunk: list[_Op] = []
            size = 0
            while self._backlog and size < MAX_BATCH_RESULTS:
                op = self._backlog.popleft()
                chunk.append(op)
                size += op.size
            try:
                await loop.run_in_executor(self._executor, self._commit_together, chunk)
            except Exception as exc:
                self._backlog.extendleft(reversed(chunk))
                self._note_health([_Outcome(ok=False, error=exc)])
                return
            self.health.held -= size
            log.info("committed %d results held in memory while the database refused writes", size)
        self._note_health([])

    def _note_health(self, outcomes: list[_Outcome]) -> None:
        """Track whether the database takes writes: failing while any transaction fails for a storage reason."""
        failures = [o for o in outcomes if not o.ok and storage_failure(o.error)]
        health = self.health
        if failures:
            if health.failing_since is None:
                health.failing_since = datetime.now(UTC)
            health.failures += len(failures)
            health.last_error = str(failures[0].error)
            self._errors.failed(
                f"writes to the database {self._path} fail: {health.last_error}; "
                f"{health.held} results are held in memory until it takes writes again"
            )
        elif health.failing_since is not None and not self._backlog and (not outcomes or any(o.ok for o in outcomes)):
            lasted = (datetime.now(UTC) - health.failing_since).total_seconds()
            self._errors.recovered(
                f"the database {self._path} takes writes again after {lasted:.0f} s and {health.failures} failed writes"
            )
            health.failing_since = None
            health.last_error = None
            health.failures = 0

    def _fail_pending(self, batch: list[_Op]) -> None:
        """The task is ending (cancelled with the loop): no caller may wait forever."""
        pending = list(batch)
        if self._queue is not None:
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not _STOP:
                    pending.append(item)
        for op in pending:
            if not op.future.done():
                op.future.set_exception(
                    StoreError(f"the store's writer for {self._path} stopped before this write was confirmed")
                )

    def _as_store_error(self, error: BaseException | None) -> BaseException:
        if isinstance(error, sqlite3.Error):
            return StoreError(f"could not write to the database {self._path}: {error}")
        return error if error is not None else StoreError("unknown write failure")

    # --- the writer thread -------------------------------------------------------------------------

    def _commit(self, batch: list[_Op]) -> list[_Outcome]:
        """Commit the batch in one transaction; if that fails, each operation in a transaction of its own."""
        try:
            return self._commit_together(batch)
        except Exception as exc:
            alone = len(batch) == 1
            outcomes = [_Outcome(ok=False, error=exc)] if alone else [self._commit_alone(op) for op in batch]
        failed = [outcome for outcome in outcomes if not outcome.ok]
        self.stats.failed_ops += len(failed)
        if failed and not all(storage_failure(outcome.error) for outcome in failed):  # else: _note_health logs
            log.warning(
                "%d of %d writes to %s failed and were rolled back: %s",
                len(failed),
                len(batch),
                self._path,
                failed[0].error,
            )
        return outcomes

    def _commit_alone(self, op: _Op) -> _Outcome:
        try:
            return self._commit_together([op])[0]
        except Exception as exc:
            return _Outcome(ok=False, error=exc)

    def _commit_together(self, batch: list[_Op]) -> list[_Outcome]:
        started = time.perf_counter()
        values = self._transaction(batch)
        elapsed = time.perf_counter() - started
        self.stats.commits += 1
        self.stats.ops += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        self.stats.last_commit_seconds = elapsed
        self.stats.commit_seconds += elapsed
        return [_Outcome(ok=True, value=value) for value in values]

    def _transaction(self, batch: list[_Op]) -> list[Any]:
        db = self._db
        values: list[Any] = []
        new_results: list[EncodedResult] = []
        offered = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for op in batch:
                if op.results is not None:
                    new = _insert_results(db, self._names, op.results)
                    offered += len(op.results)
                    new_results.extend(new)
                    values.append([result.id for result in new] if op.new_ids else len(new))
                else:
                    assert op.fn is not None
                    values.append(op.fn(db))
            if new_results:
                _update_current(db, self._names, new_results)
                _update_rollups(db, new_results)
            db.execute("COMMIT")
        except BaseException:
            self._names.rolled_back()
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._names.committed()
        self.stats.results += len(new_results)
        self.stats.duplicates += offered - len(new_results)
        return values

    def _close_connection(self) -> None:
        try:
            self._db.execute("PRAGMA optimize")
        except sqlite3.Error:
            log.debug("PRAGMA optimize failed on close", exc_info=True)
        self._db.close()
