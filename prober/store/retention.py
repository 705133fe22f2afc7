"""Retention: deleting what is older than `retention.raw` / `retention.rollup`, in small batches.

Each batch is one operation on the writer's queue (at most `batch` rows of one table), so results keep
being committed between batches and a prune of millions of rows never holds the write lock for long.

What goes when:
  results                                      started_at older than retention.raw
  current_state, probe_state                   not updated for retention.raw (a check removed from the config
                                               drops off the status page once its raw history is gone)
  rollups_hourly                               hour older than retention.rollup
  rollups_daily                                day older than retention.rollup
  incidents                                    resolved longer ago than retention.rollup; open ones never go
  notifications                                older than retention.rollup

Rollups are never derived from raw results after the fact, so deleting raw results loses no uptime
history. This module deletes and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlite_utils import Database

from prober.config.models import RetentionConfig
from prober.results import format_timestamp
from prober.store.codec import encode_started
from prober.store.rollups import hour_key
from prober.store.writer import Writer, utc

__all__ = ["DEFAULT_BATCH", "prune"]

DEFAULT_BATCH = 1000

# table -> (the column compared with the cutoff, which cutoff)
_PRUNED: dict[str, tuple[str, str]] = {
    "results": ("started_at", "raw"),
    "current_state": ("started_at", "raw"),
    "probe_state": ("updated_at", "raw"),
    "rollups_hourly": ("hour", "rollup_hour"),
    "rollups_daily": ("day", "rollup_day"),
    "incidents": ("resolved_at", "rollup"),
    "notifications": ("at", "rollup"),
}


_RESULTS_SQL = (
    "DELETE FROM result_rows WHERE rowid IN (SELECT r.rowid FROM result_names AS n CROSS JOIN result_rows AS r "
    "ON r.check_id = n.id AND r.started < ? WHERE n.kind = 0 LIMIT ?)"
)
"""Raw results are found check by check on (check_id, started): no index on the start time alone."""
_KEYS = {"rollups_hourly": '"check", location, hour', "rollups_daily": 'day, "check", location'}
"""WITHOUT ROWID tables name their rows by their primary key instead of a rowid."""


def _delete_batch(table: str, column: str, cutoff: str, batch: int) -> Callable[[Database], int]:
    if table == "results":
        sql = _RESULTS_SQL
        value: str | int = encode_started(datetime.fromisoformat(cutoff.replace("Z", "+00:00")))
    else:
        key = _KEYS.get(table, "rowid")
        sql = f"DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} WHERE {column} < ? LIMIT ?)"
        value = cutoff

    def op(db: Database) -> int:
        return db.execute(sql, (value, batch)).rowcount

    return op


async def prune(
    writer: Writer, retention: RetentionConfig, now: datetime, *, batch: int = DEFAULT_BATCH
) -> dict[str, int]:
    """Delete everything past retention, `batch` rows per transaction; return rows deleted per table."""
    if batch < 1:
        raise ValueError(f"the prune batch size must be at least 1, got {batch}")
    now = utc(now)
    cutoffs = {
        "raw": format_timestamp(now - timedelta(seconds=retention.raw)),
        "rollup": format_timestamp(now - timedelta(seconds=retention.rollup)),
        # keep the hour that contains the cutoff: it still holds results inside the retention period
        "rollup_hour": hour_key(now - timedelta(seconds=retention.rollup)),
        "rollup_day": hour_key(now - timedelta(seconds=retention.rollup))[:10],
    }
    counts: dict[str, int] = {}
    for table, (column, which) in _PRUNED.items():
        op = _delete_batch(table, column, cutoffs[which], batch)
        deleted = 0
        while True:
            count = await writer.run(op)
            deleted += count
            if count < batch:
                break
            await asyncio.sleep(0)  # let queued results go first
        counts[table] = deleted
    return counts
