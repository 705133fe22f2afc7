"""Apprise delivery: real json:// deliveries to a loopback receiver, retries, backoff, bounds, redaction."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from loopback import free_port
from webhook_receiver import WebhookReceiver

from prober.alerts import Transition
from prober.notify.message import DeliveryAttempt, build_test_message, format_message
from prober.notify.notifier import Notifier

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def transition(kind: str = "opened", **kw: object) -> Transition:
    fields: dict[str, object] = {
        "kind": kind,
        "check": "api-health",
        "incident_id": "api-health@2026-11-23T08:01:00.000Z",
        "locations": ("eu-west", "us-east"),
        "error": "connection refused",
        "started_at": T0,
        "at": T0 + timedelta(minutes=1),
    }
    if kind == "resolved":
        fields.update(at=T0 + timedelta(minutes=5, seconds=12), ended_at=T0 + timedelta(minutes=5), downtime=300.0)
    fields.update(kw)
    return Transition(**fields)  # type: ignore[arg-type]


class Recorder:
    """The `record` callback: keeps every DeliveryAttempt with the monotonic time it arrived."""

    def __init__(self) -> None:
        self.items: list[DeliveryAttempt] = []
        self.times: list[float] = []
        self._changed = asyncio.Condition()

    async def __call__(self, item: DeliveryAttempt) -> None:
        async with self._changed:
            self.items.append(item)
            self.times.append(time.monotonic())
            self._changed.notify_all()

    async def wait(self, predicate: Callable[[list[DeliveryAttempt]], bool], timeout: float = 5.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self.items)), timeout)

    @property
    def outcomes(self) -> list[str]:
        return [item.outcome for item in self.items]


def closed_port_url(path: str = "/hook", userinfo: str = "") -> str:
    return f"json://{userinfo}127.0.0.1:{free_port()}{path}"


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def test_an_opened_incident_reaches_a_real_receiver_as_an_apprise_failure(
    hook: WebhookReceiver, recorder: Recorder
) -> None:
    notifier = Notifier(record=recorder)
    notifier.submit(transition(), [hook.url])
    (body,) = await hook.wait_for(1)
    assert body["type"] == "failure"
    assert body["title"] == "DOWN: api-health"
    assert "api-health is down at eu-west, us-east: connection refused." in body["message"]
    assert "2026-11-23 08:00:00 UTC" in body["message"]
    await recorder.wait(lambda items: len(items) == 1)
    (attempt,) = recorder.items
    assert (attempt.outcome, attempt.attempt, attempt.kind, attempt.check) == ("delivered", 1, "opened", "api-health")
    assert attempt.url == hook.url and attempt.ok and attempt.final
    await notifier.aclose(1)


async def test_each_kind_uses_its_own_apprise_type_and_arrives_in_order(hook: WebhookReceiver) -> None:
    notifier = Notifier()
    notifier.submit(transition("opened"), [hook.url])
    notifier.submit(transition("repeat", at=T0 + timedelta(hours=1)), [hook.url])
    notifier.submit(transition("resolved"), [hook.url])
    bodies = await hook.wait_for(3)
    assert [b["type"] for b in bodies] == ["failure", "warning", "success"]
    assert [b["title"] for b in bodies] == ["DOWN: api-health", "STILL DOWN: api-health", "RESOLVED: api-health"]
    assert "for 1h now" in bodies[1]["message"]
    assert "back up after 5m of downtime" in bodies[2]["message"]
    await notifier.aclose(1)


async def test_send_test_reports_success_and_failure_per_url(hook: WebhookReceiver, recorder: Recorder) -> None:
    dead = closed_port_url()
    report = await Notifier(record=recorder).send_test([hook.url, dead])
    assert report[hook.url] is None
    error = report[dead]
    assert error is not None and "connection error" in error.lower()
    (body,) = hook.received
    assert body["type"] == "info" and body["title"] == "prober test notification"
    assert sorted(item.outcome for item in recorder.items) == ["delivered", "failed"]
    assert {item.kind for item in recorder.items} == {"test"}


async def test_send_test_keeps_urls_that_redact_alike_apart() -> None:
    first, second = closed_port_url("/T1/Secret0ne"), closed_port_url("/T1/Secret0ne")
    second = second.replace("Secret0ne", "SecretTw0")
    report = await Notifier().send_test([first, second])
    assert len(report) == 2 and all(error for error in report.values())


async def test_a_closed_port_is_retried_with_exponential_backoff_and_every_attempt_recorded(recorder: Recorder) -> None:
    notifier = Notifier(record=recorder, base_delay=0.05, max_attempts=4)
    notifier.submit(transition(), [closed_port_url()])
    await recorder.wait(lambda items: len(items) == 4)
    assert recorder.outcomes == ["retrying", "retrying", "retrying", "failed"]
    assert [item.attempt for item in recorder.items] == [1, 2, 3, 4]
    assert [item.next_retry_in for item in recorder.items] == [0.05, 0.1, 0.2, None]
    gaps = [later - earlier for earlier, later in zip(recorder.times, recorder.times[1:], strict=False)]
    assert all(gap >= delay * 0.9 for gap, delay in zip(gaps, [0.05, 0.1, 0.2], strict=True))
    assert all("connection error" in (item.error or "").lower() for item in recorder.items)
    assert notifier.pending == 0
    await notifier.aclose(1)


async def test_backoff_doubles_up_to_the_cap() -> None:
    notifier = Notifier(base_delay=2, max_delay=10)
    assert [notifier.backoff(n) for n in range(1, 6)] == [2, 4, 8, 10, 10]


async def test_a_delivery_that_fails_at_first_succeeds_on_retry_and_the_resolve_waits_its_turn(
    recorder: Recorder,
) -> None:
    async with WebhookReceiver(fail_first=2) as flaky:
        notifier = Notifier(record=recorder, base_delay=0.05)
        notifier.submit(transition("opened"), [flaky.url])
        notifier.submit(transition("resolved"), [flaky.url])
        bodies = await flaky.wait_for(2)
        assert [b["type"] for b in bodies] == ["failure", "success"]
        assert flaky.requests == 4
        await recorder.wait(lambda items: len(items) == 4)
        assert [(i.kind, i.outcome) for i in recorder.items] == [
            ("opened", "retrying"),
            ("opened", "retrying"),
            ("opened", "delivered"),
            ("resolved", "delivered"),
        ]
        await notifier.aclose(1)


async def test_a_slow_receiver_blocks_neither_submit_nor_other_urls(hook: WebhookReceiver) -> None:
    async with WebhookReceiver(delay=0.5) as slow:
        notifier = Notifier()
        began = time.monotonic()
        for n in range(3):
            notifier.submit(transition(check=f"c{n}"), [slow.url, hook.url])
        assert time.monotonic() - began < 0.05
        await hook.wait_for(3, timeout=2)
        assert len(slow.received) == 0
        await slow.wait_for(1, timeout=2)
        await notifier.aclose(0.1)


async def test_aclose_with_pending_retries_returns_within_its_bound(recorder: Recorder) -> None:
    notifier = Notifier(record=recorder, base_delay=30, max_attempts=5)
    url = closed_port_url()
    notifier.submit(transition("opened"), [url])
    notifier.submit(transition("resolved"), [url])
    await recorder.wait(lambda items: len(items) == 1)
    began = time.monotonic()
    await notifier.aclose(timeout=0.3)
    assert time.monotonic() - began < 1.5
    assert recorder.outcomes == ["retrying", "abandoned", "abandoned"]
    assert [(i.kind, i.attempt) for i in recorder.items[1:]] == [("opened", 1), ("resolved", 0)]
    assert notifier.pending == 0


async def test_aclose_lets_queued_deliveries_finish_first(hook: WebhookReceiver) -> None:
    notifier = Notifier()
    notifier.submit(transition(), [hook.url])
    await notifier.aclose(timeout=5)
    assert len(hook.received) == 1
    notifier.submit(transition("resolved"), [hook.url])
    assert notifier.pending == 0


async def test_an_url_apprise_does_not_know_fails_once_without_retries(recorder: Recorder) -> None:
    notifier = Notifier(record=recorder, base_delay=0.01)
    notifier.submit(transition(), ["nosuchservice://example/abc"])
    await recorder.wait(lambda items: len(items) == 1)
    await notifier.aclose(1)
    (item,) = recorder.items
    assert item.outcome == "failed" and "does not understand this URL" in (item.error or "")


async def test_notifier_urls_are_redacted_in_records_and_logs(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = closed_port_url("/hooks/Zx8Kq2Lm9Pw4", userinfo="admin:Sup3rSecretPw@")
    notifier = Notifier(record=recorder, base_delay=0.01, max_attempts=2)
    notifier.submit(transition(), [url])
    await recorder.wait(lambda items: len(items) == 2)
    await notifier.aclose(1)
    for secret in ("Sup3rSecretPw", "Zx8Kq2Lm9Pw4"):
        assert secret not in caplog.text
        assert all(secret not in str(item.to_json()) for item in recorder.items)
    assert recorder.items[0].url.startswith("json://admin:****@127.0.0.1:")
    assert "Could not send 'DOWN: api-health' to json://admin:****@" in caplog.text


async def test_transitions_inside_a_maintenance_window_are_not_sent(hook: WebhookReceiver) -> None:
    notifier = Notifier()
    notifier.submit(transition("resolved", notify=False), [hook.url])
    assert notifier.pending == 0
    await notifier.aclose(1)
    assert hook.requests == 0


async def test_the_same_url_in_two_notifiers_gets_one_message(hook: WebhookReceiver) -> None:
    notifier = Notifier()
    notifier.submit(transition(), [hook.url, hook.url, ""])
    assert notifier.pending == 1
    await notifier.aclose(5)
    assert len(hook.received) == 1


async def test_a_full_queue_drops_the_oldest_message_and_records_it(recorder: Recorder) -> None:
    notifier = Notifier(record=recorder, base_delay=30, max_pending=2)
    url = closed_port_url()
    for n in range(4):
        notifier.submit(transition(check=f"c{n}"), [url])
    await recorder.wait(lambda items: len([i for i in items if i.outcome == "dropped"]) == 2)
    dropped = [i.check for i in recorder.items if i.outcome == "dropped"]
    assert dropped == ["c0", "c1"]
    await notifier.aclose(0.1)


async def test_a_failing_record_callback_does_not_stop_deliveries(hook: WebhookReceiver) -> None:
    async def broken(item: DeliveryAttempt) -> None:
        raise RuntimeError("database is locked")

    notifier = Notifier(record=broken)
    notifier.submit(transition("opened"), [hook.url])
    notifier.submit(transition("resolved"), [hook.url])
    await hook.wait_for(2)
    await notifier.aclose(1)


def test_message_names_check_locations_error_and_times() -> None:
    opened = format_message(transition())
    assert opened.title == "DOWN: api-health" and opened.notify_type == "failure"
    assert opened.body.splitlines() == [
        "api-health is down at eu-west, us-east: connection refused.",
        "Down since 2026-11-23 08:00:00 UTC (detected 2026-11-23 08:01:00 UTC).",
        "Incident api-health@2026-11-23T08:01:00.000Z.",
    ]
    resolved = format_message(transition("resolved"))
    assert resolved.notify_type == "success"
    assert resolved.body.splitlines()[:2] == [
        "api-health is back up after 5m of downtime.",
        "It was down at eu-west, us-east from 2026-11-23 08:00:00 UTC to 2026-11-23 08:05:00 UTC: connection refused.",
    ]


def test_message_notes_flapping_and_leaves_out_the_default_location() -> None:
    message = format_message(transition(flapping=True, recent_incidents=3, locations=("default",), error=None))
    assert message.body.splitlines()[0] == "api-health is down: no error message was recorded."
    assert "Flapping: this is incident 3 in the last 30m." in message.body
    assert format_message(transition("repeat")).notify_type == "warning"
    assert build_test_message(T0).notify_type == "info"


async def test_the_receiver_also_runs_as_a_separate_process_writing_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "received.jsonl"
    script = Path(__file__).with_name("webhook_receiver.py")
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), "--port", "0", "--out", str(out), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        ready = await asyncio.wait_for(process.stdout.readline(), timeout=10)
        port = int(ready.split()[1])
        report = await Notifier().send_test([f"json://127.0.0.1:{port}/hook"])
        assert list(report.values()) == [None]
        (line,) = out.read_text().splitlines()
        assert json.loads(line)["type"] == "info"
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), timeout=5) == 0
