"""The Alertmanager notifier (prober.notify.alertmanager): the alert a transition becomes, the `notifiers:`
configuration, the re-sender against a loopback receiver of `POST /api/v2/alerts`, and a hub `Daemon` paging a
real Alertmanager (Debian's prometheus-alertmanager) through the notification outbox: one peer down delays no
other, and a maintenance window sends nothing."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from daemon_helpers import Target, query, wait_until
from loopback import free_port

from prober.alerts import Transition
from prober.config.loader import ConfigError, load_config
from prober.daemon.service import Daemon, DaemonOptions
from prober.notify.alertmanager import (
    ALERTNAME,
    Resender,
    alert_labels,
    build_alert,
    message_for,
    page_url,
    peer_of,
    post_alerts,
    target,
)

START = datetime(2026, 12, 7, 9, 0, 0, 250000, tzinfo=UTC)
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def transition(kind: str, **changes: Any) -> Transition:
    values: dict[str, Any] = {
        "kind": kind,
        "check": "api",
        "incident_id": "api@2026-12-07T09:00:05.000Z",
        "locations": ("eu-west", "us-east"),
        "error": "connection refused",
        "started_at": START,
        "at": START + timedelta(seconds=5),
    }
    if kind == "resolved":
        values.update(ended_at=START + timedelta(minutes=3), downtime=180.0)
    values.update(changes)
    return Transition(**values)


# ---- the alert ----------------------------------------------------------------------------------------


def test_an_incident_is_one_alert_whose_labels_name_the_check_and_nothing_of_the_hub() -> None:
    labels = alert_labels("api", "web", "http", {"severity": "page", "team": "core"})
    assert labels == {
        "alertname": ALERTNAME,
        "check": "api",
        "group": "web",
        "type": "http",
        "severity": "page",
        "team": "core",
    }
    assert "group" not in alert_labels("api", None, "http", {}), "no empty label (Alertmanager drops them anyway)"
    firing = build_alert(transition("opened"), labels=labels, page_url=page_url("https://status.example.com/", "api"))
    assert firing == {
        "labels": labels,
        "annotations": {
            "summary": "DOWN: api",
            "description": firing["annotations"]["description"],
        },
        "startsAt": "2026-12-07T09:00:00.250Z",
        "generatorURL": "https://status.example.com/checks/api",
    }
    description = firing["annotations"]["description"]
    assert "api is down at eu-west, us-east: connection refused." in description
    assert "Down since 2026-12-07 09:00:00 UTC" in description
    resolved = build_alert(transition("resolved"), labels=labels, page_url=None)
    assert resolved["endsAt"] == "2026-12-07T09:03:00.250Z" and resolved["startsAt"] == firing["startsAt"]
    assert resolved["annotations"]["summary"] == "RESOLVED: api" and "generatorURL" not in resolved
    message = message_for(transition("opened"), firing)
    assert json.loads(message.body) == firing and message.title == "DOWN: api" and message.kind == "opened"
    assert peer_of(target("http://am-0:9093/")) == "http://am-0:9093"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("snippet", "says"),
    [
        ("notifiers:\n  pager: {}\n", "a notifier needs `urls` (Apprise URLs), `alertmanager` (Alertmanager peers)"),
        (
            "notifiers:\n  pager: {alertmanager: ['am-0:9093']}\n",
            "expected an http:// or https:// URL, got 'am-0:9093'",
        ),
        (
            "notifiers:\n  pager: {alertmanager: ['http://am:9093']}\n"
            "checks:\n  - {name: a, type: http, url: 'http://x/', alert: {labels: {check: b}}}\n",
            "the label 'check' is set by prober itself",
        ),
        (
            "checks:\n  - {name: a, type: http, url: 'http://x/', alert: {labels: {team-name: web}}}\n",
            "'team-name' is not a valid label name",
        ),
        ("status_page: {url: 'status.example.com'}\n", "expected an http:// or https:// URL, got 'status.example.com'"),
    ],
)
def test_a_bad_alertmanager_setting_is_refused_with_a_sentence(tmp_path: Path, snippet: str, says: str) -> None:
    path = write(tmp_path / "checks.yaml", "version: 1\n" + snippet)
    with pytest.raises(ConfigError) as error:
        load_config([str(path)])
    assert says in str(error.value), str(error.value)


def test_alertmanager_peers_and_labels_load(tmp_path: Path) -> None:
    path = write(
        tmp_path / "checks.yaml",
        """version: 1
