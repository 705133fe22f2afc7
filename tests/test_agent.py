"""Agents pushing to a hub (docs/deployment.md): a real hub (`Daemon` serving the API on 127.0.0.1) and a real agent
`Daemon` probing a loopback target every 200ms. Results arrive once, survive the hub being down or
refusing the token, are not resent after a restart, and the agent never notifies. The pusher's answers
to each kind of HTTP reply are checked against a scripted hub; the `run` options through the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp import web
from click.testing import CliRunner
from daemon_helpers import Target, query, scalar, wait_until
from webhook_receiver import WebhookReceiver

from prober.agent import Pusher, PushSettings, check_push_url, read_token_file
from prober.cli.commands import cli
from prober.daemon.service import Daemon, DaemonOptions
from prober.results import Result
from prober.store import Store

if TYPE_CHECKING:
    from conftest import ProberCli

TOKEN = "eu-west-test-token-5b1d"
FAST = PushSettings(batch_size=500, min_delay=0.05, max_delay=0.3, poll_interval=0.1, request_timeout=5)


def write_checks(path: Path, target: Target, tokens: dict[str, str], extra: str = "") -> Path:
    """The one check file deployed at the hub and at the agent: the checks run only at eu-west."""
    listed = ", ".join(f"{location}: {token!r}" for location, token in tokens.items())
    path.write_text(
        f"""
ingest:
  tokens: {{{listed}}}
