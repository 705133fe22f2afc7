"""Agents (docs/deployment.md): push this prober's results to a hub's `POST /api/v1/ingest`, losing none.

    pusher = Pusher(store, url="https://hub.example.com:8080", token=token, location="eu-west")
    await pusher.start()             # a background task: committed results reach the hub in batches
    await pusher.stop(timeout=5.0)   # one last flush within the bound, then stop

The outbox is the agent's own database. The store commits every result first, exactly as without a hub;
the pusher only reads results and moves a cursor that says how far the hub has confirmed them: per hub
and location, the rowid and id of the last result the hub confirmed and how many results it confirmed in
all (table push_cursor, prober.store.push). Why this design:
- Nothing is written twice per result. An outbox holding copies of results would have to commit together
  with the store or be reconciled after a crash. Every SQL statement, the cursor's included, is the
  store's: a migration of `results` cannot silently break pushing.
- Rowids of `results` grow in commit order (one writer, one transaction at a time), `started_at` does not
  (a slow check commits after a quick one that started later). "Everything after the cursor" therefore
  never skips a result that committed late.
- If a VACUUM renumbers the rows, the saved id finds the cursor's new place; if the database was emptied
  or replaced (its largest rowid is below the cursor), the cursor starts over. The hub ignores ids it
  already holds, so the worst case is a resend, not a loss.
- Only results of this agent's location are pushed: a database that was once a hub, or another
  location, also holds results that the hub would refuse with 403. Results pruned by retention before the
  hub confirmed them are gone (the hub unreachable for longer than `retention.raw`, 14 days by default).

Delivery is at least once, and the hub dedupes by result id, so nothing is counted twice. A batch counts as
confirmed only after a 200 whose body is the hub's `{"accepted": n, "duplicates": m}`. An unreachable hub,
a timeout, 408, 425, 429 and 5xx are transient: retried with exponential backoff (by default 1 s doubling
to 10 s, with jitter, so a backlog arrives within seconds of a heal; a Retry-After is honoured up to 60 s).
A connection the hub dropped mid-request is retried once at once, one its address does not accept within
`connect_timeout` is given up, and every push opens a fresh connection, so a hub restarted behind a proxy or a
Kubernetes Service is reached at once rather than through a pooled connection that went silent. A 413
halves the batch. A 400 that names results (`rejected`, e.g. a check the hub does not define for this
location) parks them: logged once per check and reason, counted (`prober_push_rejected_total`), skipped
by the cursor, and the rest of the batch is sent; they stay in the agent's database. Other 4xx (401 token,
403 location, a 400 naming no result, 404 wrong address) and redirects last until someone fixes the
configuration. Each one logs an error that says what to fix, the results stay, and the pusher retries
every `max_delay`.

Several hubs (`--push` given more than once, PROBER_PUSH="url1,url2"): hubs that load the same check files
are replicas, and an agent keeps every one of them complete. The daemon runs one Pusher per hub: each has
its own task, its own cursor (push_cursor is keyed by the hub's ingest URL), its own backoff and its own
counters (labelled `hub` in /metrics), so a dead or slow hub never delays another, and each hub gets every
result exactly once (at least once on the wire, deduplicated by id). `check_push_urls` validates the list.

Alerts are the hub's job. An agent's daemon stores its results but runs no alert state machine, so it never
sends a notification (prober.daemon.service.Daemon.accept). The hub sees every location and judges quorum.

This module must never write to the database but through the store, never forget a result the hub has
not confirmed nor refused, and never log, store or echo the token (nor credentials in the URL: refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from prober.daemon.supervise import Supervisor
from prober.redact import redact_url
from prober.results import Result
from prober.store import PendingIds, PushCursor, Store

__all__ = [
    "INGEST_PATH",
    "Outbox",
    "PushSettings",
    "PushStats",
    "Pusher",
    "check_push_url",
    "check_push_urls",
    "hub_label",
    "read_token_file",
]

log = logging.getLogger("prober.agent")

INGEST_PATH = "/api/v1/ingest"
TRANSIENT_STATUSES = frozenset({408, 425, 429})
MAX_ANSWER_BYTES = 64 * 1024
MAX_LOGGED_REFUSALS = 1000
"""Distinct (check, reason) refusals remembered so each is logged once (then at debug level)."""


@dataclass(frozen=True, slots=True)
class PushSettings:
    """How an agent pushes. The defaults suit production; tests shorten the delays."""

    batch_size: int = 500
    """Results per request at most (a 413 halves it for a while)."""
    min_delay: float = 1.0
    """First wait after a failed push; it doubles per consecutive failure ..."""
    max_delay: float = 60.0
    """... up to this. A failure someone must fix (401, 403, 400) waits this long every time."""
    max_retry_delay: float = 10.0
    """The cap for a transient failure (unreachable, timeout, 5xx without Retry-After): after a long outage or
    partition the backlog then arrives within seconds of the heal, not up to max_delay later. A Retry-After
    from the hub may still ask for up to max_delay."""
    poll_interval: float = 1.0
    """How often the outbox is looked at when nothing was pending."""
    request_timeout: float = 30.0
    """Seconds one request may take, answer included."""
    connect_timeout: float = 5.0
    """Seconds to open a connection to the hub. A hub address that answers nothing at all (a container or pod
    being restarted: its network is gone, no refusal comes back) is tried again after this, with the backoff,
    instead of holding the push for request_timeout while the hub is already back."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_retry_delay <= 0:
            raise ValueError(f"max_retry_delay must be positive, got {self.max_retry_delay}")
        if not 0 < self.min_delay <= self.max_delay:
            raise ValueError(f"expected 0 < min_delay <= max_delay, got {self.min_delay} and {self.max_delay}")
        if self.poll_interval <= 0 or self.request_timeout <= 0 or self.connect_timeout <= 0:
            raise ValueError("poll_interval, request_timeout and connect_timeout must be positive")


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
    rejected: int = 0
    """Results the hub refused by name (400 `rejected`): parked, never sent again."""
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


