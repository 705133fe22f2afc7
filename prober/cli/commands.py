"""The `prober` command line (SPEC.md §1). Thin: parse options, call the library, print.

Every option can also come from `PROBER_<OPTION>` in the environment. Exit codes are part of the
contract: `check` exits 0 when nothing is down, 1 when something is, 2 for a configuration error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from prober.cli.options import (
    artifacts_option,
    concurrency_option,
    db_option,
    json_option,
    listen_option,
    location_option,
    log_format_option,
    paths_argument,
)
from prober.config.durations import format_duration

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from prober.config.loader import Config, ConfigError
    from prober.results import Result

# Everything else is imported inside the command that needs it: `prober --help` must answer in well under
# 0.15 s, and `prober validate` must not pay for aiohttp, rich's tables or the probes it does not use
# (tests/test_package.py checks which modules each loads; tests/bench/bench_start.py times them).

__all__ = ["main"]

T = TypeVar("T")

DEFAULT_PATHS = ("checks/",)
STATUS_STYLE = {"up": "green", "degraded": "yellow", "down": "bold red"}


def _exit_with_problems(exc: ConfigError, err: Console) -> NoReturn:
    for problem in exc.problems:
        err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    err.print(f"{len(exc.problems)} problem(s) found.", style="red", highlight=False)
    sys.exit(2)


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, on uvloop when it is installed (the `fast` extra) and PROBER_EVENT_LOOP is not `asyncio`.

    uvloop's transports and timers cost less CPU per connection than the pure-Python selector loop, which
    is most of what an http check costs (tests/bench/bench_http.py); without it everything works the same."""
    import asyncio
    import os

    factory = None
    if os.environ.get("PROBER_EVENT_LOOP", "").strip().lower() != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


class _LazyConsole:
    """A rich Console built on first use: most runs of `validate` or `check --json` never print through one,
    and importing rich costs more than the rest of `prober validate`'s start."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def real(self) -> Console:
        """The Console itself, for rich objects that keep state on it (a Progress, a Live display)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


def _console(*, stderr: bool = False) -> Console:
    return _LazyConsole(stderr)  # type: ignore[return-value]


def _load_or_exit(paths: Sequence[str], err: Console) -> Config:
    import gc

    from prober.config.loader import ConfigError, load_config

    # Loading thousands of checks allocates hundreds of thousands of objects that all stay alive: the cyclic
    # collector's passes over them find nothing and cost a tenth of `prober validate`. The load is bounded
    # (prober/config_yaml.py), so it runs with the collector paused.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return load_config(paths or DEFAULT_PATHS)
    except ConfigError as exc:
        _exit_with_problems(exc, err)
    finally:
        if was_enabled:
            gc.enable()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="prober")
def cli() -> None:
    """prober: synthetic uptime and streaming checks from YAML.

    \b
    Examples:
      prober validate checks/
      prober check checks/ --name 'api-*'
      prober check --json | jq .
    """


@cli.command()
@paths_argument()
def validate(paths: tuple[str, ...]) -> None:
    """Load and validate check definitions; print every problem with file, check and field.

    \b
    Example:
      prober validate checks/ more-checks.yaml
    """
    err = _console(stderr=True)
    config = _load_or_exit(paths, err)
    click.echo(f"{len(config.checks)} check(s) in {len(config.files)} file(s) are valid.")


def _metric_summary(result: Result) -> str:
    """The headline metrics the check's probe declares (`status=200 latency=38ms`)."""
    from prober.probes import PROBES

    probe = PROBES.get(result.type)
    if probe is None:
        return ""
    shown = []
    for key in probe.headline:
        value = result.metrics.get(key)
        if value is None:
            continue
        spec = probe.metrics.get(key)
        if spec is not None and spec.unit == "s" and isinstance(value, int | float) and not isinstance(value, bool):
            shown.append(f"{key}={format_duration(float(value))}")
        elif isinstance(value, float):
            shown.append(f"{key}={value:.1f}")
        else:
            shown.append(f"{key}={value}")
    return " ".join(shown)


_COLUMNS = ("check", "type", "location", "status", "time", "details")


