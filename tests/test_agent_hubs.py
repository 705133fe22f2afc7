"""An agent pushing to several hubs (`--push` more than once, PROBER_PUSH="a,b"): one pusher, cursor and backoff
per hub. A real agent `Daemon` probing a loopback target every 200 ms pushes to two real hub `Daemon`s; one of
them is down at first. The live hub never falls behind, the late one receives every result once when it comes
up, and the command line accepts and checks the list."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from daemon_helpers import Target, query, wait_until
from loopback import free_port
from test_agent import FAST, TOKEN, Hub, ids, write_checks

from prober.agent import check_push_urls, hub_label
from prober.cli.commands import cli
from prober.daemon.service import Daemon, DaemonOptions


@pytest.mark.slow
async def test_a_dead_hub_delays_no_other_and_gets_every_result_once_when_it_comes_up(tmp_path: Path) -> None:
    target = await Target().start()
    checks = write_checks(tmp_path / "checks.yaml", target, {"eu-west": TOKEN})
    live = await Hub(checks, tmp_path / "live.db", free_port()).start()
    late = Hub(checks, tmp_path / "late.db", free_port())
    options = DaemonOptions(
        paths=[str(checks)],
        db=tmp_path / "agent.db",
        location="eu-west",
        listen=None,
        push_urls=[live.url, late.url],
        token=TOKEN,
        push_settings=FAST,
        stop_grace=2,
    )
    agent = Daemon(options)
    task = asyncio.create_task(agent.run())
    try:
        await wait_until(lambda: len(agent.pushers) == 2 or task.done(), 10)
        assert [pusher.hub for pusher in agent.pushers] == [live.url, late.url]
        # the live hub keeps up while the other refuses every connection
        await wait_until(lambda: len(ids(live.db)) >= 10, 15)
        lag = len(ids(tmp_path / "agent.db")) - len(ids(live.db))
        assert lag <= 3, f"the live hub fell {lag} results behind the agent while the other hub was down"
        stats = agent.push_stats
        assert stats is not None
        assert stats[late.url].failed_attempts >= 1 and stats[late.url].sent == 0
        assert stats[live.url].failed_attempts == 0
        before_heal = ids(live.db)
        await late.start()
        await wait_until(lambda: ids(late.db) >= before_heal, 15)
        agent.stop()
        await task
        await asyncio.sleep(0.3)  # the last flush has reached both
        pushed = ids(tmp_path / "agent.db")
        assert ids(live.db) == pushed and ids(late.db) == pushed, "both hubs hold exactly the agent's results"
        for hub in (live, late):
            rows = query(hub.db, "SELECT COUNT(*), COUNT(DISTINCT id) FROM results WHERE location = 'eu-west'")
            assert rows[0][0] == rows[0][1] == len(pushed), "every result once"
        assert stats[late.url].duplicates == 0 and stats[live.url].duplicates == 0
    finally:
        if not task.done():
            agent.stop()
            await task
        await live.stop()
        await late.stop()
        await target.stop()


def test_push_urls_are_split_at_commas_checked_and_each_given_once() -> None:
    assert check_push_urls(["http://a:8080, http://b:8080", "https://c"]) == [
        "http://a:8080",
        "http://b:8080",
        "https://c",
    ]
    assert check_push_urls([]) == [] and check_push_urls([" , "]) == []
    with pytest.raises(ValueError, match=r"the hub 'http://a:8080/' is given twice \(as 'http://a:8080'\)"):
        check_push_urls(["http://a:8080", "http://a:8080/"])
    with pytest.raises(ValueError, match=r"expected the hub's http:// or https:// address.*got 'ftp://b'"):
        check_push_urls(["http://a:8080,ftp://b"])
    assert hub_label("http://a:8080/api/v1/ingest") == "http://a:8080"


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--push", "http://a:8080", "--push", "http://a:8080"], {}, "the hub 'http://a:8080' is given twice"),
        ([], {"PROBER_PUSH": "http://a:8080,nope"}, "expected the hub's http:// or https:// address"),
        ([], {"PROBER_PUSH": "http://a:8080,http://b:8080"}, "--push needs --token-file"),
    ],
)
def test_run_refuses_a_bad_hub_list_with_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checks.yaml").write_text("checks: []\n")
    clean: dict[str, str | None] = {key: None for key in os.environ if key.startswith("PROBER_")}
    outcome = CliRunner().invoke(cli, ["run", "checks.yaml", "--listen", "off", *args], env={**clean, **env})
    assert outcome.exit_code == 2, outcome.output
    assert says in " ".join(outcome.output.split())
    assert not (tmp_path / "prober.db").exists(), "nothing started"
