"""`POST /api/v1/ingest`: results pushed by agents at other locations (docs/api.md, Ingest).

    Authorization: Bearer <token>          one of config.ingest.tokens (location → token)
    {"results": [<result JSON, docs/api.md>, ...]}
    → 200 {"accepted": n, "duplicates": m}

The token decides the location: a batch holding a result for any other location is refused whole with
403, a missing or unknown token gets 401, a body over the size limit 413, malformed JSON or an invalid
result 400 (naming the first bad result and why, and listing every refused result in `rejected`:
`[{"index", "id", "check", "reason", "error"}]`, so an agent can set those aside and send the rest). Nothing
of a refused batch is stored. A store that cannot take the results (disk full, closing) answers 503 with
Retry-After: the agent keeps them and retries; what was committed before the failure counts as a duplicate
then.

A result whose id is already stored is counted as a duplicate and not handed on, so a push retried after
a lost answer changes nothing, alerts included. A batch goes whole to the source's `accept_many` (the daemon
commits it in one transaction, which also tells which ids were new, so two copies of the same push racing
each other cannot both count; then the alerts see the new results and their changes commit together):
batches of several agents arriving at once share the writer's transactions. A source without
`accept_many` gets `accept` per result, oldest first per check, one batch at a time. The body is decoded by
msgspec (the standard library only words the error of a body msgspec refuses). Measured in
tests/bench/bench_ingest.py.

It never stores anything itself, never logs a token, and compares tokens in constant time.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import msgspec
from aiohttp import web

from prober.api.ingest_validate import Rejected, parse_result, reject_constant
from prober.api.source import ApiSource, store_of
from prober.config.loader import Config
from prober.daemon.logs import RepeatedError
from prober.results import Result
from prober.store import ReadOnlyStore, StoreError

__all__ = ["DEFAULT_MAX_BODY", "REJECTED", "IngestHandler", "location_for_token"]

REJECTED: Counter[str] = Counter()
"""Batches refused by this process, by reason: the source of `prober_ingest_rejected_total{reason}`."""

DEFAULT_MAX_BODY = 8 * 1024 * 1024
"""Bytes of a request body, at most (an agent pushes batches of a few hundred results)."""
MAX_LISTED = 1000
"""Refused results listed in a 400's `rejected`, at most (the agent sends the rest again and learns more)."""

log = logging.getLogger("prober.api")


def location_for_token(tokens: Mapping[str, str], presented: str) -> str | None:
    """The location whose token this is, or None. Empty configured tokens never match."""
    found = None
    given = presented.encode()
    for location, token in tokens.items():
        if token and hmac.compare_digest(token.encode(), given):
            found = location
    return found


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _field(item: object, key: str) -> str | None:
    value = item.get(key) if isinstance(item, dict) else None
    return value if isinstance(value, str) and len(value) < 200 else None


def _label(index: int, item: object) -> str:
    name = _field(item, "check")
    return f"results[{index}]" + (f" (check {name!r})" if name is not None else "")


