"""The compact encoding of raw results (table `result_rows`, schema version 3 on), and its inverse.

A raw result used to cost about 510 bytes on disk: a 36-character id three times over (row, primary key
index), the check, location and type names, a 24-character timestamp twice (row, two indexes), and its
metrics and assertions as JSON objects repeating every key in every row. A check's rows differ only in
their values, so a row now holds:

  uid          the id as 16 bytes when it is a canonical UUID (every prober-made id), else its text
  check_id, location_id, type_id
               small integers naming rows of `result_names` (kind 0 check, 1 location, 2 type)
  started      Unix milliseconds (what the API shows: times are printed to the millisecond)
  status       0 up, 1 degraded, 2 down (SQLite stores 0 and 1 in the row header: no byte at all)
  duration     microseconds (the API prints duration_ms to three decimals, i.e. to the microsecond)
  shape_id     a `result_names` row of kind 3: the JSON of the metric names, in order, and of the
               assertions' (metric, condition, level, source) — the parts that repeat from run to run
  metrics      the JSON array of the metric values, in the shape's order
  failed       a bitmask of the assertions that did not hold (0 when all held: again no byte)
  extra        JSON: the `actual` of every assertion whose value is neither a metric's value nor its own
               `ok` (a JSON path, a header), or the whole assertion list when it does not fit a shape
  error, artifacts, details as before.

An assertion's `actual` is almost always the value of the metric it tests (`status` 200 for `status: 2xx`),
so it is not stored twice: the shape says "source: metric #i" and the decoder reads it back from the
metrics. Nothing is recomputed: conditions are never evaluated here, only the values they saw are kept.
The decoding is exact for everything the JSON form of a result can say; odd inputs (non-string metric
keys, more than 62 assertions, a non-bool `ok`) fall back to storing the plain JSON, never to a loss.

This module is pure (no connection, no I/O); `NameTable` is handed the connection by its caller.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prober.results import Assertion

__all__ = [
    "CHECK",
    "LOCATION",
    "SHAPE",
    "STATUS_CODES",
    "STATUS_NAMES",
    "TYPE",
    "NameTable",
    "Shape",
    "decode_assertions",
    "decode_duration",
    "decode_id",
    "decode_metrics",
    "decode_started",
    "encode_duration",
    "encode_id",
    "encode_row_values",
    "encode_started",
    "encode_values",
    "row_values",
    "to_json",
]

CHECK, LOCATION, TYPE, SHAPE = 0, 1, 2, 3
"""Kinds of `result_names` rows."""
STATUS_CODES: dict[str, int] = {"up": 0, "degraded": 1, "down": 2}
STATUS_NAMES: tuple[str, ...] = ("up", "degraded", "down")
MAX_MASKED = 62
"""Assertions a `failed` bitmask can describe (SQLite integers are signed 64-bit)."""
FROM_OK = -1
"""Assertion source: `actual` is the assertion's own `ok` (contains / matches conditions)."""
FROM_EXTRA = -2
"""Assertion source: `actual` is in the row's `extra` array, at the assertion's index."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MS = timedelta(milliseconds=1)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


def to_json(value: Any) -> str:
    """Compact JSON for a column. Values JSON cannot express (datetimes, bytes) are stored as their text
    rather than refused: a result is never lost because a probe put an odd value in its metrics. (One
    encoder for every call: `json.dumps` with options builds a new one each time.)"""
    return _ENCODER.encode(value)


# --- scalars ------------------------------------------------------------------------------------------


def encode_id(result_id: str) -> bytes | str:
    """16 bytes for a canonical (lower-case, hyphenated) UUID, else the text unchanged, so that decoding
    gives back exactly the string that was stored."""
    if _CANONICAL_UUID.fullmatch(result_id):
        return bytes.fromhex(result_id.replace("-", ""))
    return result_id


def decode_id(value: bytes | str) -> str:
    return str(uuid.UUID(bytes=value)) if isinstance(value, bytes) else value


def encode_started(moment: datetime) -> int:
    """Unix milliseconds of an aware datetime, truncated as `format_timestamp` prints it."""
    return (moment - _EPOCH) // _MS


def decode_started(millis: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=millis)


def encode_duration(duration_ms: float) -> int:
    """Microseconds: the API prints duration_ms rounded to three decimals."""
    return round(duration_ms * 1000)


def decode_duration(micros: int | float) -> float:
    return micros / 1000


# --- metrics and assertions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shape:
    """What repeats between the rows of a check: metric names and the assertions' fixed parts."""

    keys: tuple[str, ...] | None
    """None: the row's `metrics` column holds the whole JSON object (non-string keys)."""
    assertions: tuple[tuple[str, str, str, int], ...] | None
    """(metric, condition, level, source) per assertion; source is a metric index, FROM_OK or FROM_EXTRA.
    None: the row's `extra` column holds the whole assertion list."""

    def text(self) -> str:
        return _shape_text(self)

    @classmethod
    def parse(cls, text: str) -> Shape:
        data = json.loads(text)
        keys = data.get("m")
        assertions = data.get("a")
        return cls(
            keys=None if keys is None else tuple(keys),
            assertions=None if assertions is None else tuple((a[0], a[1], a[2], int(a[3])) for a in assertions),
        )


