"""`prober validate` and `prober check` as a user runs them: real processes against loopback targets."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from http_targets import Target, http_target, silent_server, unused_port, write_checks

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "prober"
PROBER = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "prober"]
# Runs the CLI in-process and reports the process's peak memory on stderr when it exits.
MEASURED = [
    sys.executable,
    "-c",
    "import atexit, resource, sys\n"
    "atexit.register(lambda: sys.stderr.write("
    "'maxrss_kib=%d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    "from prober.cli.commands import main\n"
    "main()\n",
]
HANG_TIMEOUT = 2.0


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    wall: float

    def results(self) -> dict[str, dict[str, Any]]:
        """Every stdout line parsed as one JSON object, by check name (fails on anything else)."""
        parsed = [json.loads(line) for line in self.stdout.splitlines()]
        assert all(isinstance(item, dict) for item in parsed)
        by_name = {item["check"]: item for item in parsed}
        assert len(by_name) == len(parsed), "a check was reported twice"
        return by_name

    def maxrss_mib(self) -> float:
        match = re.search(r"^maxrss_kib=(\d+)$", self.stderr, re.M)
        assert match, self.stderr
        return int(match.group(1)) / 1024


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROBER_")}
    return {**env, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8", **extra}


async def prober(*args: str, cwd: Path, env: dict[str, str] | None = None, command: Sequence[str] = PROBER) -> Run:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=env or _env(),
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Run(process.returncode, stdout.decode(), stderr.decode(), time.perf_counter() - started)


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    async with http_target() as running:
        yield running


def _moment(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _http(name: str, url: str, **keys: Any) -> dict[str, Any]:
    return {"name": name, "type": "http", "url": url, **keys}


# --- prober check --json --------------------------------------------------------------------------------


@pytest.mark.slow
async def test_check_json_judges_every_kind_of_target_concurrently(target: Target, tmp_path: Path) -> None:
    async with silent_server() as silent_port:
        checks = [
            _http(
                "healthy",
                target.url("/health"),
                expect={"status": 200, "json": {"status": "healthy", "checks.database.status": "healthy"}},
            ),
            _http("unavailable", target.url("/unavailable")),
            _http("wrong-json", target.url("/sick"), expect={"json": {"checks.database.status": "healthy"}}),
            _http("refused", f"http://127.0.0.1:{unused_port()}/"),
            _http("hang-1", target.url("/hang"), timeout=HANG_TIMEOUT),
            _http("hang-2", target.url("/hang"), timeout=HANG_TIMEOUT),
            _http("silent", f"http://127.0.0.1:{silent_port}/", timeout=HANG_TIMEOUT),
            _http("big", target.url("/big")),
            _http("loop", target.url("/loop")),
        ]
        path = write_checks(tmp_path / "checks.yaml", checks)
        baseline_path = write_checks(tmp_path / "baseline.yaml", checks[:1])
        run, baseline = await asyncio.gather(
            prober("check", str(path), "--json", cwd=tmp_path, command=MEASURED),
            prober("check", str(baseline_path), "--json", cwd=tmp_path, command=MEASURED),
        )

    assert run.returncode == 1, run.stderr
    results = run.results()
    assert set(results) == {check["name"] for check in checks}

    healthy = results["healthy"]
    assert healthy["status"] == "up" and healthy["error"] is None
    assert healthy["metrics"]["status"] == 200
    assert {a["metric"]: a["actual"] for a in healthy["assertions"]} == {
        "status": 200,
        "json.status": "healthy",
        "json.checks.database.status": "healthy",
    }

    assert results["unavailable"]["status"] == "down"
    assert results["unavailable"]["metrics"]["status"] == 503
    assert results["unavailable"]["error"] == "status was 503, expected 2xx"

    assert results["wrong-json"]["status"] == "down"
    assert results["wrong-json"]["error"] == "json.checks.database.status was 'unhealthy', expected healthy"

    assert results["refused"]["status"] == "down"
    assert results["refused"]["error"].startswith("connection refused by 127.0.0.1:")

    for name in ("hang-1", "hang-2", "silent"):
        hung = results[name]
        assert hung["status"] == "down", name
        assert hung["error"] == "timed out after 2s", name
        assert HANG_TIMEOUT * 1000 <= hung["duration_ms"] < HANG_TIMEOUT * 1000 + 1000, name

    big = results["big"]
    assert big["status"] == "up", big["error"]
    assert big["metrics"]["body_size"] == 1024 * 1024
    assert big["details"]["body_truncated_at"] == 1024 * 1024

    assert results["loop"]["status"] == "down"
    assert "too many redirects" in results["loop"]["error"]

    for name in ("healthy", "unavailable", "wrong-json", "refused", "big", "loop"):
        assert results[name]["duration_ms"] < 1500, f"{name} was held up: {results[name]['duration_ms']}ms"
    # Three checks hung for 2 s each; one after another they would take 6 s. From the first check's start
    # to the last one's end (the process's start-up time left out) the run takes about one timeout.
    starts = [_moment(result["started_at"]) for result in results.values()]
    ends = [start + result["duration_ms"] / 1000 for start, result in zip(starts, results.values(), strict=True)]
    assert max(ends) - min(starts) < 2 * HANG_TIMEOUT, f"checks ran one after another: {max(ends) - min(starts):.1f}s"
    # Reading 1 MiB of a 50 MiB body must not cost 50 MiB.
    assert run.maxrss_mib() - baseline.maxrss_mib() < 25, (run.maxrss_mib(), baseline.maxrss_mib())
    assert baseline.returncode == 0


async def test_check_json_lines_follow_the_result_contract(target: Target, tmp_path: Path) -> None:
    path = write_checks(tmp_path / "checks.yaml", [_http("api-health", target.url("/health"))])
    run = await prober("check", str(path), "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("\n") == 1 and run.stdout.endswith("\n")
    (result,) = run.results().values()
    assert list(result)[:11] == [
        "id",
        "check",
        "type",
        "location",
        "started_at",
        "duration_ms",
        "status",
        "error",
        "metrics",
        "assertions",
        "artifacts",
    ]
    assert (result["check"], result["type"], result["location"], result["status"]) == (
        "api-health",
        "http",
        "default",
        "up",
    )
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", result["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", result["started_at"])
    assert result["assertions"] == [
        {"metric": "status", "condition": "2xx", "actual": 200, "ok": True, "level": "expect"}
    ]


@pytest.mark.slow
async def test_check_exits_0_when_nothing_is_down_even_if_degraded(target: Target, tmp_path: Path) -> None:
    path = write_checks(
        tmp_path / "checks.yaml",
        [
            _http("healthy", target.url("/health")),
            _http("slowish", target.url("/health"), warn={"latency": "< 0ms"}),
        ],
    )
    run = await prober("check", str(path), "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert {name: result["status"] for name, result in run.results().items()} == {
        "healthy": "up",
        "slowish": "degraded",
    }


@pytest.mark.slow
async def test_check_exits_2_on_a_config_error_and_prints_nothing_on_stdout(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("checks:\n  - {name: api, type: http, url: 'http://127.0.0.1:9/', colour: red}\n")
    run = await prober("check", str(path), "--json", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stdout == ""
    assert f"{path}: check 'api': field 'colour': unknown key 'colour'" in run.stderr


async def test_check_exits_2_when_no_check_matches_the_name(target: Target, tmp_path: Path) -> None:
    path = write_checks(tmp_path / "checks.yaml", [_http("api-health", target.url("/health"))])
    run = await prober("check", str(path), "--name", "web-*", "--json", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stdout == ""
    assert "No checks match the names web-*." in run.stderr
    assert target.requests == []


async def test_check_runs_only_the_checks_named_by_glob(target: Target, tmp_path: Path) -> None:
    path = write_checks(
        tmp_path / "checks.yaml",
        [
            _http("api-health", target.url("/health")),
            _http("api-ready", target.url("/health")),
            _http("web", target.url("/unavailable")),
        ],
    )
    run = await prober("check", str(path), "--name", "api-*", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert sorted(run.results()) == ["api-health", "api-ready"]
    assert [r["path"] for r in target.requests] == ["/health", "/health"]


@pytest.mark.slow
async def test_check_location_runs_only_the_checks_listing_it(target: Target, tmp_path: Path) -> None:
    path = write_checks(
        tmp_path / "checks.yaml",
        [
            _http("everywhere", target.url("/health"), locations=["default", "eu-west"]),
            _http("us-only", target.url("/unavailable"), locations=["us-east"]),
        ],
    )
    by_option, by_env = await asyncio.gather(
        prober("check", str(path), "--location", "eu-west", "--json", cwd=tmp_path),
        prober("check", str(path), cwd=tmp_path, env=_env(PROBER_LOCATION="eu-west", PROBER_JSON="1")),
    )
    for run in (by_option, by_env):
        assert run.returncode == 0, run.stderr
        results = run.results()
        assert list(results) == ["everywhere"]
        assert results["everywhere"]["location"] == "eu-west"


async def test_check_table_shows_every_check_with_its_status(target: Target, tmp_path: Path) -> None:
    path = write_checks(
        tmp_path / "checks.yaml",
        [
            _http("api-health", target.url("/health")),
            _http("api-broken", target.url("/unavailable")),
            _http("api-slowish", target.url("/health"), warn={"latency": "< 0ms"}),
        ],
    )
    run = await prober("check", str(path), cwd=tmp_path)
    assert run.returncode == 1
    names = ("api-health", "api-broken", "api-slowish")
    rows = {name: line for line in run.stdout.splitlines() for name in names if f" {name} " in line}
    assert set(rows) == set(names), run.stdout
    assert " up " in rows["api-health"] and "status=200" in rows["api-health"]
    assert " down " in rows["api-broken"] and "status was 503, expected 2xx" in rows["api-broken"]
    assert " degraded " in rows["api-slowish"]
    assert "1 up, 1 degraded, 1 down" in run.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(run.stdout.splitlines()[0])


@pytest.mark.slow
async def test_check_reads_checks_directory_by_default(target: Target, tmp_path: Path) -> None:
    write_checks(tmp_path / "checks" / "api.yaml", [_http("api-health", target.url("/health"))])
    run = await prober("check", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert list(run.results()) == ["api-health"]


# --- prober validate ------------------------------------------------------------------------------------


async def test_validate_exits_0_and_counts_checks_and_files(target: Target, tmp_path: Path) -> None:
    write_checks(tmp_path / "checks" / "a.yaml", [_http("a", target.url("/health"))])
    write_checks(tmp_path / "checks" / "b.yml", [_http("b", target.url("/health")), _http("c", target.url("/"))])
    run = await prober("validate", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "3 check(s) in 2 file(s) are valid.\n"
    assert target.requests == [], "validate must never run a check"


@pytest.mark.slow
async def test_validate_reports_a_missing_path(tmp_path: Path) -> None:
    run = await prober("validate", "nowhere.yaml", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.splitlines() == ["nowhere.yaml: no such file or directory", "1 problem(s) found."]


@pytest.mark.slow
async def test_python_dash_m_prober_is_the_same_command(tmp_path: Path) -> None:
    run = await prober("validate", "nowhere.yaml", cwd=tmp_path, command=[sys.executable, "-m", "prober"])
    assert run.returncode == 2
    assert run.stderr.startswith("nowhere.yaml: no such file or directory")


@pytest.mark.slow
async def test_help_lists_the_commands(tmp_path: Path) -> None:
    run = await prober("--help", cwd=tmp_path)
    assert run.returncode == 0
    assert "validate" in run.stdout and "check" in run.stdout


TABLE_ERRORS = {
    "plain": "connection refused by 127.0.0.1:9",
    "long, folded by rich": "x" * 300,
    "ipv6 brackets (markup-like)": "connection refused by [::1]:80",
    "markup": "[bold]not bold[/bold]",
    "emoji code": "oops :smile: here",
    "not ascii": "naïve … sentence",
    "no error": None,
}


@pytest.mark.parametrize("width", [80, 200])
@pytest.mark.parametrize("error", list(TABLE_ERRORS.values()), ids=list(TABLE_ERRORS))
def test_the_plain_table_is_exactly_what_rich_draws(error: str | None, width: int, monkeypatch: Any) -> None:
    """`prober check` writes big tables to a pipe or file itself (rich's layout costs more than the checks);
    what it writes must be character for character rich's own table, and rich must draw every case the
    plain writer cannot (a cell to fold, markup, emoji codes, wide characters)."""
    import io
    from datetime import UTC

    from rich.console import Console

    from prober.cli import render
    from prober.results import Result, Status

    statuses: tuple[Status, ...] = ("up", "down", "degraded", "up")
    results = [
        Result(f"check-{index}", "http", "eu-west", datetime.now(UTC), 12.5 * 10**index, status, error=error,
               metrics={"status": 200, "latency": 0.0125})
        for index, status in enumerate(statuses)
    ]  # fmt: skip
    fast_out, drawn_out = io.StringIO(), io.StringIO()
    render.print_results(results, Console(file=fast_out, width=width))
    monkeypatch.setattr(render, "print_plain_table", lambda rows, console: False)
    render.print_results(results, Console(file=drawn_out, width=width))
    assert fast_out.getvalue() == drawn_out.getvalue()
    assert "1 down" in drawn_out.getvalue()


def test_the_plain_table_is_used_for_plain_cells_only() -> None:
    import io

    from rich.console import Console

    from prober.cli.render import print_plain_table

    row = ("api", "http", "default", "up", "12ms", "status=200 latency=12ms")
    assert print_plain_table([row], Console(file=io.StringIO(), width=120))
    assert not print_plain_table([(*row[:5], "[::1]")], Console(file=io.StringIO(), width=120))
    assert not print_plain_table([row], Console(file=io.StringIO(), width=40))
    assert not print_plain_table([row], Console(file=io.StringIO(), width=120, force_terminal=True))
