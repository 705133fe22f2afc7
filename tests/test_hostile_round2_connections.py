"""The API's listener cannot take what the checks need (second hostile round, point 2).

Before: no cap on connections, no header timeout, the soft open-file limit left at 1,024. 2,000 idle
connections took every descriptor: `/healthz` unreachable for 40 s, 398 of 502 results down with "Too many
open files", 10 false incidents. Now the daemon raises its soft limit to the hard one, and the listener
(`prober.api.connections`) bounds open connections (evicting idle ones first), the time to send headers,
and keeps descriptors in reserve; refusals are counted in /metrics.

The quick tests drive a `GuardedSite` with small bounds in process; the slow one starts `prober run` with a
soft limit of 1,024 and holds 2,000 idle connections (to 127.0.0.1 only, all closed at the end) beside
1 s http checks: no result is affected and `/healthz` answers throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from daemon_helpers import Target, scalar, stop_daemon, wait_until

from prober.api.connections import REFUSED, ConnectionGuard, GuardedSite

HOST = "127.0.0.1"


@contextlib.asynccontextmanager
async def guarded(guard: ConnectionGuard) -> AsyncIterator[int]:
    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.Response(text="slow")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=5)
    await runner.setup()
    site = GuardedSite(runner, HOST, 0, guard=guard)
    await site.start()
    try:
        yield site.port
    finally:
        await runner.cleanup()


async def _get(port: int, path: str = "/healthz", timeout: float = 2.0) -> int:
    """Status of one GET on a fresh connection (0 when the connection was refused or reset)."""
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
            session.get(f"http://{HOST}:{port}{path}", timeout=aiohttp.ClientTimeout(total=timeout)) as answer,
        ):
            await answer.read()
            return answer.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


async def _idle(port: int, count: int) -> list[asyncio.StreamWriter]:
    writers = []
    for _ in range(count):
        _, writer = await asyncio.open_connection(HOST, port)
        writers.append(writer)
    return writers


def _close(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.close()


async def test_idle_connections_at_the_cap_make_room_for_a_request() -> None:
    before = dict(REFUSED)
    async with guarded(ConnectionGuard(max_connections=4, header_timeout=5)) as port:
        writers = await _idle(port, 10)
        try:
            await asyncio.sleep(0.1)
            assert await _get(port) == 200  # the twin: a real request gets in, an idle one makes room
        finally:
            _close(writers)
    assert REFUSED["evicted"] - before.get("evicted", 0) >= 7


async def test_connections_busy_with_requests_are_not_evicted_and_the_next_is_refused() -> None:
    before = dict(REFUSED)
    async with guarded(ConnectionGuard(max_connections=2, header_timeout=5)) as port:
        busy = [asyncio.ensure_future(_get(port, "/slow")) for _ in range(2)]
        await asyncio.sleep(0.3)
        assert await _get(port) == 0  # both slots serve a request: refused, not a request cut short
        assert await asyncio.gather(*busy) == [200, 200]
        assert await _get(port) == 200  # the twin, once a slot is free
    assert REFUSED["limit"] - before.get("limit", 0) >= 1


async def test_headers_not_sent_in_time_close_the_connection() -> None:
    before = dict(REFUSED)
    async with guarded(ConnectionGuard(max_connections=10, header_timeout=0.3)) as port:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # a slow loris: headers never end
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 3) == b""
        assert 0.25 < time.monotonic() - started < 1.5
        writer.close()
        assert await _get(port) == 200  # the twin: headers sent at once
    assert REFUSED["header_timeout"] - before.get("header_timeout", 0) == 1


async def test_descriptors_near_the_soft_limit_are_kept_for_probing(monkeypatch: pytest.MonkeyPatch) -> None:
    before = dict(REFUSED)
    async with guarded(ConnectionGuard(max_connections=100, header_timeout=5)) as port:
        assert await _get(port) == 200  # the twin: under the ceiling
        monkeypatch.setattr(ConnectionGuard, "fd_ceiling", lambda self: 3)  # every descriptor is "reserved"
        assert await _get(port) == 0
    assert REFUSED["descriptors"] - before.get("descriptors", 0) >= 1


# --- a real daemon with a soft limit of 1,024 and 2,000 idle connections -------------------------------------

CHECKS = 5
ATTACK = 8.0
"""Seconds the 2,000 idle connections are held beside the 1 s checks (every check runs at least 6 times)."""
IDLE = 2000


@contextlib.contextmanager
def _own_limit(needed: int) -> Iterator[None]:
    """This test process holds 2,000 sockets: raise its own soft limit for the test, restore it after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.fail(f"the hard open-file limit is {hard}; this test needs {needed} descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _results(db: Path, since: str) -> list[tuple[str, str, str | None]]:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return connection.execute(
            'SELECT "check", status, error FROM results WHERE started_at >= ? ORDER BY started_at', (since,)
        ).fetchall()
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.parametrize("hard", ["hard-limit-high", "hard-limit-1024"])
async def test_2000_idle_connections_to_a_daemon_with_a_soft_limit_of_1024_affect_no_check(
    tmp_path: Path, free_port: int, hard: str
) -> None:
    with _own_limit(IDLE + 500):
        target = await Target().start()
        checks = "".join(
            f"  - {{name: c{index}, type: http, url: '{target.url}', schedule: every 1s, timeout: 2s}}\n"
            for index in range(CHECKS)
        )
        (tmp_path / "checks.yaml").write_text(f"version: 1\nchecks:\n{checks}")
        db = tmp_path / "prober.db"
        limit = 1024 if hard == "hard-limit-1024" else resource.getrlimit(resource.RLIMIT_NOFILE)[1]

        def soft_1024() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, limit))

        daemon = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "prober", "run", str(tmp_path / "checks.yaml"), "--db", str(db),
            "--listen", f"{HOST}:{free_port}", cwd=tmp_path, preexec_fn=soft_1024,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        writers: list[asyncio.StreamWriter] = []
        try:
            await wait_until(lambda: db.exists(), 20)
            for _ in range(200):
                if await _get(free_port, timeout=0.5) == 200:
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the daemon's /healthz never answered 200")
            # every check has run once
            await wait_until(lambda: scalar(db, 'select count(distinct "check") from results') == CHECKS, 10)
            since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            started = time.monotonic()
            opening = time.monotonic()
            for _ in range(IDLE // 100):
                batch = await asyncio.gather(
                    *(asyncio.open_connection(HOST, free_port) for _ in range(100)), return_exceptions=True
                )
                writers.extend(item[1] for item in batch if isinstance(item, tuple))
            opened = time.monotonic() - opening
            health: list[tuple[int, float]] = []
            while time.monotonic() - started < ATTACK:
                asked = time.monotonic()
                health.append((await _get(free_port, timeout=2.0), time.monotonic() - asked))
                await asyncio.sleep(0.5)
            metrics = ""
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
                session.get(f"http://{HOST}:{free_port}/metrics") as answer,
            ):
                metrics = await answer.text()
        finally:
            _close(writers)
            try:
                code, output = await stop_daemon(daemon)
            finally:
                if daemon.returncode is None:
                    daemon.kill()
                    await daemon.wait()
            await target.stop()
    assert code == 0, output[-2000:]
    soft_after = 1024 if hard == "hard-limit-1024" else limit
    assert f"open file limit {soft_after} (hard limit {limit})" in output, output[-2000:]

    rows = _results(db, since)
    per_check = {f"c{index}": [row for row in rows if row[0] == f"c{index}"] for index in range(CHECKS)}
    down = [row for row in rows if row[1] != "up"]
    assert down == [], down[:5]
    assert "Too many open files" not in output
    # Every 1 s for ATTACK seconds: no run missed (one may straddle each edge of the window).
    assert all(len(found) >= ATTACK - 2 for found in per_check.values()), {k: len(v) for k, v in per_check.items()}
    failed = [item for item in health if item[0] != 200]
    assert failed == [], failed
    worst = max(seconds for _, seconds in health)
    assert worst < 1.0, f"/healthz took up to {worst:.2f}s"
    refused = {
        line.split('reason="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("prober_api_connections_refused_total{")
    }
    assert sum(refused.values()) >= IDLE - 256 - 50, refused
    print(
        f"\n{hard}: {len(writers)} idle connections opened in {opened:.1f}s; results {len(rows)}, down {len(down)};"
        f" runs per check {sorted(len(v) for v in per_check.values())}; /healthz worst {worst * 1000:.0f} ms;"
        f" refused {refused}"
    )
