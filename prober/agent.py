"""Agents (SPEC.md §6): push this prober's results to a hub's `POST /api/v1/ingest`, losing none.

    pusher = Pusher(store, url="https://hub.example.com:8080", token=token, location="eu-west")
    await pusher.start()             # a background task: committed results reach the hub in batches
    await pusher.stop(timeout=5.0)   # one last flush within the bound, then stop

The outbox is the agent's own database. The store commits every result first, exactly as without a hub;
the pusher only reads results and remembers how far the hub has confirmed them, in a small SQLite file of
its own beside the database (`<db>.outbox`): per hub and location, the rowid and id of the last result
the hub confirmed and how many results it confirmed in all. Why this design:
- The store stays the only writer of its database, and nothing is written twice per result. An outbox
  holding copies of results would have to commit together with the store or be reconciled after a crash.
- Rowids of `results` grow in commit order (one writer, one transaction at a time), `started_at` does not
  (a slow check commits after a quick one that started later). "Everything after the cursor" therefore
  never skips a result that committed late. Rows are listed through a read-only (`query_only`)
  connection of our own, and decoded by the store's own `Store.result`.
- If a VACUUM renumbers the rows, the saved id finds the cursor's new place; if the database was emptied
  or replaced (its largest rowid is below the cursor), the cursor starts over. The hub ignores ids it
  already holds, so the worst case is a resend, not a loss. (A VACUUM that also removed the cursor's own
  row, 14 days after the last confirmed push, is the one case that could go unnoticed; the store never
  runs VACUUM.)
- Only results of this agent's location are pushed: a database that was once a hub, or another
  location, also holds results that the hub would refuse with 403. Results pruned by retention before the
  hub confirmed them are gone (the hub unreachable for longer than `retention.raw`, 14 days by default).

Delivery is at least once, and the hub dedupes by result id, so nothing is counted twice. A batch counts as
confirmed only after a 200 whose body is the hub's `{"accepted": n, "duplicates": m}`. An unreachable hub,
a timeout, 408, 425, 429 and 5xx are transient: retried with exponential backoff (by default 1 s doubling
to 60 s, with jitter; a Retry-After is honoured up to that cap). A 413 halves the batch. Other 4xx (401
token, 403 location, 400 invalid, 404 wrong address) and redirects last until someone fixes the
configuration. Each one logs an error that says what to fix, the results stay, and the pusher retries
every `max_delay`.

Alerts are the hub's job. An agent's daemon stores its results but runs no alert state machine, so it never
sends a notification (prober.daemon.Daemon.accept). The hub sees every location and judges quorum.

This module must never write to the store's database, never forget a result the hub has not confirmed, and
never log, store or echo the token (nor credentials in the URL: they are refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from prober.redact import redact_url
from prober.results import Result, format_timestamp
from prober.store import Store, StoreError
from prober.store.queries import result_rowid
from prober.store.schema import open_read_connection
from prober.supervise import Supervisor

__all__ = [
    "INGEST_PATH",
    "OUTBOX_SUFFIX",
    "Outbox",
    "PushSettings",
    "PushStats",
    "Pusher",
    "check_push_url",
    "read_token_file",
]

log = logging.getLogger("prober.agent")

INGEST_PATH = "/api/v1/ingest"
OUTBOX_SUFFIX = ".outbox"
OUTBOX_VERSION = 1
TRANSIENT_STATUSES = frozenset({408, 425, 429})
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class PushSettings:
    """How an agent pushes. The defaults suit production; tests shorten the delays."""

    batch_size: int = 500
    """Results per request at most (a 413 halves it for a while)."""
    min_delay: float = 1.0
    """First wait after a failed push; it doubles per consecutive failure ..."""
    max_delay: float = 60.0
    """... up to this. A failure someone must fix (401, 403, 400) waits this long every time."""
    poll_interval: float = 1.0
    """How often the outbox is looked at when nothing was pending."""
    request_timeout: float = 30.0
    """Seconds one request may take, answer included."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not 0 < self.min_delay <= self.max_delay:
            raise ValueError(f"expected 0 < min_delay <= max_delay, got {self.min_delay} and {self.max_delay}")
        if self.poll_interval <= 0 or self.request_timeout <= 0:
            raise ValueError("poll_interval and request_timeout must be positive")


