"""Pages survive a crash: a transition and its notifications commit together, and what was not delivered
before a `kill -9` is delivered after the restart (at least once; exactly once when nothing is killed).

Real `prober run` processes, real Apprise deliveries to a local webhook receiver that is down at times.
What docs/hardening.md promises: 20 `kill -9` at random moments with 50 checks every 1 s, flapping targets and a
receiver down about half of the time; `PRAGMA integrity_check` is ok after every kill and at the end; every
incident in the database was announced DOWN then RESOLVED and no page names an unknown incident; a page
delivered twice has a kill between its two copies; and at least one kill caught a page still undelivered.
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from daemon_helpers import Target, query, scalar, start_daemon, stop_daemon, wait_until
from webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.slow

INCIDENT = re.compile(r"Incident (\S+)\.")


def _checks(path: Path, stable: Target, flappers: list[Target], hook: str) -> Path:
    lines = ["notifiers:", f"  hook: {{urls: ['{hook}']}}", "checks:"]
    for index in range(40):
        lines.append(
            f"  - {{name: steady-{index}, type: http, url: '{stable.url}', schedule: every 1s, timeout: 800ms}}"
        )
    for index, target in enumerate(flappers):
        lines.append(
            f"  - {{name: flap-{index}, type: http, url: '{target.url}', schedule: every 1s, timeout: 800ms,"
            " alert: {after: 2, recover_after: 1, notify: [hook]}}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def _deliveries(receiver: WebhookReceiver) -> list[tuple[str, str]]:
    """(title, incident id) of every message received, in order."""
    found = []
    for body in receiver.received:
        match = INCIDENT.search(str(body.get("message")))
        found.append((str(body.get("title")), match.group(1) if match else "?"))
    return found


async def test_twenty_kill_9_lose_no_page_and_duplicate_none_between_kills(free_port: int, tmp_path: Path) -> None:
    rng = random.Random(20261202)
    stable = await Target().start()
    flappers = [await Target().start() for _ in range(10)]
    port = free_port
    receiver = WebhookReceiver(port=port)
    await receiver.start()
    checks = _checks(tmp_path / "checks.yaml", stable, flappers, receiver.url)
    db = tmp_path / "prober.db"
    kills: list[float] = []
    pending_at_kills = 0
    stop_chaos = asyncio.Event()

    async def flap() -> None:
        while not stop_chaos.is_set():
            target = rng.choice(flappers)
            if target._runner is None:
                await target.start()
            else:
                await target.stop()
            await asyncio.sleep(rng.uniform(0.3, 1.2))

    async def receiver_down_half_the_time() -> None:
        while not stop_chaos.is_set():
            await asyncio.sleep(rng.uniform(1.0, 3.0))
            await receiver.stop()
            await asyncio.sleep(rng.uniform(1.0, 3.0))
            await receiver.start()

    chaos = [asyncio.create_task(flap()), asyncio.create_task(receiver_down_half_the_time())]
    proc = await start_daemon(str(checks), "--db", str(db), "--listen", "off", cwd=tmp_path)
    try:
        await wait_until(lambda: scalar(db, "select count(*) from results") >= 50, 30)
        for _ in range(20):
            await asyncio.sleep(rng.uniform(1.0, 2.5))  # a random moment of a life of 1-2.5 s
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            kills.append(time.monotonic())
            # The file a kill -9 leaves behind is sound before anything repairs it (checked read-only).
            checked = query(db, "pragma integrity_check")
            assert checked == [("ok",)], f"after kill {len(kills)}: {checked}"
            pending_at_kills += scalar(db, "select count(*) from notification_outbox")
            proc = await start_daemon(str(checks), "--db", str(db), "--listen", "off", cwd=tmp_path)
        stop_chaos.set()
        await asyncio.gather(*chaos)
        for target in flappers:  # everything healthy: every open incident resolves
            if target._runner is None:
                await target.start()
        if receiver._runner is None:
            await receiver.start()
        await wait_until(lambda: scalar(db, "select count(*) from incidents where resolved_at is null") == 0, 30)
        # A lane may be sleeping in its backoff (up to 60 s): a graceful restart resumes the outbox at once.
        code, output = await stop_daemon(proc)
        assert code == 0, output
        proc = await start_daemon(str(checks), "--db", str(db), "--listen", "off", cwd=tmp_path)
        before = scalar(db, "select count(*) from results")
        await wait_until(lambda: scalar(db, "select count(*) from results") > before + 50, 30)  # it is running
        await wait_until(lambda: scalar(db, "select count(*) from notification_outbox") == 0, 45)
        await asyncio.sleep(1.0)
    finally:
        stop_chaos.set()
        for task in chaos:
            task.cancel()
        await asyncio.gather(*chaos, return_exceptions=True)
        code, output = await stop_daemon(proc)
        await receiver.stop()
        await stable.stop()
        for target in flappers:
            await target.stop()
    assert code == 0, output
    assert query(db, "pragma integrity_check") == [("ok",)]
    incidents = {key for (key,) in query(db, "select key from incidents")}
    assert len(incidents) >= 5, "the chaos opened too few incidents to mean anything"
    assert scalar(db, "select count(*) from incidents where resolved_at is null") == 0
    delivered = _deliveries(receiver)
    by_incident: dict[str, list[str]] = {}
    for title, incident in delivered:
        by_incident.setdefault(incident, []).append(title.split(":")[0])
    # Every incident the database knows was announced, DOWN first, then RESOLVED; no page for an unknown one.
    assert set(by_incident) == incidents, (sorted(incidents - set(by_incident)), sorted(set(by_incident) - incidents))
    wrong = {key: kinds for key, kinds in by_incident.items() if set(kinds) != {"DOWN", "RESOLVED"}}
    assert not wrong, f"incidents without both DOWN and RESOLVED: {wrong}"
    out_of_order = {key: kinds for key, kinds in by_incident.items() if kinds.index("DOWN") > kinds.index("RESOLVED")}
    assert not out_of_order, f"RESOLVED before DOWN: {out_of_order}"
    # Duplicates only where a kill fell between the first copy and the second.
    times = receiver.received_at
    first_seen: dict[tuple[str, str], int] = {}
    counts = Counter(delivered)
    for index, item in enumerate(delivered):
        if item in first_seen:
            earlier = first_seen[item]
            assert any(times[earlier] <= kill <= times[index] for kill in kills), (
                f"{item} was delivered twice with no kill between the two copies"
            )
        else:
            first_seen[item] = index
    assert pending_at_kills > 0, "no kill caught a page undelivered: the restarts' resending went untested"
    duplicates = sum(count - 1 for count in counts.values())
    assert duplicates <= len(kills), f"{duplicates} duplicate pages for {len(kills)} kills"
    print(
        f"\n{len(incidents)} incidents, {len(delivered)} pages, {duplicates} duplicates over {len(kills)} kills, "
        f"{pending_at_kills} pages pending at the kills"
    )