def _print_table(results: Sequence[Result], console: Console) -> None:
    rows = [
        (
            result.check,
            result.type,
            result.location,
            result.status,
            format_duration(result.duration_ms / 1000),
            result.error or _metric_summary(result),
        )
        for result in results
    ]
    if not _print_plain_table(rows, console):
        from rich.table import Table

        table = Table(show_lines=False, header_style="bold")
        for name in _COLUMNS[:4]:
            table.add_column(name)
        table.add_column("time", justify="right")
        table.add_column("details", overflow="fold")
        for check, type_name, location, status, duration, detail in rows:
            table.add_row(check, type_name, location, f"[{STATUS_STYLE[status]}]{status}[/]", duration, detail)
        console.print(table)
    counts = {status: sum(r.status == status for r in results) for status in STATUS_STYLE}
    console.print(f"{counts['up']} up, {counts['degraded']} degraded, {counts['down']} down", highlight=False)


def _print_plain_table(rows: Sequence[tuple[str, ...]], console: Console) -> bool:
    """Write the table as rich would, character for character, when the output has no styles (a pipe or a
    file) and every cell fits on one line: rich's layout engine costs half a millisecond a row, more than
    running an http check, which made the table of a 5,000-check run its most expensive part. False (nothing
    written) when rich must lay it out: a terminal, a cell to wrap or fold, markup, emoji codes, wide text."""
    from rich._emoji_replace import _emoji_replace

    if console.is_terminal or console.color_system is not None:
        return False
    widths = [len(name) for name in _COLUMNS]
    for row in rows:
        for index, cell in enumerate(row):
            plain = cell.isascii() and cell.isprintable() and "[" not in cell
            if not plain or (":" in cell and _emoji_replace(cell) != cell):
                return False
            if len(cell) > widths[index]:
                widths[index] = len(cell)
    if sum(widths) + 3 * len(widths) + 1 > console.width:
        return False

    def line(cells: Sequence[str], left: str, middle: str, right: str) -> str:
        parts = [
            cell.rjust(width) if name == "time" else cell.ljust(width)
            for cell, width, name in zip(cells, widths, _COLUMNS, strict=True)
        ]
        return f"{left} " + f" {middle} ".join(parts) + f" {right}"

    def rule(left: str, fill: str, middle: str, right: str) -> str:
        return left + middle.join(fill * (width + 2) for width in widths) + right

    out = [rule("┏", "━", "┳", "┓"), line(_COLUMNS, "┃", "┃", "┃"), rule("┡", "━", "╇", "┩")]
    out += [line(row, "│", "│", "│") for row in rows]
    out.append(rule("└", "─", "┴", "┘"))
    console.file.write("\n".join(out) + "\n")
    return True


def _maybe_terminal() -> bool:
    """False when stderr is surely not a terminal rich would draw on (a pipe, a file, and no variable forcing
    it), so the progress line's imports are skipped; otherwise rich's own Console decides."""
    import os

    forced = any(os.environ.get(name) for name in ("FORCE_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE"))
    return forced or sys.stderr.isatty()


class _Progress:
    """The live line `prober check` shows on stderr while checks run: done/total, how many are down or
    degraded so far, and which are running. Only on a terminal; never on stdout (which may be --json)."""

    def __init__(self, console: Console, total: int) -> None:
        self.running: list[str] = []
        self.counts = {"up": 0, "degraded": 0, "down": 0}
        self.enabled = _maybe_terminal() and console.is_terminal and not console.is_dumb_terminal
        if not self.enabled:  # a pipe or a file: no line to draw, and rich's progress costs a lot to import
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        if isinstance(console, _LazyConsole):
            console = console.real()
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("checking"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[summary]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            redirect_stdout=False,  # rich would otherwise send stdout (the --json lines) to the terminal
            redirect_stderr=False,
            disable=not self.enabled,
        )
        self.task = self.progress.add_task("checks", total=total, summary="")

    def _refresh(self, advance: int = 0) -> None:
        if not self.enabled:
            return
        parts = [f"{self.counts['down']} down"] if self.counts["down"] else []
        if self.counts["degraded"]:
            parts.append(f"{self.counts['degraded']} degraded")
        if self.running:
            shown = ", ".join(self.running[:3]) + (f" +{len(self.running) - 3}" if len(self.running) > 3 else "")
            parts.append(f"running {shown}")
        self.progress.update(self.task, advance=advance, summary=" · ".join(parts))

    def started(self, name: str) -> None:
        if self.enabled:
            self.running.append(name)
            self._refresh()

    def finished(self, result: Result) -> None:
        self.counts[result.status] += 1
        if self.enabled:
            if result.check in self.running:
                self.running.remove(result.check)
            self._refresh(advance=1)

    def __enter__(self) -> _Progress:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()


