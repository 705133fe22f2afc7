"""`prober demo` end to end, in-process: the sample targets come up on loopback and the daemon judges them."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
from daemon_helpers import query, wait_until

from prober.demo import run_demo


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_demo_checks_its_own_targets_and_serves_the_status_page(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    listen = f"127.0.0.1:{_free_port()}"
    ready, stopping = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_demo(db, listen, ready=ready, stopping=stopping))
    try:
        await asyncio.wait_for(ready.wait(), 20)
        statuses = lambda: dict(query(db, 'select "check", status from current_state'))  # noqa: E731
        await wait_until(lambda: len(statuses()) >= 7, 40, interval=0.2)
        current = statuses()
        assert current["shop-landing"] == "up"
        assert current["api-readiness"] == "up"
        assert current["search-api"] == "degraded"  # 350 ms answers against a 250 ms warning
        assert current["api-certificate"] == "degraded"  # 45 days left against a 60-day warning
        assert current["live-stream"] == "up"
        assert current["chat-websocket"] == "up"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{listen}/api/v1/status") as response:
                assert response.status == 200
                feed = await response.json()
            async with session.get(f"http://{listen}/") as response:
                assert response.status == 200
                assert "<html" in (await response.text()).lower()
        assert {check["name"] for check in feed["checks"]} >= set(current)
        assert feed["title"] == "prober demo"  # from the demo's status_page key
    finally:
        stopping.set()
        await asyncio.wait_for(task, 20)
