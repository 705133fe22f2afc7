"""Two hubs as real `prober run` processes, each passing heartbeat pings on to the other (`--ping-peer`): a ping
to either counts on both, once, with the same id and time; a hub that was down gets the pings it missed when it
comes back (within the forwarding window)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from daemon_helpers import query, start_daemon, stop_daemon, wait_until

pytestmark = pytest.mark.slow

TOKEN = "nightly-Backup-0123456789"


def _checks(path: Path) -> Path:
    path.write_text(f"checks:\n  - {{name: backup, type: heartbeat, token: {TOKEN}, schedule: every 1d, grace: 1h}}\n")
    return path


def _pings(db: Path) -> list[tuple[str, str, str]]:
    rows = query(db, "SELECT id, kind, received_at FROM pings ORDER BY received_at")
    return [(str(row[0]), str(row[1]), str(row[2])) for row in rows]


async def _up(port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/healthz") as response:
            return response.status in (200, 503)
    except aiohttp.ClientError:
        return False


async def _wait_up(port: int) -> None:
    for _ in range(300):
        if await _up(port):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the hub on port {port} did not start within 15 s")


async def test_a_ping_to_either_hub_counts_on_both_once(tmp_path: Path, free_port: int) -> None:
    from loopback import free_port as _free_port

    ports = [free_port, _free_port()]
    checks = _checks(tmp_path / "checks.yaml")
    peers = ",".join(f"http://127.0.0.1:{port}" for port in ports)  # each hub lists both, itself included
    dbs = [tmp_path / "a" / "p.db", tmp_path / "b" / "p.db"]

    async def start(index: int) -> asyncio.subprocess.Process:
        dbs[index].parent.mkdir(exist_ok=True)
        proc = await start_daemon(
            str(checks), "--db", str(dbs[index]), "--listen", f"127.0.0.1:{ports[index]}",
            cwd=tmp_path, env={"PROBER_PING_PEERS": peers},
        )  # fmt: skip
        await _wait_up(ports[index])
        return proc

    hubs = [await start(0), await start(1)]
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{ports[0]}/ping/{TOKEN}/start") as response:
                assert response.status == 200
            async with session.post(f"http://127.0.0.1:{ports[1]}/ping/{TOKEN}/0", data=b"done") as response:
                assert response.status == 200
        await wait_until(lambda: len(_pings(dbs[0])) == 2 and len(_pings(dbs[1])) == 2, timeout=10)
        assert _pings(dbs[0]) == _pings(dbs[1])  # same ids, kinds and times on both hubs
        assert [kind for _, kind, _ in _pings(dbs[0])] == ["start", "success"]
        await asyncio.sleep(1.0)  # a loop would show as more rows by now
        assert len(_pings(dbs[0])) == len(_pings(dbs[1])) == 2

        # Hub B stops; a ping to A waits for B and arrives once B is back.
        code, _ = await stop_daemon(hubs[1])
        assert code == 0
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{ports[0]}/ping/{TOKEN}/fail") as response,
        ):
            assert response.status == 200
        await asyncio.sleep(1.0)
        hubs[1] = await start(1)
        await wait_until(lambda: len(_pings(dbs[1])) == 3, timeout=20)
        assert _pings(dbs[0]) == _pings(dbs[1])
        # Both hubs judge the check down from the same pings.
        await wait_until(
            lambda: all(
                query(db, "SELECT status FROM results WHERE \"check\" = 'backup' ORDER BY started_at DESC LIMIT 1")
                == [("down",)]
                for db in dbs
            ),
            timeout=10,
        )
    finally:
        outputs = [await stop_daemon(proc) for proc in hubs if proc.returncode is None]
        for _, output in outputs:
            assert TOKEN not in output