checks:
  - {{name: api, type: http, url: "{target.url}", schedule: every 200ms, timeout: 1s, locations: [eu-west]}}
{extra}
"""
    )
    return path


def ids(db: Path, location: str = "eu-west") -> set[str]:
    return {row[0] for row in query(db, "SELECT id FROM results WHERE location = ?", location)}


class Hub:
    """A hub: `Daemon` at location default serving the API on a fixed port, so it can come back on it."""

    def __init__(self, checks: Path, db: Path, port: int) -> None:
        self.checks, self.db, self.port = checks, db, port
        self.daemon: Daemon | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Hub:
        options = DaemonOptions(paths=[str(self.checks)], db=self.db, listen=f"127.0.0.1:{self.port}", stop_grace=2)
        self.daemon = Daemon(options)
        self._task = asyncio.create_task(self.daemon.run())

        def listening() -> bool:
            assert self._task is not None
            if self._task.done():
                self._task.result()  # raise what stopped it
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", self.port)) == 0

        await wait_until(listening, 10)
        return self

    async def stop(self) -> None:
        if self.daemon is not None and self._task is not None:
            self.daemon.stop()
            await self._task
        self.daemon = self._task = None


def agent_options(checks: Path, db: Path, hub: Hub, token: str = TOKEN) -> DaemonOptions:
    return DaemonOptions(
        paths=[str(checks)],
        db=db,
        location="eu-west",
        listen=None,
        push_url=hub.url,
        token=token,
        push_settings=FAST,
        stop_grace=2,
    )


@asynccontextmanager
async def running(options: DaemonOptions) -> AsyncIterator[Daemon]:
    daemon = Daemon(options)
    task = asyncio.create_task(daemon.run())
    await wait_until(lambda: daemon.pusher is not None or task.done(), 10)
    if task.done():
        task.result()
    try:
        yield daemon
    finally:
        daemon.stop()
        await task


@dataclass
class World:
    tmp: Path
    target: Target
    hub: Hub
    agent_db: Path
    agent_checks: Path


@pytest.fixture
async def world(free_port: int, tmp_path: Path) -> AsyncIterator[World]:
    target = await Target().start()
    hub_checks = write_checks(tmp_path / "hub.yaml", target, {"eu-west": TOKEN})
    agent_checks = write_checks(tmp_path / "agent.yaml", target, {"eu-west": TOKEN})
    hub = Hub(hub_checks, tmp_path / "hub.db", free_port)
    try:
        yield World(tmp_path, target, hub, tmp_path / "agent.db", agent_checks)
    finally:
        await hub.stop()
        await target.stop()


# ---- a real hub and a real agent ----------------------------------------------------------------------


async def test_results_arrive_at_the_hub_with_the_agents_location_and_only_the_hub_notifies(
    tmp_path: Path, free_port: int
) -> None:
    target = await Target().start()
    async with WebhookReceiver() as hook:
        broken = (
            "  - {name: broken, type: http, url: 'http://127.0.0.1:1/', schedule: every 200ms, locations: [eu-west],"
            " alert: {after: 1, notify: [hook]}}\n"
            f"notifiers:\n  hook: {{urls: ['{hook.url}']}}"
        )
        hub_checks = write_checks(tmp_path / "hub.yaml", target, {"eu-west": TOKEN}, broken)
        agent_checks = write_checks(tmp_path / "agent.yaml", target, {"eu-west": TOKEN}, broken)
        hub = await Hub(hub_checks, tmp_path / "hub.db", free_port).start()
        agent_db = tmp_path / "agent.db"
        try:
            async with running(agent_options(agent_checks, agent_db, hub)):
                await wait_until(
                    lambda: scalar(hub.db, "SELECT count(*) FROM results WHERE \"check\" = 'api'") >= 3, 10
                )
                messages = await hook.wait_for(1, timeout=10)
            assert [message["title"] for message in messages] == ["DOWN: broken"]
            assert "eu-west" in messages[0]["message"]
        finally:
            await hub.stop()
            await target.stop()
    # at least the 3 api results waited for and the broken one behind the DOWN message
    assert ids(agent_db) == ids(hub.db) and len(ids(hub.db)) >= 4, "every agent result arrives, after the last flush"
    assert scalar(hub.db, "SELECT count(*) FROM results WHERE location != 'eu-west'") == 0
    assert query(hub.db, 'SELECT "check" FROM incidents') == [("broken",)]
    assert scalar(agent_db, "SELECT count(*) FROM incidents") == 0, "alerts are the hub's job"
    assert scalar(agent_db, "SELECT count(*) FROM notifications") == 0
    assert scalar(agent_db, "SELECT count(*) FROM alert_state") == 0


async def test_results_made_while_the_hub_is_down_arrive_exactly_once_when_it_returns(world: World) -> None:
    hub = await world.hub.start()
    async with running(agent_options(world.agent_checks, world.agent_db, hub)) as agent:
        await wait_until(lambda: len(ids(hub.db)) >= 2, 10)
        await hub.stop()
        before = ids(hub.db)
        await wait_until(lambda: len(ids(world.agent_db) - before) >= 5, 10)
        assert agent.pusher is not None
        assert agent.pusher.stats.failed_attempts >= 1
        assert "cannot reach the hub" in (agent.pusher.stats.last_error or "")
        await hub.start()  # the same port and database
        made = ids(world.agent_db)
        await wait_until(lambda: made <= ids(hub.db), 10)
        pusher = agent.pusher
        await wait_until(lambda: pusher.stats.last_error is None, 5)  # the recovery is noticed, not just survived
    assert ids(hub.db) == ids(world.agent_db)
    # nothing counted twice: the hourly rollups count each result once
    counted = scalar(hub.db, "SELECT sum(count) FROM rollups_hourly WHERE location = 'eu-west'")
    assert counted == len(ids(hub.db))


async def test_a_refused_token_is_logged_as_what_to_fix_and_the_backlog_arrives_once_the_hub_accepts_it(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    write_checks(world.hub.checks, world.target, {"eu-west": "the-hubs-other-token"})
    hub = await world.hub.start()
    async with running(agent_options(world.agent_checks, world.agent_db, hub)) as agent:
        assert agent.pusher is not None
        pusher = agent.pusher
        await wait_until(lambda: pusher.stats.failed_attempts >= 2 and len(ids(world.agent_db)) >= 3, 10)
        assert ids(hub.db) == set()
        refused = [r for r in caplog.records if r.name == "prober.agent" and r.levelno == logging.ERROR]
        assert refused, caplog.text
        message = refused[0].getMessage()
        assert "HTTP 401" in message and "ingest.tokens.eu-west" in message and "--token-file" in message
        assert pusher.stats.sent == 0

        write_checks(world.hub.checks, world.target, {"eu-west": TOKEN})
        assert hub.daemon is not None
        assert await hub.daemon.reload("token fixed")
        made = ids(world.agent_db)
        await wait_until(lambda: made <= ids(hub.db), 10)
    assert ids(hub.db) == ids(world.agent_db)
    assert TOKEN not in caplog.text


async def test_results_for_a_token_of_another_location_are_refused_with_a_location_hint(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    write_checks(world.hub.checks, world.target, {"us-east": TOKEN})
    hub = await world.hub.start()
    async with running(agent_options(world.agent_checks, world.agent_db, hub)) as agent:
        assert agent.pusher is not None
        pusher = agent.pusher
        await wait_until(lambda: pusher.stats.failed_attempts >= 1, 10)
    errors = [r.getMessage() for r in caplog.records if r.name == "prober.agent" and r.levelno == logging.ERROR]
    assert any("HTTP 403" in text and "'eu-west'" in text and "--location" in text for text in errors), errors
    assert ids(hub.db) == set()
    assert len(ids(world.agent_db)) >= 1, "the refused results stay in the agent's database"


async def test_an_agent_restart_does_not_resend_what_the_hub_confirmed(world: World) -> None:
    hub = await world.hub.start()
    options = agent_options(world.agent_checks, world.agent_db, hub)
    async with running(options) as first:
        await wait_until(lambda: len(ids(hub.db)) >= 3, 10)
    assert first.pusher is not None
    confirmed = ids(hub.db)
    assert confirmed == ids(world.agent_db)
    assert first.pusher.stats.sent == len(confirmed) and first.pusher.stats.duplicates == 0

    async with running(options) as second:
        await wait_until(lambda: len(ids(hub.db)) >= len(confirmed) + 3, 10)
    assert second.pusher is not None
    assert ids(hub.db) == ids(world.agent_db)
    assert second.pusher.stats.duplicates == 0
    assert second.pusher.stats.sent == len(ids(hub.db)) - len(confirmed), "only the new results were sent"
    assert scalar(world.agent_db, "SELECT confirmed FROM push_cursor") == len(ids(hub.db))


@pytest.mark.slow
@pytest.mark.slow
async def test_prober_run_as_an_agent_pushes_and_flushes_on_sigterm(world: World, prober_cli: ProberCli) -> None:
    hub = await world.hub.start()
    token_file = world.tmp / "token"
    token_file.write_text(f"  {TOKEN}\n")
    proc = await asyncio.create_subprocess_exec(
        *prober_cli.argv("run", world.agent_checks, "--db", world.agent_db, "--location", "eu-west",
                         "--listen", "off", "--push", hub.url, "--token-file", token_file),
        cwd=world.tmp, env=prober_cli.env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await wait_until(lambda: len(ids(hub.db)) >= 3, 15)
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), 15)
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "pushing results to the hub" in text and TOKEN not in text
    assert ids(hub.db) == ids(world.agent_db), "the results of the last runs were flushed before exit"


# ---- the pusher against a scripted hub ----------------------------------------------------------------


@dataclass
class ScriptedHub:
    """Answers each POST with what `answer(batch ids)` returns; records every request."""

    answer: Callable[[list[str]], web.Response]
    requests: list[list[str]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        batch = [item["id"] for item in body["results"]]
        self.requests.append(batch)
        self.times.append(time.monotonic())
        self.authorizations.append(request.headers.get("Authorization", ""))
        return self.answer(batch)

    @property
    def delivered(self) -> list[str]:
        return [rid for batch in self.requests for rid in batch]


def ok(batch: list[str]) -> web.Response:
    return web.json_response({"accepted": len(batch), "duplicates": 0})


@asynccontextmanager
async def scripted(answer: Callable[[list[str]], web.Response]) -> AsyncIterator[tuple[ScriptedHub, str]]:
    hub = ScriptedHub(answer)
    app = web.Application()
    app.router.add_post("/api/v1/ingest", hub.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield hub, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def results(count: int, location: str = "eu-west", start: datetime | None = None, check: str = "api") -> list[Result]:
    """Results of an http check, a second apart from `start` (now): the world's hub accepts those of `api`."""
    start = start or datetime.now(UTC)
    return [
        Result(check=check, type="http", location=location, started_at=start + timedelta(seconds=i),
               duration_ms=5.0, status="up", metrics={"status": 200, "latency": 0.004})
        for i in range(count)
    ]  # fmt: skip


