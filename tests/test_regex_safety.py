"""User regexes run in linear time (RE2): a catastrophic pattern against a hostile body is judged at once.

With Python's backtracking `re`, `(a+)+$` against 50 kB of `a` never finishes and holds the event loop, so
every other check, the API and SIGTERM wait with it. These tests use a real aiohttp target and a real
`prober check` process.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from aiohttp import web

from prober.config.conditions import judge
from prober.config.loader import load_config

EVIL = "(a+)+$"


async def _serve(body: str) -> tuple[web.AppRunner, int]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body)

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


def _checks(tmp_path: Path, port: int, pattern: str) -> Path:
    path = tmp_path / "checks.yaml"
    path.write_text(
        "checks:\n"
        f"  - name: evil\n    type: http\n    url: http://127.0.0.1:{port}/\n    timeout: 5s\n"
        f"    expect: {{body_matches: '{pattern}'}}\n"
        f"  - name: plain\n    type: http\n    url: http://127.0.0.1:{port}/\n    timeout: 5s\n"
    )
    return path


async def test_a_catastrophic_pattern_against_50_kb_is_judged_at_once(tmp_path: Path) -> None:
    runner, port = await _serve("a" * 50_000 + "!")
    try:
        path = _checks(tmp_path, port, EVIL)
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "prober",
            "check",
            str(path),
            "--json",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        elapsed = time.perf_counter() - started
    finally:
        await runner.cleanup()
    assert process.returncode == 1, stderr.decode()
    assert elapsed < 20, f"prober check took {elapsed:.1f}s"
    lines = stdout.decode().splitlines()
    assert len(lines) == 2
    assert '"check": "evil"' in lines[0] or '"check": "evil"' in lines[1]
    assert "does not match /(a+)+$/" in stdout.decode()


async def test_the_same_pattern_matches_its_healthy_twin(tmp_path: Path) -> None:
    runner, port = await _serve("a" * 50_000)
    try:
        path = _checks(tmp_path, port, EVIL)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "prober",
            "check",
            str(path),
            "--json",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await runner.cleanup()
    assert process.returncode == 0, stdout.decode() + stderr.decode()


def test_matching_a_1_mib_body_holds_the_loop_under_50_ms(tmp_path: Path) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text(
        "checks:\n  - name: evil\n    type: http\n    url: http://127.0.0.1:9/\n"
        "    expect: {body_matches: '(a+)+$', body_contains: zz}\n"
        "    warn: {body_matches: '(x+x+)+y'}\n"
    )
    spec = load_config([path]).checks[0]
    body = "a" * (1 << 20) + "!"
    worst = 0.0
    for _ in range(5):
        started = time.perf_counter()
        verdict = judge(spec.conditions, {"status": 200}, {"body": body})
        worst = max(worst, time.perf_counter() - started)
    assert verdict.status == "down"
    assert worst < 0.05, f"judging took {worst * 1000:.0f} ms"