@dataclass(slots=True)
class PushStats:
    """Counters of one Pusher since it started."""

    sent: int = 0
    """Results in batches the hub confirmed."""
    accepted: int = 0
    """Of those, the ones the hub stored as new ..."""
    duplicates: int = 0
    """... and the ones it already had (a push whose answer was lost, then retried)."""
    batches: int = 0
    failed_attempts: int = 0
    last_error: str | None = None


# ---- options ------------------------------------------------------------------------------------------


def check_push_url(url: str) -> str:
    """The ingest endpoint for a `--push` value (`https://hub:8080` → `https://hub:8080/api/v1/ingest`).

    Raises ValueError saying what is wrong: not http(s), no host, a bad port, credentials, a query.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{redact_url(text)!r} is not a valid URL: {exc}") from None
    example = "like https://hub.example.com:8080"
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"expected the hub's http:// or https:// address, {example}, got {redact_url(text)!r}")
    if not parts.hostname:
        raise ValueError(f"the hub's address has no host name; expected an address {example}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the hub's address must not hold credentials; the agent's token goes in --token-file")
    if parts.query or parts.fragment:
        raise ValueError(f"the hub's address must have no query or fragment; expected an address {example}")
    path = parts.path.rstrip("/")
    if not path.endswith(INGEST_PATH):
        path += INGEST_PATH
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, path, "", ""))


def read_token_file(path: str | Path) -> str:
    """The token in `path`: its content, stripped. ValueError, never quoting the content, when the file is
    missing, unreadable, empty, or holds more than one word."""
    file = Path(path)
    hint = "write into it the token the hub lists for this location under ingest.tokens"
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"the token file {file} does not exist; {hint}") from None
    except UnicodeDecodeError:
        raise ValueError(f"the token file {file} is not UTF-8 text; {hint}") from None
    except OSError as exc:
        raise ValueError(f"cannot read the token file {file}: {exc.strerror or exc}") from None
    token = text.strip()
    if not token:
        raise ValueError(f"the token file {file} is empty; {hint}")
    if not token.isascii() or not token.isprintable() or any(char.isspace() for char in token):
        raise ValueError(
            f"the token file {file} must hold the token alone: one word of printable ASCII, no spaces or lines"
        )
    return token


# ---- the outbox bookkeeping ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Batch:
    """Pending result ids, and where the cursor goes once the hub confirms them."""

    ids: list[str]
    end_rowid: int
    end_id: str | None


class Outbox:
    """Which results of the store the hub has confirmed, and which are pending. Blocking and thread-safe:
    the pusher calls it through `asyncio.to_thread`. It reads the store's file and writes only its own."""

    def __init__(self, db_path: Path, *, hub: str, location: str, path: Path | None = None) -> None:
        self.path = path if path is not None else Path(f"{db_path}{OUTBOX_SUFFIX}")
        self.hub = hub
        self.location = location
        self._lock = threading.Lock()
        self._state = _open_state(self.path)
        try:
            self._results = open_read_connection(db_path)
        except BaseException:
            self._state.close()
            raise
        row = self._state.execute(
            "SELECT last_rowid, last_id, confirmed FROM cursor WHERE hub = ? AND location = ?", (hub, location)
        ).fetchone()
        self.cursor: tuple[int, str | None] = (int(row[0]), row[1]) if row else (0, None)
        self.confirmed: int = int(row[2]) if row else 0
        """Results the hub confirmed over the life of this file (for this hub and location)."""

    def close(self) -> None:
        with self._lock:
            self._results.close()
            self._state.close()

    def pending(self, limit: int) -> Batch:
        """Up to `limit` ids of this location's results after the cursor, oldest commit first."""
        with self._lock:
            db = self._results
            db.execute("BEGIN")  # one snapshot for the queries below
            try:
                self._relocate()
                start = self.cursor[0]
                top = db.execute("SELECT max(rowid) FROM results").fetchone()[0]
                if top is None or top <= start:
                    return Batch([], *self.cursor)
                rows = db.execute(
                    "SELECT rowid, id FROM results WHERE rowid > ? AND rowid <= ? AND location = ? "
                    "ORDER BY rowid LIMIT ?",
                    (start, top, self.location, limit),
                ).fetchall()
                if len(rows) == limit:
                    return Batch([row[1] for row in rows], int(rows[-1][0]), rows[-1][1])
                # every matching row up to `top` is in the batch: the cursor may pass the others' rows too
                end = db.execute("SELECT id FROM results WHERE rowid = ?", (top,)).fetchone()
                return Batch([row[1] for row in rows], int(top), end[0] if end else None)
            finally:
                db.execute("COMMIT")

    def _relocate(self) -> None:
        """Keep the cursor valid when the store's rows were renumbered (VACUUM) or the file was emptied."""
        rowid, last_id = self.cursor
        if rowid == 0:
            return
        db = self._results
        if last_id is not None:
            found = result_rowid(db, last_id)  # by the id's index (`results` is a view without one)
            if found is not None:
                if found != rowid:
                    log.warning(
                        "the database's rows were renumbered (VACUUM?); the push cursor follows them",
                        extra={"fields": {"outbox": str(self.path), "was": rowid, "now": found}},
                    )
                    self._save((found, last_id), 0)
                return
        top = db.execute("SELECT max(rowid) FROM results").fetchone()[0]
        if top is None or top < rowid:
            log.warning(
                "the database holds fewer results than were pushed (emptied or replaced?); pushing what it holds "
                "again, and the hub ignores what it already has",
                extra={"fields": {"outbox": str(self.path)}},
            )
            self._save((0, None), 0)

    def advance(self, batch: Batch, confirmed: int) -> None:
        """The hub confirmed `batch` (`confirmed` results): move the cursor past it, durably."""
        with self._lock:
            if batch.end_rowid > self.cursor[0] or confirmed:
                self._save((batch.end_rowid, batch.end_id), confirmed)

    def _save(self, cursor: tuple[int, str | None], confirmed: int) -> None:
        self._state.execute(
            "INSERT INTO cursor (hub, location, last_rowid, last_id, confirmed, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (hub, location) DO UPDATE SET last_rowid = excluded.last_rowid, last_id = excluded.last_id, "
            "confirmed = cursor.confirmed + excluded.confirmed, updated_at = excluded.updated_at",
            (self.hub, self.location, cursor[0], cursor[1], confirmed, format_timestamp(datetime.now(UTC))),
        )
        self.cursor = cursor
        self.confirmed += confirmed

    def backlog(self) -> int:
        """Results of this location not yet confirmed (counts rows: for log lines, not for every poll)."""
        with self._lock:
            row = self._results.execute(
                "SELECT count(*) FROM results WHERE rowid > ? AND location = ?", (self.cursor[0], self.location)
            ).fetchone()
            return int(row[0])


