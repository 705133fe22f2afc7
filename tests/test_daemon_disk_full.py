"""Honest health: a real `prober run` whose database lives on a 16 MiB tmpfs that is filled until writes fail.

While writes fail, /healthz answers 503 with the reason, the error is logged once (then at most once a
minute, with a count) instead of once per result, probing and paging go on, and results wait in a bounded
memory queue; once space is freed they are committed and /healthz says 200 again. A database file that is
corrupted, removed or unreadable under a running daemon is a 503 too; a damaged file at start is exit 2.

The tmpfs needs root (CAP_SYS_ADMIN); without it the disk-full tests skip and say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from daemon_helpers import Target, query, scalar, wait_until
from webhook_receiver import WebhookReceiver

from prober.results import Result
from prober.store import Store
from prober.store import writer as writer_module

FULL = "database or disk is full"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs mounted under tmp_path, unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.fail("no `mount` command here: the disk-full test needs one (util-linux) to make a small filesystem")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(
            f"mounting a 16 MiB tmpfs was refused; the suite runs as root (CAP_SYS_ADMIN): {done.stderr.strip()}"
        )
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def _fill(directory: Path) -> Path:
    """Write a file until the filesystem has no byte left; return it (delete it to free the space)."""
    filler = directory / "filler"
    chunk = b"\0" * (256 * 1024)
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError:
            pass
        try:  # the last partial block
            while True:
                handle.write(b"\0" * 512)
        except OSError:
            pass
    return filler


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def _health(port: int) -> tuple[int, dict[str, Any]]:
    return await asyncio.to_thread(_healthz, port)


async def _wait_health(port: int, status: int, timeout: float) -> dict[str, Any]:
    start = time.monotonic()
    last: tuple[int, dict[str, Any]] | None = None
    while time.monotonic() - start < timeout:
        with contextlib.suppress(OSError):
            last = await _health(port)
            if last[0] == status:
                return last[1]
        await asyncio.sleep(0.2)
    raise AssertionError(f"/healthz did not answer {status} within {timeout}s; last answer: {last}")


async def _playlist_origin() -> tuple[web.AppRunner, str]:
    """A VOD HLS playlist (three TS segments): the hls check saves its probe state after every run."""
    segment = b"\x47" + b"\x00" * 187
    playlist = (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        + "".join(f"#EXTINF:2.0,\nseg{n}.ts\n" for n in range(3))
        + "#EXT-X-ENDLIST\n"
    )
    app = web.Application()

    async def media(_: web.Request) -> web.Response:
        return web.Response(text=playlist, content_type="application/vnd.apple.mpegurl")

    async def ts(_: web.Request) -> web.Response:
        return web.Response(body=segment * 10, content_type="video/mp2t")

    app.router.add_get("/vod.m3u8", media)
    app.router.add_get("/seg{n}.ts", ts)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/vod.m3u8"


def _log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            lines.append({"level": "raw", "message": raw})
    return lines


@pytest.mark.slow
async def test_a_full_disk_gives_503_one_log_line_and_probing_goes_on_until_space_returns(
    tmp_path: Path, small_disk: Path
) -> None:
    stable = await Target().start()
    flapper = await Target().start()
    hls_runner, hls_url = await _playlist_origin()
    receiver = await WebhookReceiver().start()
    lines = ["notifiers:", f"  hook: {{urls: ['{receiver.url}']}}", "checks:"]
    lines += [f"  - {{name: steady-{n}, type: http, url: '{stable.url}', schedule: every 1s}}" for n in range(8)]
    lines.append(
        f"  - {{name: flap, type: http, url: '{flapper.url}', schedule: every 1s, timeout: 800ms,"
        " alert: {after: 1, recover_after: 1, notify: [hook]}}"
    )
    lines.append(f"  - {{name: vod, type: hls, url: '{hls_url}', live: false, schedule: every 1s, timeout: 5s}}")
    checks = tmp_path / "checks.yaml"
    checks.write_text("\n".join(lines) + "\n")
    db = small_disk / "prober.db"
    log_file = tmp_path / "prober.log"  # not on the small disk
    port = _free_port()
    with log_file.open("wb") as log_handle:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "prober", "run", str(checks), "--db", str(db), "--listen", f"127.0.0.1:{port}",
            "--log-format", "json", cwd=tmp_path, stdout=log_handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
    filler: Path | None = None
    try:
        await _wait_health(port, 200, 30)
        await wait_until(lambda: scalar(db, "select count(*) from results where \"check\" = 'vod'") >= 2, 30)
        assert scalar(db, "select count(*) from results where \"check\" = 'vod' and status = 'up'") >= 1, query(
            db, "select error from results where \"check\" = 'vod'"
        )

        filler = _fill(small_disk)
        full_at = datetime.now(UTC)
        stored_when_full = scalar(db, "select count(*) from results")
        failing = await _wait_health(port, 503, 30)
        assert failing["status"] == "failing"
        assert FULL in failing["error"] and "held in memory" in failing["error"], failing

        await flapper.stop()  # an outage while the disk is full: it is still paged (sent from memory)
        down = await receiver.wait_for(1, timeout=20)
        assert down[0]["title"].startswith("DOWN"), down
        # probing goes on: ~10 results a second held in memory (waited for, at most the 8 s it used to sleep)
        with contextlib.suppress(AssertionError):
            await wait_until(lambda: _healthz(port)[1]["store"]["held_in_memory"] >= 8 * 8, 8, interval=0.5)
        status, during = await _health(port)
        assert status == 503, during
        assert during["store"]["held_in_memory"] >= 8 * 8, during  # probing went on: ~10 results a second
        assert during["store"]["dropped"] == 0
        assert scalar(db, "select count(*) from results") <= stored_when_full + 20, "the disk was not full"

        free_at = datetime.now(UTC)
        filler.unlink()
        filler = None
        healthy = await _wait_health(port, 200, 20)
        assert "error" not in healthy
        await wait_until(lambda: _healthz(port)[1]["store"]["held_in_memory"] == 0, 10)
        await flapper.start()
        await receiver.wait_for(2, timeout=20)
    finally:
        if filler is not None:
            filler.unlink()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 20)
        await receiver.stop()
        await stable.stop()
        await flapper.stop()
        await hls_runner.cleanup()
    log = _log_lines(log_file)
    assert code == 0, log[-20:]

    # Everything probed while the disk was full was committed once it had room again, in order.
    window = (full_at.isoformat(), free_at.isoformat())
    for n in range(8):
        kept = scalar(db, 'select count(*) from results where "check" = ? and started_at between ? and ?',
                      f"steady-{n}", *window)  # fmt: skip
        expected = (free_at - full_at).total_seconds()
        assert kept >= expected - 3, f"steady-{n}: {kept} results kept of the ~{expected:.0f} s the disk was full"
    vod = query(db, "select status, error from results where \"check\" = 'vod' and started_at between ? and ?", *window)
    assert vod and all(status == "up" for status, _ in vod), f"a full disk made the hls check fail: {vod}"
    assert query(db, "pragma integrity_check") == [("ok",)]
    titles = [body["title"].split(":")[0] for body in receiver.received]
    assert titles == ["DOWN", "RESOLVED"], titles

    # The failing writes were logged once (the next line would come a minute later, with a count), not per
    # result, and without tracebacks; recovery is logged once with the count of failed writes.
    store_errors = [line for line in log if line.get("logger") == "prober.store" and line["level"] == "error"]
    assert len(store_errors) == 1, store_errors
    assert FULL in store_errors[0]["message"]
    recovered = [line for line in log if line["level"] == "warning" and "takes writes again" in line["message"]]
    assert len(recovered) == 1 and recovered[0]["occurrences"] > 10, recovered
    assert not [line for line in log if "Traceback" in json.dumps(line)], "a traceback was logged"
    assert len(log) < 40, [line["message"] for line in log]


# --- in process: the bounded queue and the once-a-minute count on a really full disk ----------------------


def _result(n: int, started: datetime) -> Result:
    return Result(
        check="api", location="default", type="http", status="up", duration_ms=1.0 + n,
        started_at=started + timedelta(seconds=n),
    )  # fmt: skip


async def test_the_memory_queue_is_bounded_and_the_repeated_error_is_logged_once_a_minute_with_a_count(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(writer_module, "MAX_BACKLOG_RESULTS", 50)
    clock = [1000.0]
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    async with Store(small_disk / "prober.db") as store:
        writer = store._writer
        writer._errors._clock = lambda: clock[0]
        writer.retry_interval = 0.05
        assert await store.write(_result(0, started), park=True)
        filler = _fill(small_disk)
        try:
            with caplog.at_level(logging.INFO, logger="prober.store"):
                for n in range(1, 81):  # 80 results while full: only the newest 50 are kept
                    assert await store.write(_result(n, started), park=True)
                    clock[0] += 1.0  # 80 s of failures: one first line, one a minute later with a count
                health = store.write_health
                assert health.failing_since is not None and FULL in (health.last_error or "")
                assert (health.held, health.dropped) == (50, 30)
                errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
                failing = [text for text in errors if "fail" in text and "dropped" not in text]
                assert len(failing) == 2, errors
                assert "times in the last 60 s" in failing[1], failing
                assert any("dropped the oldest" in text for text in errors)
                # a write that is not parked (an agent's push at the hub) fails for its caller instead
                with pytest.raises(Exception, match="full"):
                    await store.write(_result(100, started))
        finally:
            filler.unlink()
        await wait_until(lambda: store.write_health.failing_since is None, 10)
        assert store.write_health.held == 0
    kept = [row[0] for row in query(small_disk / "prober.db", "select duration_ms from results order by started_at")]
    assert kept == [1.0, *[1.0 + n for n in range(31, 81)]], kept  # the oldest held ones were dropped


# --- a database damaged or removed under a running daemon ------------------------------------------------


async def _start(tmp_path: Path, db: Path, port: int) -> asyncio.subprocess.Process:
    target = tmp_path / "checks.yaml"
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "prober", "run", str(target), "--db", str(db), "--listen", f"127.0.0.1:{port}",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


@pytest.mark.slow
async def test_a_corrupted_or_removed_database_gives_503_and_a_repaired_one_200(tmp_path: Path) -> None:
    stable = await Target().start()
    (tmp_path / "checks.yaml").write_text(
        f"checks:\n  - {{name: api, type: http, url: '{stable.url}', schedule: every 1s}}\n"
    )
    db = tmp_path / "prober.db"
    port = _free_port()
    proc = await _start(tmp_path, db, port)
    try:
        await _wait_health(port, 200, 30)
        header = db.read_bytes()[:100]
        with db.open("r+b") as handle:  # garbage over the header, as a bad disk or a stray `dd` would leave
            handle.write(os.urandom(100))
        broken = await _wait_health(port, 503, 10)
        assert "is not a SQLite database" in broken["error"] and str(db.name) in broken["error"], broken
        with db.open("r+b") as handle:  # the healthy twin: the same file repaired
            handle.write(header)
        await _wait_health(port, 200, 10)

        moved = db.with_name("elsewhere.db")
        db.rename(moved)  # removed under the daemon: it would write into a file nobody can open again
        gone = await _wait_health(port, 503, 10)
        assert "is gone" in gone["error"], gone
        moved.rename(db)
        await _wait_health(port, 200, 10)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), 20)
        await stable.stop()
    assert proc.returncode == 0, output.decode()
    assert b"Traceback" not in output, output.decode()


async def test_a_damaged_database_at_start_is_exit_2_with_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "checks.yaml").write_text("checks:\n  - {name: api, type: http, url: 'http://127.0.0.1:9/'}\n")
    db = tmp_path / "prober.db"
    db.write_bytes(b"SQLite format 3\0" + os.urandom(8000))
    proc = await _start(tmp_path, db, _free_port())
    output, _ = await asyncio.wait_for(proc.communicate(), 30)
    text = output.decode()
    assert proc.returncode == 2, text
    assert "cannot open the database" in text and "prober.db" in text, text
    assert "Traceback" not in text