def check_push_urls(values: Sequence[str]) -> list[str]:
    """The hubs an agent pushes to: every `--push` value, each also split at commas (PROBER_PUSH="a,b"),
    validated by `check_push_url`, in the order given. Raises ValueError naming the bad or repeated address
    (two pushers on one hub would share its cursor)."""
    seen: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            if not part.strip():
                continue
            endpoint = check_push_url(part)
            if endpoint in seen:
                raise ValueError(
                    f"the hub {redact_url(part.strip())!r} is given twice (as {redact_url(seen[endpoint])!r}); "
                    "list every hub once"
                )
            seen[endpoint] = part.strip()
    return list(seen.values())


def hub_label(endpoint: str) -> str:
    """The `hub` label of an agent's push metrics: the hub's address without the ingest path."""
    url = redact_url(endpoint)
    return url[: -len(INGEST_PATH)] if url.endswith(INGEST_PATH) else url


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


class Outbox:
    """Which results of the store the hub has confirmed, and which are pending. The cursor and every query
    are the store's (prober.store.push, Reader.result_ids_after); this class decides where the cursor goes."""

    def __init__(self, store: Store, *, hub: str, location: str) -> None:
        self.store = store
        self.hub = hub
        self.location = location
        self.cursor = PushCursor(0, None)

    @property
    def confirmed(self) -> int:
        """Results the hub confirmed over the life of this cursor (for this hub and location)."""
        return self.cursor.confirmed

    async def open(self) -> None:
        """Load the cursor from the store."""
        found = await asyncio.to_thread(self.store.push_cursor, self.hub, self.location)
        self.cursor = found or PushCursor(0, None)

    async def pending(self, limit: int) -> PendingIds:
        """Up to `limit` ids of this location's results after the cursor, oldest commit first."""
        await self._relocate()
        return await asyncio.to_thread(self.store.result_ids_after, self.cursor.rowid, self.location, limit)

    async def _relocate(self) -> None:
        """Keep the cursor valid when the store's rows were renumbered (VACUUM) or the file was emptied."""
        rowid, last_id = self.cursor.rowid, self.cursor.result_id
        if rowid == 0:
            return
        store = self.store
        if last_id is not None:
            found = await asyncio.to_thread(store.result_rowid, last_id)
            if found is not None:
                if found != rowid:
                    log.warning(
                        "the database's rows were renumbered (VACUUM?); the push cursor follows them",
                        extra={"fields": {"db": str(store.path), "was": rowid, "now": found}},
                    )
                    await self._save(PushCursor(found, last_id), 0)
                return
        if await asyncio.to_thread(store.last_result_rowid) < rowid:
            log.warning(
                "the database holds fewer results than were pushed (emptied or replaced?); pushing what it holds "
                "again, and the hub ignores what it already has",
                extra={"fields": {"db": str(store.path)}},
            )
            await self._save(PushCursor(0, None), 0)

    async def advance(self, batch: PendingIds, confirmed: int) -> None:
        """The hub confirmed `batch` (`confirmed` results): move the cursor past it, durably."""
        if batch.end_rowid > self.cursor.rowid or confirmed:
            await self._save(PushCursor(batch.end_rowid, batch.end_id), confirmed)

    async def _save(self, cursor: PushCursor, confirmed: int) -> None:
        await self.store.save_push_cursor(self.hub, self.location, cursor, confirmed)
        self.cursor = PushCursor(cursor.rowid, cursor.result_id, self.cursor.confirmed + confirmed)

    async def backlog(self) -> int:
        """Results of this location not yet confirmed (counts rows: for log lines, not for every poll)."""
        return await asyncio.to_thread(self.store.count_results_after, self.cursor.rowid, self.location)