def _decode(body: bytes) -> object:
    """The body's JSON (msgspec: fast, exact integers, no NaN); a 400 saying what is wrong with it otherwise.
    What msgspec refuses is parsed again by the standard library only to say why, in its words."""
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        pass
    try:
        return json.loads(body, parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        REJECTED["malformed"] += 1
        return _error(400, f"the body is not JSON: {exc}")
    except RecursionError:
        REJECTED["malformed"] += 1
        return _error(400, "the body is not acceptable JSON: it is nested too deeply")


def _oldest_first(result: Result) -> datetime:
    return result.started_at


class IngestHandler:
    def __init__(
        self, source: ApiSource, *, max_body: int = DEFAULT_MAX_BODY, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.source = source
        self.max_body = max_body
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = asyncio.Lock()
        self._checks: tuple[Config, dict[str, tuple[str, frozenset[str]]]] | None = None
        self._store_errors = RepeatedError(log)

    async def handle(self, request: web.Request) -> web.Response:
        tokens = self.source.config.ingest.tokens
        presented = _bearer(request)
        location = location_for_token(tokens, presented) if presented is not None else None
        if location is None:
            REJECTED["unauthorized"] += 1
            reason = "no bearer token" if presented is None else "this token is not accepted here"
            return _error(401, f"{reason}: send Authorization: Bearer <token of your location>",
                          **{"WWW-Authenticate": 'Bearer realm="prober ingest"'})  # fmt: skip
        if request.content_length is not None and request.content_length > self.max_body:
            REJECTED["too_large"] += 1
            return _error(413, f"the body is {request.content_length} bytes; at most {self.max_body} are accepted")
        body = await self._read(request)
        if isinstance(body, web.Response):
            return body
        parsed = self._parse(body, location)
        if isinstance(parsed, web.Response):
            return parsed
        try:
            accepted, duplicates = await self._hand_on(parsed)
        except (StoreError, sqlite3.Error) as exc:  # the agent keeps the batch and retries it
            REJECTED["store_failed"] += 1
            self._store_errors.failed(f"ingested results could not be stored; answering 503, agents retry: {exc}")
            return _error(503, f"the hub cannot store results right now ({exc}); retry later", **{"Retry-After": "5"})
        self._store_errors.recovered("ingested results are stored again")
        return web.json_response({"accepted": accepted, "duplicates": duplicates})

    def _defined(self, config: Config) -> dict[str, tuple[str, frozenset[str]]]:
        """check → (type, locations) of the configuration, built once per configuration (a reload makes a new one)."""
        cached = self._checks
        if cached is None or cached[0] is not config:
            cached = self._checks = (config, {s.name: (s.type, frozenset(s.model.locations)) for s in config.checks})
        return cached[1]

    async def _read(self, request: web.Request) -> bytes | web.Response:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self.max_body:
                REJECTED["too_large"] += 1
                return _error(413, f"the body is larger than {self.max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _parse(self, body: bytes, location: str) -> list[Result] | web.Response:
        document = _decode(body)
        if isinstance(document, web.Response):
            return document
        items = document.get("results") if isinstance(document, dict) else None
        if not isinstance(items, list):
            REJECTED["malformed"] += 1
            return _error(400, 'expected a JSON object {"results": [...]} with a list of results')
        config = self.source.config
        defined = self._defined(config)
        now = self.clock()
        keep_raw = timedelta(seconds=config.retention.raw)
        results: list[Result] = []
        refused: list[tuple[int, Rejected]] = []
        for index, item in enumerate(items):
            try:
                results.append(parse_result(item, location=location, defined=defined, now=now, keep_raw=keep_raw))
            except Rejected as exc:
                if exc.reason == "wrong_location":  # the token's fault, not the result's: the whole batch
                    REJECTED[exc.reason] += 1
                    return _error(403, f"{_label(index, item)} was refused: {exc}; nothing of this batch was stored")
                refused.append((index, exc))
        if not refused:
            return results
        index, first = refused[0]
        REJECTED[first.reason] += 1
        listed = [
            {
                "index": where,
                "id": _field(items[where], "id"),
                "check": _field(items[where], "check"),
                "reason": exc.reason,
                "error": str(exc),
            }
            for where, exc in refused[:MAX_LISTED]
        ]
        message = f"{_label(index, items[index])} was refused: {first}; nothing of this batch was stored"
        return web.json_response({"error": message, "rejected": listed}, status=400)

    async def _hand_on(self, results: list[Result]) -> tuple[int, int]:
        store = store_of(self.source)
        unique: dict[str, Result] = {}
        for result in results:
            unique.setdefault(result.id, result)
        duplicates = len(results) - len(unique)
        accept_many = getattr(self.source, "accept_many", None)
        if accept_many is not None:  # the batch in one transaction, which also tells which ids are new
            batch = sorted(unique.values(), key=_oldest_first)
            accepted = int(await accept_many(batch))
            return accepted, duplicates + len(batch) - accepted
        async with self._lock:  # one result at a time through `accept`: batches one after another
            return await self._accept_each(store, unique, duplicates)

    async def _accept_each(self, store: ReadOnlyStore, unique: dict[str, Result], duplicates: int) -> tuple[int, int]:
        known = await asyncio.to_thread(lambda: {rid for rid in unique if store.result(rid) is not None})
        duplicates += len(known)
        by_check: dict[str, list[Result]] = {}
        for result in unique.values():
            if result.id not in known:
                by_check.setdefault(result.check, []).append(result)

        async def one_check(items: list[Result]) -> None:
            for result in sorted(items, key=lambda item: item.started_at):
                await self.source.accept(result)

        await asyncio.gather(*(one_check(items) for items in by_check.values()))
        return sum(len(items) for items in by_check.values()), duplicates