status_page: {url: "https://status.example.com"}
notifiers:
  pager: {alertmanager: ["http://am-0:9093", "http://am-1:9093"], urls: ["json://127.0.0.1:9/hook"]}
checks:
  - {name: a, type: http, url: "http://x/", alert: {notify: [pager], labels: {severity: page}}}
""",
    )
    config = load_config([str(path)])
    assert config.notifiers["pager"].alertmanager == ["http://am-0:9093", "http://am-1:9093"]
    assert config.checks[0].model.alert.labels == {"severity": "page"}
    assert config.status_page.url == "https://status.example.com"


# ---- the re-sender against a loopback receiver ---------------------------------------------------------


class AlertsReceiver:
    """`POST /api/v2/alerts` on 127.0.0.1, recording every list of alerts; `status` answers with that code."""

    def __init__(self) -> None:
        self.posts: list[list[dict[str, Any]]] = []
        self.status = 200
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> AlertsReceiver:
        app = web.Application()

        async def alerts(request: web.Request) -> web.Response:
            self.posts.append(await request.json())
            return web.Response(status=self.status, text="" if self.status == 200 else "bad alerts")

        app.router.add_post("/api/v2/alerts", alerts)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[AlertsReceiver]:
    found = await AlertsReceiver().start()
    try:
        yield found
    finally:
        await found.stop()


async def test_a_firing_alert_is_re_sent_every_interval_and_a_resolved_one_for_a_while(
    receiver: AlertsReceiver,
) -> None:
    now = [100.0]
    resender = Resender(interval=30, resolved_for=60, clock=lambda: now[0])
    dead = f"http://127.0.0.1:{free_port()}"
    labels = alert_labels("api", None, "http", {})
    firing = build_alert(transition("opened"), labels=labels, page_url=None)
    resender.firing("api", [dead, receiver.url], firing)
    assert await resender.send_round() == {}, "nothing is due before an interval passed: the outbox just sent it"
    now[0] += 30
    report = await resender.send_round()
    assert report[receiver.url] is None and receiver.posts == [[firing]]
    assert "cannot reach the Alertmanager at " + dead in str(report[dead]), "the dead peer is told apart"
    now[0] += 10
    resolved = build_alert(transition("resolved"), labels=labels, page_url=None)
    resender.resolved("api", [receiver.url], resolved)
    for _ in range(3):
        now[0] += 30
        await resender.send_round()
    assert receiver.posts[1:] == [[resolved], [resolved]], "resolved is re-sent for resolved_for, then dropped"
    assert resender.alerts == {}


async def test_a_peer_that_refuses_the_alerts_says_so(receiver: AlertsReceiver) -> None:
    receiver.status = 400
    error = await post_alerts(receiver.url, [{"labels": {}}])
    assert error == f"the Alertmanager at {receiver.url} answered HTTP 400: bad alerts"


def test_the_re_send_interval_is_at_most_a_minute() -> None:
    with pytest.raises(ValueError, match="between 0 and 60 s, got 90"):
        Resender(interval=90)


# ---- a hub paging a real Alertmanager through the outbox ----------------------------------------------


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    if ALERTMANAGER is None:
        pytest.fail("prometheus-alertmanager is not installed (scripts/test installs it)")
    web_port, cluster_port = free_port(), free_port()
    config = write(tmp_path / "am.yml", "route: {receiver: none}\nreceivers:\n  - name: none\n")
    proc = subprocess.Popen(
        [ALERTMANAGER, f"--config.file={config}", f"--storage.path={tmp_path / 'am'}",
         f"--web.listen-address=127.0.0.1:{web_port}", f"--cluster.listen-address=127.0.0.1:{cluster_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{web_port}"
    finally:
        proc.terminate()
        proc.wait(10)


async def am_alerts(url: str) -> list[dict[str, Any]]:
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/api/v2/alerts") as response:
            found: list[dict[str, Any]] = await response.json()
            return found
    except aiohttp.ClientError:
        return []


@pytest.mark.slow
async def test_a_hub_pages_every_peer_through_the_outbox_and_a_dead_peer_delays_no_other(
    tmp_path: Path, alertmanager: str
) -> None:
    target = await Target().start()
    await target.stop()  # refused: the check is down
    dead = f"http://127.0.0.1:{free_port()}"
    checks = write(
        tmp_path / "checks.yaml",
        f"""version: 1