async def _run_checks(
    config: Config,
    names: Sequence[str],
    location: str | None,
    concurrency: int,
    emit: Any,
    artifacts: Path,
    progress: _Progress | None = None,
) -> list[Result]:
    from prober.scheduling.runner import Runner

    selected = config.select(names=names, location=location)
    runner = Runner(location=location or "default", artifacts_dir=artifacts)
    import asyncio

    bound = asyncio.Semaphore(concurrency)
    results: list[Result] = []

    async def one(spec: Any) -> None:
        async with bound:
            if progress is not None:
                progress.started(spec.name)
            result = await runner.run(spec)
        results.append(result)
        if progress is not None:
            progress.finished(result)
        emit(result)

    try:
        await asyncio.gather(*(one(spec) for spec in selected))
    finally:
        await runner.resources.aclose()
    order = {spec.name: index for index, spec in enumerate(selected)}
    return sorted(results, key=lambda r: order[r.check])


@cli.command()
@paths_argument()
@click.option(
    "--name",
    "names",
    multiple=True,
    metavar="GLOB",
    envvar="PROBER_NAME",
    help="Only checks whose name matches (repeatable). [env: PROBER_NAME, space-separated]",
)
@location_option(None, "Run as this location: only checks listing it run. [env: PROBER_LOCATION]")
@json_option("Print JSON Lines, one result per line, nothing else on stdout.")
@concurrency_option(32, 1000, "How many checks run at once.")
@artifacts_option("artifacts", "Where screenshots are saved.")
def check(
    paths: tuple[str, ...],
    names: tuple[str, ...],
    location: str | None,
    as_json: bool,
    concurrency: int,
    artifacts: str,
) -> None:
    """Run the selected checks once, now, concurrently, and print the results.

    Exit code 0 when no result is down, 1 when any is, 2 for a configuration error.
    Without --location (or PROBER_LOCATION) every check runs, as location 'default'.

    \b
    Examples:
      prober check checks/
      prober check --name 'api-*' --json
    """
    err = _console(stderr=True)
    config = _load_or_exit(paths, err)
    selected = config.select(names=names, location=location)
    if not selected:
        where = f" at location {location!r}" if location else ""
        err.print(
            f"No checks match{where}" + (f" the names {', '.join(names)}" if names else "") + ".", highlight=False
        )
        sys.exit(2)

    def emit(result: Result) -> None:
        if as_json:
            sys.stdout.write(json.dumps(result.to_json(), default=str) + "\n")
            sys.stdout.flush()

    with _Progress(err, len(selected)) as progress:
        results = run_async(_run_checks(config, names, location, concurrency, emit, Path(artifacts), progress))
    if not as_json:
        _print_table(results, _console())
    sys.exit(1 if any(r.status == "down" for r in results) else 0)


def _open_store_or_exit(db: str, err: Console) -> Any:
    from prober.store import Store, StoreError

    try:
        return Store(db, create=False)
    except StoreError as exc:
        err.print(f"{exc} (is `prober run --db {db}` running here?)", highlight=False, markup=False)
        sys.exit(2)


def _parse_listen(value: str) -> str:
    _host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"expected HOST:PORT like 127.0.0.1:8080, got {value!r}")
    return value


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    index, sep, count = value.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or not 1 <= int(index) <= int(count):
        raise click.BadParameter(f"expected I/N with 1 <= I <= N, like 1/3, got {value!r}")
    return int(index), int(count)


def _push_options(push: str | None, token_file: str | None, err: Console) -> tuple[str | None, str | None]:
    """The validated --push URL and the token read from --token-file (exit 2 with a clear message otherwise)."""
    from prober.agent import check_push_url, read_token_file

    if not push:
        if token_file:
            err.print("--token-file is only used with --push; this prober is not an agent.", highlight=False)
        return None, None
    try:
        check_push_url(push)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--push") from None
    if not token_file:
        raise click.UsageError(
            "--push needs --token-file FILE (or PROBER_TOKEN_FILE) holding this location's ingest token"
        )
    try:
        return push.strip(), read_token_file(token_file)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--token-file") from None


