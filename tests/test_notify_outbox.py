"""Pages survive a crash: a message is committed with its transition in the notification outbox, a
`kill -9` while it is still being retried does not lose it (it is delivered after the restart, once), and
a message undeliverable for 24 h is recorded as abandoned with a log line."""

from __future__ import annotations

import logging
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemon_helpers import Target, query, scalar, start_daemon, stop_daemon, wait_until
from test_notify import Recorder, closed_port_url, transition
from webhook_receiver import WebhookReceiver

from prober.notify.message import format_message
from prober.notify.notifier import Notifier
from prober.store import IncidentChange, OutboxEntry, Store


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.mark.slow
async def test_a_down_still_being_retried_when_killed_is_delivered_once_after_the_restart(
    tmp_path: Path, free_port: int
) -> None:
    dead = Target()
    await dead.start()
    await dead.stop()
    hook_port = free_port  # nothing listens there yet: every delivery is refused
    checks = tmp_path / "checks.yaml"
    checks.write_text(
        f"""
notifiers:
  hook: {{urls: ["json://127.0.0.1:{hook_port}/hook"]}}
checks:
  - {{name: api, type: http, url: '{dead.url}', schedule: every 1s, alert: {{after: 1, notify: [hook]}}}}
"""
    )
    db = tmp_path / "prober.db"
    proc = await start_daemon(str(checks), "--db", str(db), "--listen", "off", cwd=tmp_path)
    try:
        await wait_until(lambda: scalar(db, "select count(*) from notifications where outcome = 'retrying'") >= 1, 20)
        assert query(db, "select kind, title from notification_outbox") == [("opened", "DOWN: api")]
        assert query(db, "select key is not null from incidents") == [(1,)]
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert query(db, "select title from notification_outbox") == [("DOWN: api",)], "the page outlived the crash"
    async with WebhookReceiver(port=hook_port) as receiver:
        proc = await start_daemon(str(checks), "--db", str(db), "--listen", "off", cwd=tmp_path)
        try:
            await receiver.wait_for(1, timeout=20)
            await wait_until(lambda: scalar(db, "select count(*) from notification_outbox") == 0, 10)
            await wait_until(lambda: scalar(db, "select count(*) from results") >= 4, 20)
        finally:
            code, output = await stop_daemon(proc)
        assert code == 0, output
        assert [item["title"] for item in receiver.received] == ["DOWN: api"], "once, not again for the open incident"
    delivered = query(db, "select incident_id is not null from notifications where outcome = 'delivered'")
    assert delivered == [(1,)], "the delivery is recorded against its incident"


async def test_a_message_undeliverable_for_24_hours_is_abandoned_with_a_log_line(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(record=recorder, base_delay=0.01)
    message = format_message(transition("opened"))
    day_ago = datetime.now(UTC) - timedelta(hours=24, seconds=1)
    with caplog.at_level(logging.ERROR, logger="prober.notify"):
        notifier.enqueue(message, closed_port_url(), outbox_id=7, created_at=day_ago)
        await recorder.wait(lambda items: len(items) == 1)
    await notifier.aclose(1)
    item = recorder.items[0]
    assert (item.outcome, item.outbox_id, item.final) == ("abandoned", 7, True)
    assert item.error is not None and item.error.startswith("undeliverable for 1d")
    assert any("Abandoned 'DOWN: api-health'" in r.getMessage() for r in caplog.records)


async def test_a_young_message_to_a_dead_url_keeps_being_retried_past_the_old_attempt_limit(recorder: Recorder) -> None:
    notifier = Notifier(record=recorder, base_delay=0.01, max_delay=0.02)
    notifier.enqueue(format_message(transition("opened")), closed_port_url(), outbox_id=1)
    await recorder.wait(lambda items: len(items) >= 8)
    assert {item.outcome for item in recorder.items} == {"retrying"}, "no give-up before 24 h"
    await notifier.aclose(0.1)
    assert notifier.pending == 0


async def test_a_transition_and_its_messages_commit_together_and_a_delivery_removes_the_row(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    change = IncidentChange("opened", "api@t1", ["default"], "refused", now)
    entry = OutboxEntry("json://u:secret-pass@127.0.0.1:9/hook", "json://u:****@127.0.0.1:9/hook", "opened", "api",
                        "api@t1", "DOWN: api", "api is down")  # fmt: skip
    async with Store(tmp_path / "prober.db") as store:
        ids = await store.apply_transition("api", {"check": "api"}, [change], [entry, entry], now)
        assert len(ids) == 2 and ids[0] < ids[1]
        assert [row.id for row in await store.pending_notifications()] == ids
        row = {"check": "api", "kind": "opened", "url": entry.url_redacted, "attempt": 1, "ok": 1,
               "outcome": "delivered", "error": None, "at": "2026-01-01T00:00:00Z"}  # fmt: skip
        await store.record_delivery(ids[0], "api@t1", row, finished=True)
        await store.record_delivery(ids[1], "api@t1", {**row, "ok": 0, "outcome": "retrying"}, finished=False)
        pending = await store.pending_notifications()
        assert [(r.id, r.attempts) for r in pending] == [(ids[1], 1)]
        assert store.incidents(limit=5)[0]["resolved_at"] is None
        await store.apply_transition("api", None, [IncidentChange("resolved", "api@t1", [], None, now, now)], [], now)
        assert store.incidents(limit=5)[0]["resolved_at"] is not None
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("prober.db*"))
    assert b"secret-pass" not in raw, "the outbox keeps a digest of the URL, never the URL"
