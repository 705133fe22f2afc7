"""Fill a database for the status-feed benchmark: N checks × D days of results, plus their check file.

    .venv/bin/python tests/bench/gen_feed_db.py OUT.db [--checks 1000] [--days 30] [--per-hour 1]

Writes, through the store's own `write_many` (so rollups and current state are exactly what the daemon
would have produced), `per_hour` results per check per hour for `days` days ending now, a few incidents
(resolved, and one open per 50 checks), and next to the database a `OUT.checks.yaml` naming every check
(with groups and types) so the API has a configuration to build the feed from.

Statuses are deterministic (seeded): most results are up, about 1 % down and 2 % degraded, and some
checks are down right now. Metrics look like each type's real ones (http status and phases, tls expiry,
hls staleness, websocket open latency, browser vitals) so /metrics has something to export.

Used by tests with small numbers (`generate(path, checks=20, days=3)`) and by bench_feed.py with the
full size. It never touches the network.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prober.results import Assertion, Result, Status
from prober.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, when run as a script
from store_seed import open_incident, resolve_incident  # incidents as the daemon writes them

TYPES = ("http", "http", "http", "tls", "hls", "websocket", "browser")
GROUPS = ("api", "web", "streaming", "realtime", "edge")
BATCH = 5000


@dataclass(frozen=True, slots=True)
class Generated:
    db: Path
    config: Path
    checks: int
    results: int
    incidents: int
    seconds: float


def check_name(index: int) -> str:
    return f"check-{index:05d}"


def check_type(index: int) -> str:
    return TYPES[index % len(TYPES)]


def check_group(index: int) -> str:
    return GROUPS[index % len(GROUPS)]


def metrics_for(kind: str, status: Status, latency: float, started: datetime, rng: random.Random) -> dict[str, Any]:
    down = status == "down"
    if kind == "http":
        return {
            "status": 503 if down else 200,
            "latency": latency,
            "dns": 0.001,
            "connect": 0.002,
            "tls": 0.011,
            "ttfb": latency * 0.8,
            "transfer": latency * 0.1,
            "body_size": 1234,
            "redirects": 0,
            "cert_days_remaining": 42.5,
        }
    if kind == "tls":
        not_after = started + timedelta(days=60 if not down else -2)
        return {
            "days_remaining": (not_after - started).total_seconds() / 86400,
            "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "chain_valid": not down,
            "hostname_match": True,
            "tls_version": "TLSv1.3",
            "handshake": latency,
        }
    if kind == "hls":
        return {
            "playlist_status": 200,
            "segment_status": 200,
            "target_duration": 6,
            "stale_for": 30.0 if down else rng.uniform(0.5, 6.0),
            "fresh": not down,
            "pdt_drift": rng.uniform(4.0, 12.0),
            "segment_fetch": latency,
            "variants_total": 3,
            "variants_failed": 1 if down else 0,
            "endlist": False,
        }
    if kind == "websocket":
        return {"connected": not down, "success_rate": 0.0 if down else 1.0, "open_latency": latency}
    return {
        "load": latency * 10,
        "ttfb": latency,
        "fcp": latency * 4,
        "lcp": latency * 6,
        "cls": 0.01,
        "page_errors": 1 if down else 0,
        "console_errors": 0,
        "requests": 12,
        "title": "Home",
    }


def _status(rng: random.Random, forced_down: bool) -> Status:
    if forced_down:
        return "down"
    roll = rng.random()
    return "down" if roll < 0.01 else "degraded" if roll < 0.03 else "up"


def results_for(
    index: int, now: datetime, days: int, per_hour: int, locations: tuple[str, ...], seed: int
) -> Iterator[Result]:
    """Every result of one check, oldest first; the newest ones are down for every 25th check."""
    rng = random.Random(seed * 1_000_003 + index)
    name, kind = check_name(index), check_type(index)
    base_latency = 0.02 + (index % 40) * 0.005
    first_hour = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hours = int((now - first_hour).total_seconds() // 3600) + 1
    for hour in range(hours):
        for slot in range(per_hour):
            started = first_hour + timedelta(hours=hour, seconds=(3600 / per_hour) * slot + index % 60)
            if started > now:
                return
            recent = (now - started) < timedelta(hours=2)
            for location in locations:
                status = _status(rng, forced_down=recent and index % 25 == 3)
                latency = base_latency * rng.uniform(0.7, 1.6) * (5 if status == "down" else 1)
                yield Result(
                    check=name,
                    type=kind,
                    location=location,
                    started_at=started,
                    duration_ms=latency * 1000 + 1.0,
                    status=status,
                    error=f"{name}: HTTP status 503, expected 2xx" if status == "down" else None,
                    metrics=metrics_for(kind, status, latency, started, rng),
                    assertions=[Assertion("status", "2xx", 200, status != "down", "expect")],
                )


def write_config(path: Path, checks: int, locations: tuple[str, ...]) -> None:
    lines = ["version: 1", "defaults:", "  schedule: every 1h", f"  locations: [{', '.join(locations)}]", "checks:"]
    for index in range(checks):
        kind = check_type(index)
        lines += [f"  - name: {check_name(index)}", f"    type: {kind}", f"    group: {check_group(index)}"]
        if kind == "tls":
            lines.append(f"    host: host{index}.example.com")
        elif kind == "websocket":
            lines.append(f"    url: wss://ws{index}.example.com/socket")
        elif kind == "hls":
            lines.append(f"    url: https://cdn{index}.example.com/live/master.m3u8")
        else:
            lines.append(f"    url: https://site{index}.example.com/health")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def _fill(
    path: Path, checks: int, days: int, per_hour: int, now: datetime, locations: tuple[str, ...], seed: int
) -> tuple[int, int]:
    written = incidents = 0
    async with Store(path, synchronous="NORMAL") as store:
        batch: list[Result] = []
        for index in range(checks):
            for result in results_for(index, now, days, per_hour, locations, seed):
                batch.append(result)
                if len(batch) >= BATCH:
                    written += await store.write_many(batch)
                    batch = []
        if batch:
            written += await store.write_many(batch)
        for index in range(0, checks, max(1, checks // 10)):
            started = now - timedelta(days=min(days, 2), hours=index % 24)
            incident = await open_incident(store, check_name(index), list(locations), "HTTP status 503", started)
            await resolve_incident(store, incident, started + timedelta(minutes=7 + index % 30))
            incidents += 1
        for index in range(3, checks, 50):
            await open_incident(
                store,
                check_name(index),
                list(locations),
                f"{check_name(index)}: HTTP status 503",
                now - timedelta(hours=1),
            )
            incidents += 1
    return written, incidents


def generate(
    path: str | Path,
    *,
    checks: int = 1000,
    days: int = 30,
    per_hour: int = 1,
    now: datetime | None = None,
    locations: tuple[str, ...] = ("default",),
    seed: int = 1,
) -> Generated:
    """Create (or add to) the database at `path` and write its check file next to it; return what was made."""
    db = Path(path)
    config = db.with_suffix(".checks.yaml")
    began = time.perf_counter()
    moment = now or datetime.now(UTC)
    write_config(config, checks, locations)
    written, incidents = asyncio.run(_fill(db, checks, days, per_hour, moment, locations, seed))
    return Generated(db, config, checks, written, incidents, time.perf_counter() - began)


async def generate_async(
    path: str | Path,
    *,
    checks: int = 1000,
    days: int = 30,
    per_hour: int = 1,
    now: datetime | None = None,
    locations: tuple[str, ...] = ("default",),
    seed: int = 1,
) -> Generated:
    """`generate` for callers already inside an event loop (tests)."""
    db = Path(path)
    config = db.with_suffix(".checks.yaml")
    began = time.perf_counter()
    write_config(config, checks, locations)
    written, incidents = await _fill(db, checks, days, per_hour, now or datetime.now(UTC), locations, seed)
    return Generated(db, config, checks, written, incidents, time.perf_counter() - began)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("db", help="the database file to create")
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-hour", type=int, default=1, help="results per check per hour")
    parser.add_argument("--locations", default="default", help="comma-separated locations")
    args = parser.parse_args(argv)
    made = generate(
        args.db,
        checks=args.checks,
        days=args.days,
        per_hour=args.per_hour,
        locations=tuple(args.locations.split(",")),
    )
    print(
        f"{made.db}: {made.checks} checks, {made.results:,} results, {made.incidents} incidents "
        f"in {made.seconds:.1f} s; checks file {made.config}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