@asynccontextmanager
async def pushing(store: Store, url: str, settings: PushSettings = FAST) -> AsyncIterator[Pusher]:
    pusher = Pusher(store, url=url, token=TOKEN, location="eu-west", settings=settings)
    await pusher.start()
    try:
        yield pusher
    finally:
        await pusher.stop(timeout=2)


async def test_5xx_is_retried_with_growing_delays_and_only_a_200_confirms_the_batch(tmp_path: Path) -> None:
    answers = iter([503, 503, 503])

    def answer(batch: list[str]) -> web.Response:
        status = next(answers, 200)
        return ok(batch) if status == 200 else web.json_response({"error": "busy"}, status=status)

    made = results(5)
    async with Store(tmp_path / "agent.db") as store, scripted(answer) as (hub, url):
        await store.write_many(made)
        async with pushing(store, url, PushSettings(min_delay=0.1, max_delay=1, poll_interval=0.05)) as pusher:
            await wait_until(lambda: pusher.stats.batches == 1, 10)
            assert pusher.stats.failed_attempts == 3 and pusher.outbox.confirmed == 5
    assert hub.requests == [[r.id for r in made]] * 4, "the same batch, until a 200 confirmed it"
    gaps = [later - earlier for earlier, later in zip(hub.times, hub.times[1:], strict=False)]
    assert gaps[0] >= 0.08 and gaps[1] >= 0.16 and gaps[2] >= 0.32, gaps  # 0.1, 0.2, 0.4 less 20% jitter
    assert hub.authorizations == [f"Bearer {TOKEN}"] * 4