@cli.command()
@paths_argument()
@db_option()
@location_option("default", "This prober's location: only checks listing it run. [env: PROBER_LOCATION]")
@listen_option("Where the HTTP API and status page listen; 'off' to disable. [env: PROBER_LISTEN]")
@log_format_option("Readable text, or one JSON object per line.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    envvar="PROBER_LOG_LEVEL",
)
@artifacts_option(None, "Where screenshots are saved. [default: artifacts/ beside the database]")
@concurrency_option(64, 10000, "Checks running at once at most.")
@click.option(
    "--shard",
    default=None,
    metavar="I/N",
    envvar="PROBER_SHARD",
    help="Run only the I-th of N shares of the checks (several probers at one location).",
)
@click.option(
    "--push",
    default=None,
    metavar="URL",
    envvar="PROBER_PUSH",
    help="Be an agent: push results to the hub at URL (e.g. https://hub:8080); the hub alerts, this prober "
    "sends no notifications. Needs --token-file. [env: PROBER_PUSH]",
)
@click.option(
    "--token-file",
    default=None,
    metavar="FILE",
    envvar="PROBER_TOKEN_FILE",
    help="File holding this location's ingest token, as listed on the hub under ingest.tokens. "
    "[env: PROBER_TOKEN_FILE]",
)
def run(
    paths: tuple[str, ...],
    db: str,
    location: str,
    listen: str,
    log_format: str,
    log_level: str,
    artifacts: str | None,
    concurrency: int,
    shard: str | None,
    push: str | None,
    token_file: str | None,
) -> None:
    """The daemon: run every check on its schedule, store results, alert, serve the API.

    Stops gracefully on SIGINT/SIGTERM (exit 0); SIGHUP or a change to the files reloads the definitions.
    With --push it is an agent: results are kept in --db and pushed to the hub, which alerts.

    \b
    Examples:
      prober run checks/ --db /var/lib/prober/prober.db --listen 0.0.0.0:8080
      PROBER_LOCATION=eu-west prober run --log-format json
      prober run checks/ --location eu-west --push https://hub:8080 --token-file /etc/prober/token --listen off
    """
    from prober.config.loader import ConfigError
    from prober.daemon.logs import setup_logging
    from prober.daemon.service import Daemon, DaemonOptions
    from prober.store import StoreError

    err = _console(stderr=True)
    push_url, token = _push_options(push, token_file, err)
    _load_or_exit(paths, err)
    setup_logging("json" if log_format == "json" else "text", log_level)
    options = DaemonOptions(
        paths=list(paths or DEFAULT_PATHS),
        db=Path(db),
        location=location,
        listen=None if listen.lower() in ("off", "none", "") else _parse_listen(listen),
        artifacts=Path(artifacts) if artifacts else None,
        max_concurrency=concurrency,
        shard=_parse_shard(shard),
        push_url=push_url,
        token=token,
    )
    try:
        run_async(Daemon(options).run())
    except ConfigError as exc:  # the files changed between the check above and the daemon's own load
        _exit_with_problems(exc, err)
    except StoreError as exc:
        err.print(f"prober could not start: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as exc:
        err.print(f"prober could not start: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    sys.exit(0)


def _age(moment: Any) -> str:
    from datetime import UTC, datetime

    return format_duration(max(0.0, (datetime.now(UTC) - moment).total_seconds())) + " ago"


@cli.command()
@db_option()
@json_option("One JSON object per check and location.")
def status(db: str, as_json: bool) -> None:
    """Current state of every check, from the database of `prober run`, and why each one that is not up
    is not (its worst location's latest error) and since when.

    \b
    Example:
      prober status --db /var/lib/prober/prober.db
    """
    from rich.table import Table
    from rich.text import Text

    from prober.results import format_timestamp

    err = _console(stderr=True)
    with _open_store_or_exit(db, err) as store:
        rows = store.current()
        open_incidents = {row["check"]: row for row in store.incidents(limit=100_000, open_only=True)}
    if as_json:
        for row in rows:
            incident = open_incidents.get(row["check"])
            data = {
                "check": row["check"],
                "location": row["location"],
                "type": row["type"],
                "status": row["status"],
                "started_at": format_timestamp(row["started_at"]),
                "duration_ms": row["duration_ms"],
                "error": row["error"],
                "consecutive_down": row["consecutive_down"],
                "last_change": format_timestamp(row["last_change"]),
                "incident_open_since": format_timestamp(incident["started_at"]) if incident else None,
            }
            sys.stdout.write(json.dumps(data) + "\n")
        return
    if not rows:
        _console().print("No results yet.")
        return
    console = _console()
    table = Table(header_style="bold")
    for column in ("check", "location", "type", "status", "since", "last run", "time", "incident", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        style = STATUS_STYLE[row["status"]]
        incident = open_incidents.get(row["check"])
        table.add_row(
            row["check"],
            row["location"],
            row["type"],
            f"[{style}]{row['status']}[/]",
            _age(row["last_change"]),
            _age(row["started_at"]),
            format_duration(row["duration_ms"] / 1000),
            f"open, {_age(incident['started_at'])}" if incident else "",
            (row["error"] or "") if row["status"] != "up" else "",
        )
    console.print(table)
    reasons = _reasons(rows)
    checks = len({row["check"] for row in rows})
    if not reasons:
        console.print(f"All {checks} check(s) are up.", highlight=False)
        return
    console.print(f"{len(reasons)} of {checks} check(s) are not up:", highlight=False)
    for check, row, locations in reasons:
        where = f" at {row['location']}" if locations > 1 else ""
        line = Text(f"  {check} ")
        line.append(row["status"], style=STATUS_STYLE[row["status"]])
        line.append(f"{where} since {_age(row['last_change'])}: {row['error'] or 'no error recorded'}")
        console.print(line, highlight=False)


def _reasons(rows: Sequence[Any]) -> list[tuple[str, Any, int]]:
    """Per check that is not up: its worst location's row (the one in that state the longest), as the status
    page's reason line picks it, and how many locations the check has."""
    rank = {"up": 0, "degraded": 1, "down": 2}
    by_check: dict[str, list[Any]] = {}
    for row in rows:
        by_check.setdefault(row["check"], []).append(row)
    found = []
    for check, items in by_check.items():
        failing = [row for row in items if row["status"] != "up"]
        if failing:
            worst = max(rank[row["status"]] for row in failing)
            row = min((row for row in failing if rank[row["status"]] == worst), key=lambda row: row["last_change"])
            found.append((check, row, len(items)))
    return found


SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 60


def sparkline(results: Sequence[Result], width: int = SPARK_WIDTH) -> tuple[Text, float, float]:
    """Results (oldest first) as a line of at most `width` block characters, one per group of consecutive
    results: the group's highest latency, scaled between the lowest and highest; red where a group has a
    down result, yellow where degraded. Also the lowest and highest latency."""
    from rich.text import Text

    from prober.store.rollups import latency_of

    latencies = [latency_of(result.metrics, result.duration_ms) for result in results]
    low, high = min(latencies), max(latencies)
    size = max(1, -(-len(results) // width))
    line = Text()
    for start in range(0, len(results), size):
        group = range(start, min(start + size, len(results)))
        value = max(latencies[index] for index in group)
        level = 0 if high <= low else round((value - low) / (high - low) * (len(SPARK) - 1))
        statuses = {results[index].status for index in group}
        style = "red" if "down" in statuses else "yellow" if "degraded" in statuses else "green"
        line.append(SPARK[level], style=style)
    return line, low, high


@cli.command()
@click.argument("name")
@db_option()
@click.option(
    "--since", default="1h", show_default=True, envvar="PROBER_SINCE", help="How far back, as a duration (30m, 6h, 7d)."
)
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100000), envvar="PROBER_LIMIT")
@json_option("JSON Lines of full results.")
def history(name: str, db: str, since: str, limit: int, as_json: bool) -> None:
    """Recent results of one check, newest first, under a latency sparkline (oldest to newest).
    Exit code 2 for a check the database does not know.

    \b
    Example:
      prober history api-health --since 6h
    """
    from datetime import UTC, datetime, timedelta

    from rich.table import Table
    from rich.text import Text

    from prober.config.durations import parse_duration
    from prober.store.rollups import latency_of

    err = _console(stderr=True)
    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    with _open_store_or_exit(db, err) as store:
        if name not in store.checks():
            known = ", ".join(store.checks()) or "none yet"
            err.print(f"unknown check {name!r}; checks in {db}: {known}", highlight=False, markup=False)
            sys.exit(2)
        results = store.results(name, since=datetime.now(UTC) - timedelta(seconds=window), limit=limit)
    if as_json:
        for result in results:
            sys.stdout.write(json.dumps(result.to_json(), default=str) + "\n")
        return
    console = _console()
    if results:
        line, low, high = sparkline(results[::-1])
        latencies = sorted(latency_of(result.metrics, result.duration_ms) for result in results)
        median = latencies[len(latencies) // 2]
        head = Text("latency ")
        head.append_text(line)
        head.append(
            f"  {format_duration(low)} … {format_duration(high)}, median {format_duration(median)}"
            " (oldest → newest; red: down)"
        )
        console.print(head, highlight=False, soft_wrap=True)
    table = Table(header_style="bold", title=f"{name}: {len(results)} result(s) in the last {since}")
    for column in ("started", "location", "status", "time", "details"):
        table.add_column(column, overflow="fold")
    for result in results:
        style = STATUS_STYLE[result.status]
        table.add_row(
            result.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            result.location,
            f"[{style}]{result.status}[/]",
            format_duration(result.duration_ms / 1000),
            result.error or _metric_summary(result),
        )
    console.print(table)


@cli.command("notify-test")
@paths_argument()
@click.option(
    "--notifier",
    "names",
    multiple=True,
    metavar="NAME",
    envvar="PROBER_NOTIFIER",
    help="Only this notifier (repeatable). [env: PROBER_NOTIFIER]",
)
def notify_test(paths: tuple[str, ...], names: tuple[str, ...]) -> None:
    """Send a test message through the configured notifiers and report each URL.

    Exit code 0 when every URL accepted it, 1 when any failed, 2 for a configuration error.

    \b
    Example:
      prober notify-test checks/ --notifier oncall
    """
    from prober.notify.notifier import Notifier

    err = _console(stderr=True)
    config = _load_or_exit(paths, err)
    unknown = [name for name in names if name not in config.notifiers]
    if unknown:
        valid = ", ".join(sorted(config.notifiers)) or "none are defined"
        err.print(f"unknown notifier {', '.join(unknown)}; defined notifiers: {valid}", highlight=False)
        sys.exit(2)
    chosen = names or tuple(config.notifiers)
    if not chosen:
        err.print("No notifiers are defined.", highlight=False)
        sys.exit(2)

    async def send() -> list[tuple[str, str, str | None]]:
        rows: list[tuple[str, str, str | None]] = []
        async with Notifier() as notifier:
            for name in chosen:
                report = await notifier.send_test(config.notifiers[name].urls)
                rows.extend((name, url, error) for url, error in report.items())
        return rows

    import asyncio

    rows = asyncio.run(send())
    from rich.table import Table

    table = Table(header_style="bold")
    for column in ("notifier", "url", "result"):
        table.add_column(column, overflow="fold")
    for name, url, error in rows:
        table.add_row(name, url, "[green]sent[/]" if error is None else f"[red]failed[/]: {error}")
    _console().print(table)
    sys.exit(1 if any(error is not None for _, _, error in rows) else 0)


@cli.command()
@db_option(None, "Keep the demo's results in this file. [default: a temporary file]")
@listen_option("Where the status page and API listen. [env: PROBER_LISTEN]")
@log_format_option()
def demo(db: str | None, listen: str, log_format: str) -> None:
    """Start sample targets on loopback, run checks against them and serve the status page. Needs no network.

    \b
    Example:
      prober demo --listen 127.0.0.1:8080    # then open http://127.0.0.1:8080/
    """
    from prober.daemon.logs import setup_logging
    from prober.demo import run_demo

    setup_logging("json" if log_format == "json" else "text")
    try:
        run_async(run_demo(Path(db) if db else None, _parse_listen(listen)))
    except OSError as exc:
        _console(stderr=True).print(f"prober demo could not start: {exc}", markup=False, highlight=False)
        sys.exit(2)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script and of `python -m prober`."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="prober")
