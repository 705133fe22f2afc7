"""The store's public interface: an honest __all__ and the methods the daemon, alerts and API rely on."""

from __future__ import annotations

import inspect

import prober.store
from prober.store import Store


def test_every_name_in_all_exists_and_nothing_public_is_left_out() -> None:
    assert all(hasattr(prober.store, name) for name in prober.store.__all__)
    assert len(set(prober.store.__all__)) == len(prober.store.__all__)
    assert {"Store", "StoreError", "CurrentState", "Incident", "Notification", "Rollup"} <= set(prober.store.__all__)


def test_writes_are_coroutines_and_reads_are_plain_methods() -> None:
    writes = {
        "start", "close", "write", "write_many", "load", "save", "apply_transition", "record_delivery",
        "pending_notifications", "forget_notifications", "save_push_cursor", "prune",
    }  # fmt: skip
    reads = {
        "current", "checks", "results", "result", "uptime", "uptimes", "latency_percentiles", "rollups",
        "incidents", "incident", "notifications", "load_alert_states", "load_probe_state",
        "hourly_rows", "daily_uptime", "location_uptime", "raw_points", "failed_results", "newest_artifacts",
        "artifact_listed",
    }  # fmt: skip
    for name in writes:
        assert inspect.iscoroutinefunction(getattr(Store, name)), name
    for name in reads:
        method = getattr(Store, name)
        assert callable(method) and not inspect.iscoroutinefunction(method), name