def _open_state(path: Path) -> sqlite3.Connection:
    try:
        connection = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
        connection.execute("PRAGMA synchronous = FULL")
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if version > OUTBOX_VERSION:
            connection.close()
            raise StoreError(f"the outbox {path} was written by a newer prober (version {version}); upgrade prober")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS cursor (hub TEXT NOT NULL, location TEXT NOT NULL, last_rowid INTEGER NOT NULL,"
            " last_id TEXT, confirmed INTEGER NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (hub, location))"
        )
        connection.execute(f"PRAGMA user_version = {OUTBOX_VERSION}")
        return connection
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open the agent's outbox {path}: {exc} (delete it to push everything again)") from exc


# ---- pushing ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    kind: Literal["ok", "transient", "permanent", "too_large"]
    message: str = ""
    status: int | None = None
    retry_after: float | None = None
    accepted: int = 0
    duplicates: int = 0


class Pusher:
    """Sends the store's results of one location to a hub, in batches, until stopped."""

    def __init__(
        self,
        store: Store,
        *,
        url: str,
        token: str,
        location: str,
        settings: PushSettings | None = None,
        outbox_path: Path | None = None,
        supervisor: Supervisor | None = None,
    ) -> None:
        """`supervisor`: runs the push loop supervised (restarted with backoff if it ever raises)."""
        if not token:
            raise ValueError("an agent needs the ingest token of its location (--token-file)")
        self.store = store
        self.endpoint = check_push_url(url)
        self.location = location
        self.settings = settings or PushSettings()
        self.stats = PushStats()
        self._token = token
        self._outbox_path = outbox_path
        self._outbox: Outbox | None = None
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._batch_limit = self.settings.batch_size
        self._failures = 0
        self._supervisor = supervisor

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            raise RuntimeError("the pusher has not started")
        return self._outbox

    async def start(self) -> None:
        self._outbox = await asyncio.to_thread(
            Outbox, self.store.path, hub=self.endpoint, location=self.location, path=self._outbox_path
        )
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout))
        if self._supervisor is not None:
            self._task = self._supervisor.spawn("push", self._run)
        else:
            self._task = asyncio.create_task(self._run(), name="prober-push")
        log.info(
            "pushing results to the hub; alerts are the hub's job, this agent sends no notifications",
            extra={
                "fields": {
                    "hub": redact_url(self.endpoint),
                    "location": self.location,
                    "outbox": str(self._outbox.path),
                    "confirmed_before": self._outbox.confirmed,
                }
            },
        )

    async def stop(self, timeout: float) -> None:
        """Push what is pending, for `timeout` seconds at most, then stop. What is left is sent next start."""
        self._stopping.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=timeout)
            if not done:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._outbox is not None:
            outbox, self._outbox = self._outbox, None
            left = await asyncio.to_thread(outbox.backlog)
            await asyncio.to_thread(outbox.close)
            if left:
                log.warning(
                    "stopped with results the hub has not confirmed; they are pushed on the next start",
                    extra={"fields": {"hub": redact_url(self.endpoint), "pending": left}},
                )

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                delay = await self._push_pending()
            except Exception as exc:  # e.g. the database is locked or gone: keep trying, never crash the daemon
                log.exception("pushing results failed unexpectedly; trying again")
                delay = self._backoff(_Answer("transient", f"{type(exc).__name__}: {exc}"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        try:  # the last flush: as far as it goes without waiting (stop() bounds it)
            await self._push_pending()
        except Exception:
            log.exception("the last push before stopping failed")

    async def _push_pending(self) -> float:
        """Send batches until nothing is pending (→ the poll interval) or a push fails (→ its backoff)."""
        outbox = self.outbox
        while True:
            limit = self._batch_limit
            batch = await asyncio.to_thread(outbox.pending, limit)
            results = await asyncio.to_thread(self._load, batch.ids)
            if not results:  # nothing of ours pending (or pruned meanwhile): the cursor passes other rows
                await asyncio.to_thread(outbox.advance, batch, 0)
                if len(batch.ids) < limit:
                    return self.settings.poll_interval
                continue
            answer = await self._send(results)
            if answer.kind == "too_large" and len(results) > 1:
                self._batch_limit = max(1, len(results) // 2)
                log.info(
                    "the hub refused a batch as too large; sending smaller ones",
                    extra={"fields": {"hub": redact_url(self.endpoint), "batch": self._batch_limit}},
                )
                continue
            if answer.kind != "ok":
                return self._backoff(answer)
            await asyncio.to_thread(outbox.advance, batch, len(results))
            self._confirmed(answer, len(results))
            if len(batch.ids) < limit:
                return self.settings.poll_interval

    def _load(self, ids: list[str]) -> list[Result]:
        return [result for result in map(self.store.result, ids) if result is not None]

    def _confirmed(self, answer: _Answer, count: int) -> None:
        stats = self.stats
        stats.sent += count
        stats.accepted += answer.accepted
        stats.duplicates += answer.duplicates
        stats.batches += 1
        self._batch_limit = min(self.settings.batch_size, self._batch_limit * 2)
        fields: dict[str, Any] = {"results": count, "accepted": answer.accepted, "duplicates": answer.duplicates}
        if self._failures:
            log.info(
                "the hub accepts results again",
                extra={"fields": {"hub": redact_url(self.endpoint), "failed_attempts": self._failures, **fields}},
            )
            self._failures = 0
            stats.last_error = None
        else:
            log.debug("pushed", extra={"fields": fields})

    def _backoff(self, answer: _Answer) -> float:
        """Count a failed push, log it, and return how long to wait before the next."""
        settings = self.settings
        self._failures += 1
        self.stats.failed_attempts += 1
        self.stats.last_error = answer.message
        fields: dict[str, Any] = {"hub": redact_url(self.endpoint), "attempt": self._failures}
        if answer.status is not None:
            fields["status"] = answer.status
        if answer.kind == "transient":
            delay = min(settings.max_delay, settings.min_delay * 2.0 ** min(self._failures - 1, 30))
            delay *= random.uniform(0.8, 1.0)  # agents that lost the same hub do not all return at once
            if answer.retry_after is not None:
                delay = min(settings.max_delay, max(delay, answer.retry_after))
            fields["retry_in"] = round(delay, 2)
            log.warning(f"results not delivered; retrying: {answer.message}", extra={"fields": fields})
        else:
            delay = settings.max_delay
            fields["retry_in"] = round(delay, 2)
            log.error(f"the hub refuses this agent's results: {answer.message}", extra={"fields": fields})
        return delay

    async def _send(self, results: list[Result]) -> _Answer:
        assert self._session is not None
        body = json.dumps({"results": [result.to_json() for result in results]}, default=str).encode()
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}
        try:
            async with self._session.post(self.endpoint, data=body, headers=headers, allow_redirects=False) as response:
                text = (await response.content.read(MAX_ANSWER_BYTES)).decode("utf-8", "replace")
                return self._judge(response.status, text, response.headers)
        except TimeoutError:
            return _Answer("transient", f"the hub did not answer within {self.settings.request_timeout:g}s")
        except (aiohttp.ClientError, OSError) as exc:
            return _Answer("transient", f"cannot reach the hub: {self._clean(str(exc) or type(exc).__name__)}")

    def _judge(self, status: int, text: str, headers: Any) -> _Answer:
        said = self._clean(_hub_message(text))
        where = redact_url(self.endpoint)
        location = self.location
        if status == 200:
            try:
                data = json.loads(text)
                return _Answer("ok", status=200, accepted=int(data["accepted"]), duplicates=int(data["duplicates"]))
            except (ValueError, TypeError, KeyError):
                return _Answer(
                    "permanent",
                    f"{where} answered 200 but not as a prober hub does; point --push at the hub's address",
                    status,
                )
        if status in TRANSIENT_STATUSES or status >= 500:
            return _Answer("transient", f"the hub answered HTTP {status}: {said}", status, _retry_after(headers))
        if status == 401:
            message = (
                f"the hub does not accept this agent's token (HTTP 401: {said}). Fix: put the token the hub "
                f"lists under ingest.tokens.{location} into --token-file, or add this agent's token there on the hub"
            )
        elif status == 403:
            message = (
                f"the hub refuses results for location {location!r} with this token (HTTP 403: {said}). Fix: the "
                f"token belongs to another location at the hub; use the one under ingest.tokens.{location}, or run "
                "this agent with the --location its token belongs to"
            )
        elif status == 400:
            message = (
                f"the hub refuses the results as invalid (HTTP 400: {said}). Fix: run the same prober version on "
                "the hub and its agents"
            )
        elif status == 413:
            return _Answer(
                "too_large",
                f"the hub refuses even a single result as too large (HTTP 413: {said}); raise its ingest limit",
                status,
            )
        elif status in (404, 405):
            message = (
                f"there is no prober ingest endpoint at {where} (HTTP {status}). Fix: --push must be the hub's "
                "address, like https://hub.example.com:8080, and the hub a `prober run` with its API listening"
            )
        elif 300 <= status < 400:
            target = redact_url(str(headers.get("Location", "")))
            message = f"the hub answered HTTP {status} redirecting to {target!r}; point --push at that address"
        else:
            message = f"the hub answered HTTP {status}: {said}"
        return _Answer("permanent", message, status)

    def _clean(self, text: str) -> str:
        """Text from the network, made safe for a log line: never the token, never very long."""
        return text.replace(self._token, "****")[:300]


def _hub_message(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:200] or "no details"
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return " ".join(text.split())[:200] or "no details"


def _retry_after(headers: Any) -> float | None:
    value = str(headers.get("Retry-After", "")).strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86400 else None