@functools.lru_cache(maxsize=4096)
def _shape_text(shape: Shape) -> str:
    """The result_names text of a shape (kept: every result of a check has the same few shapes)."""
    return to_json({"m": shape.keys, "a": shape.assertions})


_SCALARS = (int, str, bool)


def _same(actual: Any, value: Any) -> bool:
    """Whether `actual` and a metric's `value` are the same JSON, so one can be stored for both."""
    kind = type(actual)
    if kind is not type(value):
        return False
    if kind in _SCALARS:
        return bool(actual == value)
    if kind is float:
        return repr(actual) == repr(value)  # NaN is not equal to itself; 0.0 and -0.0 print differently
    return actual is None and value is None


def encode_values(metrics: Mapping[str, Any], assertions: Sequence[Assertion]) -> tuple[Shape, str, int, str | None]:
    """(shape, metrics column, failed bitmask, extra column) of one result."""
    keys: tuple[str, ...] | None = tuple(metrics)
    if all(type(key) is str for key in metrics):
        metrics_text = to_json(list(metrics.values()))
        index = {key: position for position, key in enumerate(metrics)}
    else:
        keys, metrics_text, index = None, to_json(metrics), {}
    if len(assertions) > MAX_MASKED or any(type(item.ok) is not bool for item in assertions):
        full = to_json([item.to_json() for item in assertions]) if assertions else None
        return Shape(keys, None), metrics_text, 0, full
    entries: list[tuple[str, str, str, int]] = []
    extra: list[Any] = []
    failed = 0
    explicit = False
    for position, item in enumerate(assertions):
        if not item.ok:
            failed |= 1 << position
        where = index.get(item.metric) if type(item.metric) is str else None
        if where is not None and _same(item.actual, metrics[item.metric]):
            source = where
            extra.append(None)
        elif type(item.actual) is bool and item.actual is item.ok:
            source = FROM_OK
            extra.append(None)
        else:
            source = FROM_EXTRA
            extra.append(item.actual)
            explicit = True
        entries.append((item.metric, item.condition, item.level, source))
    return Shape(keys, tuple(entries)), metrics_text, failed, to_json(extra) if explicit else None


def decode_metrics(shape: Shape, text: str) -> dict[str, Any]:
    values = json.loads(text)
    if shape.keys is None:
        return dict(values)
    return dict(zip(shape.keys, values, strict=True))


def decode_assertions(shape: Shape, values: list[Any] | None, failed: int, extra: str | None) -> list[Assertion]:
    """The assertions of a row; `values` is its decoded metrics array (None for a keyless shape)."""
    if shape.assertions is None:
        return [Assertion(**item) for item in json.loads(extra)] if extra else []
    explicit = json.loads(extra) if extra else None
    found: list[Assertion] = []
    for position, (metric, condition, level, source) in enumerate(shape.assertions):
        ok = not (failed >> position) & 1
        if source >= 0:
            actual = values[source] if values is not None else None
        elif source == FROM_OK:
            actual = ok
        else:
            actual = explicit[position] if explicit is not None else None
        found.append(Assertion(metric, condition, actual, ok, level))  # type: ignore[arg-type]
    return found


def row_values(
    uid: bytes | str,
    names: tuple[str, str, str],
    started: int,
    status: int,
    duration: int,
    shape: Shape,
    metrics: str,
    failed: int,
    extra: str | None,
    rest: tuple[str | None, str | None, str | None],
    resolve: Callable[[int, str], int],
) -> tuple[Any, ...]:
    """The result_rows values (from uid on) of an encoded result; `resolve(kind, name)` gives name ids."""
    check, location, kind = names
    return (
        uid,
        resolve(CHECK, check),
        started,
        resolve(LOCATION, location),
        resolve(TYPE, kind),
        status,
        duration,
        resolve(SHAPE, shape.text()),
        metrics,
        failed,
        extra,
        *rest,
    )