async def test_a_429_waits_as_long_as_retry_after_asks_within_the_cap(tmp_path: Path) -> None:
    answers = iter([429])

    def answer(batch: list[str]) -> web.Response:
        if next(answers, 200) == 429:
            return web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": "1"})
        return ok(batch)

    async with Store(tmp_path / "agent.db") as store, scripted(answer) as (hub, url):
        await store.write_many(results(2))
        async with pushing(store, url) as pusher:
            await wait_until(lambda: pusher.stats.batches == 1, 10)
    assert len(hub.times) == 2 and 0.25 <= hub.times[1] - hub.times[0] < 0.9, "Retry-After 1 s, capped at 0.3 s"


async def test_a_batch_the_hub_finds_too_large_is_split_and_each_result_sent_once(tmp_path: Path) -> None:
    def answer(batch: list[str]) -> web.Response:
        return ok(batch) if len(batch) <= 2 else web.json_response({"error": "too large"}, status=413)

    made = results(7)
    async with Store(tmp_path / "agent.db") as store, scripted(answer) as (hub, url):
        await store.write_many(made)
        async with pushing(store, url) as pusher:
            await wait_until(lambda: pusher.outbox.confirmed == 7, 10)
            assert pusher.stats.failed_attempts == 0
    accepted = [rid for batch in hub.requests if len(batch) <= 2 for rid in batch]
    assert sorted(accepted) == sorted(r.id for r in made) and len(accepted) == len(set(accepted))


async def test_a_connection_the_hub_drops_mid_request_is_retried_at_once_not_after_a_backoff(tmp_path: Path) -> None:
    """As a hub restarting under a push does: the first request's connection closes with no answer."""
    seen: list[float] = []

    async def drop_first(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen.append(time.monotonic())
        if len(seen) == 1:
            assert request.transport is not None
            request.transport.close()
            return web.Response()  # never sent: the connection is gone
        return ok([item["id"] for item in body["results"]])

    app = web.Application()
    app.router.add_post("/api/v1/ingest", drop_first)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        async with Store(tmp_path / "agent.db") as store:
            await store.write_many(results(2))
            url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            async with pushing(store, url, PushSettings(min_delay=5, max_delay=10, poll_interval=0.05)) as pusher:
                await wait_until(lambda: pusher.outbox.confirmed == 2, 3)  # well before a 5 s backoff
                assert pusher.stats.failed_attempts == 0
    finally:
        await runner.cleanup()
    assert len(seen) == 2 and seen[1] - seen[0] < 1


async def test_a_200_that_is_not_a_hubs_answer_confirms_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        Store(tmp_path / "agent.db") as store,
        scripted(lambda _: web.Response(text="<html>ok</html>")) as (
            hub,
            url,
        ),
    ):
        await store.write_many(results(3))
        async with pushing(store, url) as pusher:
            await wait_until(lambda: len(hub.requests) >= 2, 10)
            assert pusher.outbox.confirmed == 0 and pusher.stats.sent == 0
    assert "point --push at the hub's address" in caplog.text