status_page: {{url: "https://status.example.com"}}
notifiers:
  pager: {{alertmanager: ["{dead}", "{alertmanager}"]}}
maintenance:
  - {{name: works, schedule: "* * * * *", duration: 2m, checks: [quiet]}}
checks:
  - {{name: api, type: http, group: web, url: "{target.url}", schedule: every 200ms, timeout: 1s,
     alert: {{after: 1, notify: [pager], labels: {{severity: page}}}}}}
  - {{name: quiet, type: http, url: "{target.url}", schedule: every 200ms, timeout: 1s,
     alert: {{after: 1, notify: [pager]}}}}
""",
    )
    db = tmp_path / "hub.db"
    daemon = Daemon(DaemonOptions(paths=[str(checks)], db=db, listen=None, notify_base_delay=0.3, stop_grace=2))
    task = asyncio.create_task(daemon.run())
    try:
        await wait_until(lambda: task.done() or bool(query(db, "SELECT 1 FROM incidents WHERE \"check\" = 'api'")), 15)
        found: list[dict[str, Any]] = []
        for _ in range(100):
            found = await am_alerts(alertmanager)
            if found:
                break
            await asyncio.sleep(0.1)
        assert [alert["labels"] for alert in found] == [
            {"alertname": ALERTNAME, "check": "api", "group": "web", "type": "http", "severity": "page"}
        ], "one alert, for api only: the check in maintenance sends nothing"
        assert found[0]["status"]["state"] == "active"
        assert found[0]["generatorURL"] == "https://status.example.com/checks/api"

        def pending() -> list[str]:
            return [row[0] for row in query(db, "SELECT url FROM notification_outbox")]

        await wait_until(lambda: pending() == [f"alertmanager+{dead}"], 5)  # the live peer's row is done, not the other
        sent = query(db, "SELECT url, outcome FROM notifications WHERE \"check\" = 'api' AND outcome = 'delivered'")
        assert sent == [(f"alertmanager+{alertmanager}", "delivered")]
        await target.start()
        for _ in range(100):  # Alertmanager lists unresolved alerts only: the resolution (endsAt passed) empties it
            found = await am_alerts(alertmanager)
            if not found:
                break
            await asyncio.sleep(0.1)
        assert found == [], f"the resolution did not reach Alertmanager: {found}"
        resolved = query(db, "SELECT kind FROM notifications WHERE url = ? AND outcome = 'delivered'",
                         f"alertmanager+{alertmanager}")  # fmt: skip
        assert [row[0] for row in resolved] == ["opened", "resolved"]
    finally:
        daemon.stop()
        await task
        await target.stop()


@pytest.mark.slow
def test_notify_test_posts_a_test_alert_to_every_peer(tmp_path: Path, alertmanager: str) -> None:
    from click.testing import CliRunner

    from prober.cli.commands import cli

    dead = f"http://127.0.0.1:{free_port()}"
    write(
        tmp_path / "checks.yaml", f'version: 1\nnotifiers:\n  pager: {{alertmanager: ["{alertmanager}", "{dead}"]}}\n'
    )
    for _ in range(50):  # the peer is listening
        if asyncio.run(am_alerts(alertmanager)) == [] and _listening(alertmanager):
            break
        time.sleep(0.1)
    outcome = CliRunner().invoke(cli, ["notify-test", str(tmp_path / "checks.yaml")], env={"COLUMNS": "400"})
    assert outcome.exit_code == 1, outcome.output  # the dead peer failed
    text = " ".join(outcome.output.split())
    assert f"cannot reach the Alertmanager at {dead}" in text, text
    found = asyncio.run(am_alerts(alertmanager))
    assert [alert["labels"] for alert in found] == [{"alertname": "ProberNotifyTest"}]


def _listening(url: str) -> bool:
    import socket

    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