def encode_row_values(row: Sequence[Any], resolve: Callable[[int, str], int]) -> tuple[Any, ...]:
    """A row of the version 2 `results` table (rowid first, then its columns in order) as result_rows
    values (rowid first), for the migration. A row whose JSON does not parse is kept as it is, in the
    fallback shape, rather than dropped."""
    rowid, result_id, check, location, kind, started_at, status, duration_ms, error, metrics, assertions = row[:11]
    artifacts, details = row[11], row[12]
    started = encode_started(datetime.fromisoformat(str(started_at).replace("Z", "+00:00")).astimezone(UTC))
    try:
        parsed_metrics = json.loads(metrics)
        parsed_assertions = [Assertion(**item) for item in json.loads(assertions)]
        if not isinstance(parsed_metrics, dict):
            raise TypeError("metrics is not an object")
        shape, metrics_text, failed, extra = encode_values(parsed_metrics, parsed_assertions)
    except (ValueError, TypeError):
        shape, metrics_text, failed, extra = Shape(None, None), str(metrics), 0, assertions
    return (
        rowid,
        *row_values(
            encode_id(str(result_id)),
            (check, location, kind),
            started,
            STATUS_CODES.get(status, 2),
            encode_duration(float(duration_ms)),
            shape,
            metrics_text,
            failed,
            extra,
            (error, artifacts, details),
            resolve,
        ),
    )


# --- names --------------------------------------------------------------------------------------------


class NameTable:
    """Ids of `result_names` rows (check, location, type names and shapes), cached in memory.

    The writer resolves names inside its transaction; a name inserted by a transaction that is rolled
    back must not stay cached (its id may be given to another name later), so new ids are held apart
    until `committed()` and dropped by `rolled_back()`. A reader only looks names up (`name`, `id_of`)."""

    def __init__(self) -> None:
        self._ids: dict[tuple[int, str], int] = {}
        self._names: dict[int, str] = {}
        self._shapes: dict[int, Shape] = {}
        self._pending: dict[tuple[int, str], int] = {}

    def resolve(self, db: sqlite3.Connection, kind: int, name: str) -> int:
        """The id of a name, inserted when new (inside the caller's transaction)."""
        key = (kind, name)
        found = self._ids.get(key)
        if found is None:
            found = self._pending.get(key)
        if found is None:
            row = db.execute("SELECT id FROM result_names WHERE kind = ? AND name = ?", key).fetchone()
            if row is not None:
                found = int(row[0])
                self._ids[key] = found
                self._names[found] = name
            else:
                cursor = db.execute("INSERT INTO result_names (kind, name) VALUES (?, ?)", key)
                found = int(cursor.lastrowid or 0)
                self._pending[key] = found
        return found

    def committed(self) -> None:
        for key, found in self._pending.items():
            self._ids[key] = found
            self._names[found] = key[1]
        self._pending.clear()

    def rolled_back(self) -> None:
        self._pending.clear()

    def name(self, db: sqlite3.Connection, name_id: int) -> str:
        """The name of an id (committed rows only: a reader sees no other)."""
        found = self._names.get(name_id)
        if found is None:
            row = db.execute("SELECT name FROM result_names WHERE id = ?", (name_id,)).fetchone()
            if row is None:
                raise LookupError(f"the database names no id {name_id} in result_names (a damaged file?)")
            found = self._names[name_id] = str(row[0])
        return found

    def shape(self, db: sqlite3.Connection, shape_id: int) -> Shape:
        found = self._shapes.get(shape_id)
        if found is None:
            found = self._shapes[shape_id] = Shape.parse(self.name(db, shape_id))
        return found

    def id_of(self, db: sqlite3.Connection, kind: int, name: str) -> int | None:
        """The id of a committed name, or None when no row was ever stored under it."""
        key = (kind, name)
        found = self._ids.get(key)
        if found is None:
            row = db.execute("SELECT id FROM result_names WHERE kind = ? AND name = ?", key).fetchone()
            if row is None:
                return None
            found = self._ids[key] = int(row[0])
            self._names[found] = name
        return found