async def test_only_this_locations_results_are_pushed(tmp_path: Path) -> None:
    mine = results(3)
    async with Store(tmp_path / "agent.db") as store, scripted(ok) as (hub, url):
        await store.write_many([*results(4, location="default"), *mine, *results(2, location="us-east")])
        async with pushing(store, url) as pusher:
            await wait_until(lambda: pusher.outbox.confirmed == 3, 10)
            await asyncio.sleep(0.3)  # further polls send nothing more
    assert sorted(hub.delivered) == sorted(r.id for r in mine)


async def test_renumbered_rows_are_followed_and_an_emptied_database_is_pushed_again(tmp_path: Path) -> None:
    db = tmp_path / "agent.db"
    first, second, third = results(3), results(2), results(2)
    async with scripted(ok) as (hub, url):
        async with Store(db) as store:
            await store.write_many(first)
            async with pushing(store, url) as pusher:
                await wait_until(lambda: pusher.outbox.confirmed == 3, 10)
        with sqlite3.connect(db) as connection:  # as a VACUUM may: the same rows under other rowids
            connection.execute("UPDATE result_rows SET rowid = rowid + 100")
        async with Store(db) as store:
            await store.write_many(second)
            async with pushing(store, url) as pusher:
                await wait_until(lambda: pusher.outbox.confirmed == 5, 10)
        assert hub.delivered == [r.id for r in first + second], "nothing resent, nothing skipped"

        with sqlite3.connect(db) as connection:  # the results are gone (emptied, restored from an old copy ...)
            connection.execute("DELETE FROM result_rows")  # but the push cursor stays
        async with Store(db) as store:
            await store.write_many(third)
            async with pushing(store, url) as pusher:
                await wait_until(lambda: pusher.outbox.confirmed == 7, 10)
    assert hub.delivered[5:] == [r.id for r in third]


# ---- options -------------------------------------------------------------------------------------------


def test_push_urls_must_be_http_and_name_the_hub() -> None:
    assert check_push_url("https://Hub.example.com:8080") == "https://hub.example.com:8080/api/v1/ingest"
    assert check_push_url("http://hub/prober/") == "http://hub/prober/api/v1/ingest"
    assert check_push_url("http://hub:80/api/v1/ingest") == "http://hub:80/api/v1/ingest"
    for bad, says in [
        ("ftp://hub", "http:// or https://"),
        ("hub:8080", "http:// or https://"),
        ("https://", "no host"),
        ("https://user:secret@hub", "credentials"),
        ("https://hub?token=x", "no query"),
        ("https://hub:99999", "not a valid URL"),
    ]:
        with pytest.raises(ValueError, match=says) as caught:
            check_push_url(bad)
        assert "secret" not in str(caught.value)


def test_the_token_file_must_exist_and_hold_one_token(tmp_path: Path) -> None:
    file = tmp_path / "token"
    file.write_text(f"\n {TOKEN} \n")
    assert read_token_file(file) == TOKEN
    for content, says in [("", "is empty"), ("  \n", "is empty"), ("two words", "the token alone")]:
        file.write_text(content)
        with pytest.raises(ValueError, match=says):
            read_token_file(file)
    with pytest.raises(ValueError, match="does not exist"):
        read_token_file(tmp_path / "missing")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--push", "ftp://hub:8080", "--token-file", "token"], "http:// or https://"),
        (["--push", "http://127.0.0.1:9"], "--push needs --token-file"),
        (["--push", "http://127.0.0.1:9", "--token-file", "missing"], "does not exist"),
        (["--push", "http://127.0.0.1:9", "--token-file", "empty"], "is empty"),
    ],
)
def test_run_with_push_refuses_a_bad_url_or_token_file_with_exit_2(
    tmp_path: Path, args: list[str], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "checks.yaml").write_text("checks: []\n")
    env = {key: None for key in os.environ if key.startswith("PROBER_")}
    outcome = CliRunner().invoke(cli, ["run", "checks.yaml", "--listen", "off", *args], env=env)
    assert outcome.exit_code == 2, outcome.output
    assert says in " ".join(outcome.output.split())
    assert TOKEN not in outcome.output
    assert not (tmp_path / "prober.db").exists(), "nothing started"