# ---- pushing ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    kind: Literal["ok", "transient", "permanent", "too_large", "rejected"]
    message: str = ""
    status: int | None = None
    retry_after: float | None = None
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Refusal] = field(default_factory=list)
    """For kind rejected: the results the hub refused by id, and why."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """One result a hub refused in a 400 (`rejected` in its answer)."""

    id: str
    check: str
    reason: str
    error: str


_SAME = "run the same check files and prober version on the hub and its agents"
_REFUSAL_FIXES = {
    "unknown_check": "deploy the same check files to the hub and its agents (the hub must list this location)",
    "time_range": "set this machine's clock right (NTP), or raise the hub's retention.raw for a long backlog",
}
"""What to do about a refused result, by the hub's reason (prober.api.ingest_validate.Rejected)."""


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
        supervisor: Supervisor | None = None,
    ) -> None:
        """`supervisor`: runs the push loop supervised (restarted with backoff if it ever raises)."""
        if not token:
            raise ValueError("an agent needs the ingest token of its location (--token-file)")
        self.store = store
        self.endpoint = check_push_url(url)
        self.hub = hub_label(self.endpoint)
        """The hub's address as metrics and log lines name it."""
        self.location = location
        self.settings = settings or PushSettings()
        self.stats = PushStats()
        self._token = token
        self._outbox: Outbox | None = None
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._batch_limit = self.settings.batch_size
        self._failures = 0
        self._supervisor = supervisor
        self._parked: set[str] = set()
        """Ids the hub refused by name that the cursor has not passed yet: not sent again."""
        self._told: set[tuple[str, str]] = set()
        """(check, reason) refusals already logged."""

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            raise RuntimeError("the pusher has not started")
        return self._outbox

    async def start(self) -> None:
        outbox = Outbox(self.store, hub=self.endpoint, location=self.location)
        await outbox.open()
        self._outbox = outbox
        # a fresh connection per push: a pooled one can go silent when the hub restarts behind a proxy, a load
        # balancer or a Kubernetes Service (the old peer is gone, nothing answers), and the push would then
        # wait out request_timeout. One connect per batch, at most one batch a poll_interval when idle.
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=self.settings.request_timeout, sock_connect=self.settings.connect_timeout
            ),
            connector=aiohttp.TCPConnector(force_close=True),
        )
        if self._supervisor is not None:
            self._task = self._supervisor.spawn("push", self._run)
        else:
            self._task = asyncio.create_task(self._run(), name=f"prober-push {self.hub}")
        log.info(
            "pushing results to the hub; alerts are the hub's job, this agent sends no notifications",
            extra={
                "fields": {
                    "hub": redact_url(self.endpoint),
                    "location": self.location,
                    "db": str(self.store.path),
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
            left = await outbox.backlog()
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
            batch = await outbox.pending(limit)
            results = await asyncio.to_thread(self._load, batch.ids)
            if not results:  # nothing of ours pending (pruned meanwhile, or parked): the cursor passes them
                await self._advance(batch, 0)
                if len(batch.ids) < limit:
                    return self.settings.poll_interval
                continue
            answer = await self._send(results)
            if answer.kind == "rejected":
                if self._park(answer, results):
                    continue  # the same batch again, without what the hub refused
                answer = _Answer("permanent", answer.message, answer.status)
            if answer.kind == "too_large" and len(results) > 1:
                self._batch_limit = max(1, len(results) // 2)
                log.info(
                    "the hub refused a batch as too large; sending smaller ones",
                    extra={"fields": {"hub": redact_url(self.endpoint), "batch": self._batch_limit}},
                )
                continue
            if answer.kind != "ok":
                return self._backoff(answer)
            await self._advance(batch, len(results))
            self._confirmed(answer, len(results))
            if len(batch.ids) < limit:
                return self.settings.poll_interval

    def _load(self, ids: list[str]) -> list[Result]:
        parked = self._parked
        return [result for result in map(self.store.result, ids) if result is not None and result.id not in parked]

    async def _advance(self, batch: PendingIds, confirmed: int) -> None:
        await self.outbox.advance(batch, confirmed)
        self._parked.difference_update(batch.ids)

    def _park(self, answer: _Answer, results: list[Result]) -> bool:
        """Set aside the results a 400 named, logging each (check, reason) once. False if it named none of them."""
        sent = {result.id for result in results}
        named = [refusal for refusal in answer.rejected if refusal.id in sent and refusal.id not in self._parked]
        if not named:
            return False
        self._parked.update(refusal.id for refusal in named)
        self.stats.rejected += len(named)
        for refusal in named:
            key = (refusal.check, refusal.reason)
            fields: dict[str, Any] = {
                "hub": redact_url(self.endpoint),
                "check": refusal.check,
                "reason": refusal.reason,
                "result": refusal.id,
            }
            if key in self._told:
                log.debug("the hub refused a result; skipped", extra={"fields": fields})
                continue
            if len(self._told) < MAX_LOGGED_REFUSALS:
                self._told.add(key)
            log.error(
                f"the hub refuses results of check {refusal.check!r} and they are skipped (kept in this agent's "
                f"database, not sent again): {refusal.error}. Fix: {_REFUSAL_FIXES.get(refusal.reason, _SAME)}; "
                "this is logged once per check and reason",
                extra={"fields": fields},
            )
        return True

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
            cap = min(settings.max_delay, max(settings.max_retry_delay, settings.min_delay))
            delay = min(cap, settings.min_delay * 2.0 ** min(self._failures - 1, 30))
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
        for attempt in (1, 2):
            try:
                async with self._session.post(
                    self.endpoint, data=body, headers=headers, allow_redirects=False
                ) as response:
                    text = (await response.content.read(MAX_ANSWER_BYTES)).decode("utf-8", "replace")
                    return self._judge(response.status, text, response.headers)
            except aiohttp.ClientConnectorError as exc:  # no connection at all: the backoff decides
                return self._unreachable(exc)
            except aiohttp.ConnectionTimeoutError:
                return _Answer("transient", f"the hub accepted no connection within {self.settings.connect_timeout:g}s")
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # the hub closed or reset the connection under the request (it restarted): once more at once,
                # on a new connection; a hub that is really gone then refuses it and the backoff takes over
                if attempt == 2:
                    return self._unreachable(exc)
                log.debug(
                    "the hub dropped the connection; sending again at once", extra={"fields": {"error": f"{exc}"}}
                )
            except TimeoutError:
                return _Answer("transient", f"the hub did not answer within {self.settings.request_timeout:g}s")
            except (aiohttp.ClientError, OSError) as exc:
                return self._unreachable(exc)
        raise AssertionError("unreachable")

    def _unreachable(self, exc: BaseException) -> _Answer:
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
            refused = [
                Refusal(item.id, self._clean(item.check), item.reason, self._clean(item.error))
                for item in _refusals(text)
            ]
            if refused:
                return _Answer("rejected", f"the hub refuses results (HTTP 400: {said})", status, rejected=refused)
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


def _refusals(text: str) -> list[Refusal]:
    """The results a hub's 400 names in `rejected` ([{"id", "check", "reason", "error"}, ...]), if any."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    items = data.get("rejected") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return []
    found: list[Refusal] = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            found.append(
                Refusal(
                    id=item["id"],
                    check=str(item.get("check") or "?")[:200],
                    reason=str(item.get("reason") or "invalid")[:100],
                    error=" ".join(str(item.get("error") or "no details").split())[:300],
                )
            )
    return found


def _retry_after(headers: Any) -> float | None:
    value = str(headers.get("Retry-After", "")).strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86400 else None