def test_the_agent_docs_in_run_help_name_push_and_token_file() -> None:
    text = CliRunner().invoke(cli, ["run", "--help"]).output
    assert "--push URL" in text and "--token-file FILE" in text and "PROBER_PUSH" in text


def test_the_token_does_not_show_in_the_daemons_options() -> None:
    options = DaemonOptions(paths=[], db=Path("agent.db"), push_url="http://hub:8080", token=TOKEN)
    assert TOKEN not in repr(options)


# ---- robustness against a real hub ---------------------------------------------------------------------


async def test_results_the_hub_refuses_by_name_are_parked_once_and_every_later_result_still_arrives(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The hub defines no check `ghost`: a 400 names those results; the agent sets them aside and goes on."""
    hub = await world.hub.start()
    good, ghosts = results(6), results(4, check="ghost")
    mixed = [good[0], ghosts[0], good[1], ghosts[1], good[2], ghosts[2], good[3]]
    async with Store(world.agent_db) as store:
        await store.write_many(mixed)
        async with pushing(store, hub.url) as pusher:
            await wait_until(lambda: {r.id for r in good[:4]} <= ids(hub.db), 10)
            await store.write_many([ghosts[3], *good[4:]])  # later ones, after the cursor passed the first refusals
            await wait_until(lambda: {r.id for r in good} <= ids(hub.db), 10)
            assert pusher.stats.rejected == 4
            assert pusher.stats.sent == 6 and pusher.stats.last_error is None
            assert pusher.outbox.confirmed == 6
        assert len(store.results("ghost", location="eu-west")) == 4, "the refused results stay in the agent"
    assert ids(hub.db) == {r.id for r in good}
    refused = [r.getMessage() for r in caplog.records if r.name == "prober.agent" and r.levelno == logging.ERROR]
    assert len(refused) == 1, refused  # once per check and reason, with the hub's words
    assert "'ghost'" in refused[0] and "is not defined on this hub for location 'eu-west'" in refused[0], refused[0]
    assert "deploy the same check files" in refused[0]
    assert TOKEN not in caplog.text


async def test_a_hub_that_cannot_store_answers_503_and_the_agent_delivers_once_it_can(world: World) -> None:
    hub = await world.hub.start()
    with sqlite3.connect(hub.db) as connection:  # the hub's database refuses every new result, as a full disk
        connection.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON result_rows BEGIN SELECT RAISE(ABORT, 'disk is full'); END"
        )
    made = results(3)
    async with Store(world.agent_db) as store:
        await store.write_many(made)
        async with pushing(store, hub.url) as pusher:
            await wait_until(lambda: pusher.stats.failed_attempts >= 2, 10)
            assert "HTTP 503" in (pusher.stats.last_error or ""), pusher.stats.last_error
            assert "disk is full" in (pusher.stats.last_error or "")
            assert pusher.outbox.confirmed == 0
            with sqlite3.connect(hub.db) as connection:
                connection.execute("DROP TRIGGER refuse")
            await wait_until(lambda: pusher.outbox.confirmed == 3, 10)
    assert ids(hub.db) == {r.id for r in made}


class SilencingProxy:
    """A TCP proxy in front of the hub, as a load balancer or a Kubernetes Service is. `silence()` makes every
    connection open so far go quiet without closing (the peer behind it is gone: nothing is forwarded, nothing
    answers), while new connections reach whatever listens on the hub's port now."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: list[dict[str, bool]] = []
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> SilencingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def silence(self) -> None:
        for link in self._links:
            link["silent"] = True

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        link = {"silent": False}
        self._links.append(link)
        self._writers.append(client_writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            client_writer.close()
            return
        self._writers.append(up_writer)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(65536):
                if not link["silent"]:
                    writer.write(data)
                    await writer.drain()
            if not link["silent"]:
                writer.close()

        with contextlib.suppress(OSError):
            await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))
        while link["silent"] and not client_reader.at_eof():  # keep the client's side open, answering nothing
            await asyncio.sleep(0.1)
            with contextlib.suppress(OSError):
                await client_reader.read(65536)

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_a_hub_restarted_behind_a_proxy_gets_results_within_seconds_not_after_a_request_timeout(
    world: World,
) -> None:
    """Production delays (1 s backoff, 30 s request timeout): a pooled connection to the old hub would go silent
    behind the proxy and a push would wait the full 30 s. Each push opens its own connection."""
    hub = await world.hub.start()
    proxy = await SilencingProxy(hub.port).start()
    settings = PushSettings(poll_interval=0.2, request_timeout=30)
    try:
        async with Store(world.agent_db) as store, pushing(store, proxy.url, settings) as pusher:
            await store.write_many(results(2))
            await wait_until(lambda: pusher.outbox.confirmed == 2, 10)
            proxy.silence()
            await hub.stop()
            await hub.start()
            later = results(2)
            await store.write_many(later)
            took = await wait_until(lambda: {r.id for r in later} <= ids(hub.db), 25)
            assert took < 5, f"the results reached the restarted hub after {took:.1f}s"
    finally:
        await proxy.stop()


async def test_a_long_outage_does_not_stretch_the_retry_delay_past_max_retry_delay(tmp_path: Path) -> None:
    """After a partition the backlog must arrive soon after the heal: transient failures back off only up to
    max_retry_delay (10 s by default), while max_delay stays for failures someone must fix."""
    answers = iter([503] * 8)

    def answer(batch: list[str]) -> web.Response:
        status = next(answers, 200)
        return ok(batch) if status == 200 else web.json_response({"error": "busy"}, status=status)

    settings = PushSettings(min_delay=0.05, max_delay=5, max_retry_delay=0.2, poll_interval=0.05)
    async with Store(tmp_path / "agent.db") as store, scripted(answer) as (hub, url):
        await store.write_many(results(2))
        async with pushing(store, url, settings) as pusher:
            await wait_until(lambda: pusher.outbox.confirmed == 2, 15)
    gaps = [later - earlier for earlier, later in zip(hub.times, hub.times[1:], strict=False)]
    assert len(gaps) == 8 and max(gaps) < 1.0, gaps  # uncapped, the 6th to 8th waits would be 1.6, 3.2 and 5 s
    assert max(gaps) > 0.1, gaps  # it does back off


async def test_a_hub_address_that_answers_nothing_is_tried_again_after_the_connect_timeout(tmp_path: Path) -> None:
    """A hub container being restarted: its address drops every SYN (here: a listener whose accept queue is
    full), so no refusal comes back. The push gives up after connect_timeout, not request_timeout, and the
    results reach the hub once it listens there again."""
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    port = blackhole.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # the one queued connection: later SYNs are dropped
    settings = PushSettings(min_delay=0.1, max_delay=0.5, poll_interval=0.1, request_timeout=30, connect_timeout=0.5)
    hub = ScriptedHub(ok)
    made = results(3)
    runner: web.AppRunner | None = None
    async with Store(tmp_path / "agent.db") as store:
        await store.write_many(made)
        async with pushing(store, f"http://127.0.0.1:{port}", settings) as pusher:
            began = time.monotonic()
            await wait_until(lambda: pusher.stats.failed_attempts >= 1, 10)
            assert time.monotonic() - began < 3, "the first push waited for more than the connect timeout"
            assert pusher.stats.last_error == "the hub accepted no connection within 0.5s"
            filler.close()
            blackhole.close()
            app = web.Application()
            app.router.add_post("/api/v1/ingest", hub.handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
            try:
                took = await wait_until(lambda: pusher.outbox.confirmed == 3, 10)
            finally:
                await runner.cleanup()
    assert took < 5, f"the results reached the hub {took:.1f}s after it listened again"
    assert hub.requests[-1] == [r.id for r in made]
