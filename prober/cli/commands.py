"""The `prober` command line (README.md, Commands). Thin: parse options, call the library, print.

Every option can also come from `PROBER_<OPTION>` in the environment. Exit codes are part of the
contract: `check` exits 0 when nothing is down, 1 when something is, 2 for a configuration error.

The options several commands share are declared in prober.cli.options; every table, line and colour a
command prints is drawn by prober.cli.render. A command here only reads its options, calls the library,
hands what it got to render and picks the exit code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from prober.cli import render
from prober.cli.options import (
    artifacts_option,
    concurrency_option,
    db_option,
    json_option,
    listen_option,
    location_option,
    log_format_option,
    parse_listen,
    parse_shard,
    paths_argument,
)

if TYPE_CHECKING:
    from rich.console import Console

    from prober.config.loader import Config, ConfigError
    from prober.results import Result

# Everything else is imported inside the command that needs it: `prober --help` must answer in well under
# 0.15 s, and `prober validate` must not pay for aiohttp, rich's tables or the probes it does not use
# (tests/test_package.py checks which modules each loads; tests/bench/bench_start.py times them).

__all__ = ["main"]

T = TypeVar("T")

DEFAULT_PATHS = ("checks/",)


def _exit_with_problems(exc: ConfigError, err: Console) -> NoReturn:
    render.print_problems(exc, err)
    sys.exit(2)


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, on uvloop (a dependency except on Windows) unless PROBER_EVENT_LOOP is `asyncio`.

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


def _load_or_exit(paths: Sequence[str], err: Console) -> Config:
    import gc

    from prober.config.loader import ConfigError, load_config

    # Loading thousands of checks allocates hundreds of thousands of objects that all stay alive: the cyclic
    # collector's passes over them find nothing and cost a tenth of `prober validate`. The load is bounded
    # (prober/config/yaml_reader.py), so it runs with the collector paused.
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
    err = render.console(stderr=True)
    config = _load_or_exit(paths, err)
    click.echo(f"{len(config.checks)} check(s) in {len(config.files)} file(s) are valid.")


async def _run_checks(
    config: Config,
    names: Sequence[str],
    location: str | None,
    concurrency: int,
    emit: Any,
    artifacts: Path,
    progress: render.Progress | None = None,
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
    err = render.console(stderr=True)
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

    with render.Progress(err, len(selected)) as progress:
        results = run_async(_run_checks(config, names, location, concurrency, emit, Path(artifacts), progress))
    if not as_json:
        render.print_results(results, render.console())
    sys.exit(1 if any(r.status == "down" for r in results) else 0)


def _open_store_or_exit(db: str, err: Console) -> Any:
    from prober.store import Store, StoreError

    try:
        return Store(db, create=False)
    except StoreError as exc:
        err.print(f"{exc} (is `prober run --db {db}` running here?)", highlight=False, markup=False)
        sys.exit(2)


def _push_options(push: Sequence[str], token_file: str | None, err: Console) -> tuple[list[str], str | None]:
    """The validated hub URLs of every --push (each may list several, comma-separated) and the token read from
    --token-file, sent to each hub (exit 2 with a clear message otherwise)."""
    from prober.agent import check_push_urls, read_token_file

    try:
        hubs = check_push_urls(push)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--push") from None
    if not hubs:
        if token_file:
            err.print("--token-file is only used with --push; this prober is not an agent.", highlight=False)
        return [], None
    if not token_file:
        raise click.UsageError(
            "--push needs --token-file FILE (or PROBER_TOKEN_FILE) holding this location's ingest token"
        )
    try:
        return hubs, read_token_file(token_file)
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
    multiple=True,
    metavar="URL",
    envvar="PROBER_PUSH",
    help="Be an agent: push results to the hub at URL (e.g. https://hub:8080); the hub alerts, this prober "
    "sends no notifications. Repeat it (or list URLs comma-separated) to push to several hubs, each on its own. "
    "Needs --token-file. [env: PROBER_PUSH, comma-separated]",
)
@click.option(
    "--token-file",
    default=None,
    metavar="FILE",
    envvar="PROBER_TOKEN_FILE",
    help="File holding this location's ingest token, as listed on the hub under ingest.tokens. "
    "[env: PROBER_TOKEN_FILE]",
)
@click.option(
    "--ping-peer",
    multiple=True,
    metavar="URL",
    envvar="PROBER_PING_PEERS",
    help="Pass every heartbeat ping received here on to the hub at URL, so it counts on every hub behind a load "
    "balancer. Repeat it (or list URLs comma-separated); listing this hub too is harmless. "
    "[env: PROBER_PING_PEERS, comma-separated]",
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
    push: tuple[str, ...],
    token_file: str | None,
    ping_peer: tuple[str, ...],
) -> None:
    """The daemon: run every check on its schedule, store results, alert, serve the API.

    Stops gracefully on SIGINT/SIGTERM (exit 0); SIGHUP or a change to the files reloads the definitions.
    With --push it is an agent: results are kept in --db and pushed to the hub, which alerts.

    \b
    Examples:
      prober run checks/ --db /var/lib/prober/prober.db --listen 0.0.0.0:8080
      PROBER_LOCATION=eu-west prober run --log-format json
      prober run checks/ --location eu-west --push https://hub:8080 --token-file /etc/prober/token --listen off
      PROBER_PUSH=https://hub-0:8080,https://hub-1:8080 prober run checks/ --location eu-west --token-file t
      prober run checks/ --ping-peer http://hub-0:8080 --ping-peer http://hub-1:8080
    """
    from prober.config.loader import ConfigError
    from prober.daemon.logs import setup_logging
    from prober.daemon.ping_peers import peer_urls
    from prober.daemon.service import Daemon, DaemonOptions
    from prober.store import StoreError

    err = render.console(stderr=True)
    push_urls, token = _push_options(push, token_file, err)
    try:
        ping_peers = peer_urls(ping_peer)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ping-peer") from None
    _load_or_exit(paths, err)
    setup_logging("json" if log_format == "json" else "text", log_level)
    options = DaemonOptions(
        paths=list(paths or DEFAULT_PATHS),
        db=Path(db),
        location=location,
        listen=None if listen.lower() in ("off", "none", "") else parse_listen(listen),
        artifacts=Path(artifacts) if artifacts else None,
        max_concurrency=concurrency,
        shard=parse_shard(shard),
        push_urls=push_urls,
        token=token,
        ping_peers=ping_peers,
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
    from prober.results import format_timestamp

    err = render.console(stderr=True)
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
        render.console().print("No results yet.")
        return
    render.print_status(rows, open_incidents, render.console())


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

    from prober.config.durations import parse_duration

    err = render.console(stderr=True)
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
    render.print_history(name, since, results, render.console())


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

    err = render.console(stderr=True)
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

    from prober.notify import alertmanager

    async def send() -> list[tuple[str, str, str | None]]:
        rows: list[tuple[str, str, str | None]] = []
        async with Notifier() as notifier:
            for name in chosen:
                found = config.notifiers[name]
                report = await notifier.send_test([*found.urls, *map(alertmanager.target, found.alertmanager)])
                rows.extend((name, url, error) for url, error in report.items())
        return rows

    import asyncio

    rows = asyncio.run(send())
    render.print_notify_report(rows, render.console())
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
    from prober.demo.run import run_demo

    setup_logging("json" if log_format == "json" else "text")
    try:
        run_async(run_demo(Path(db) if db else None, parse_listen(listen)))
    except OSError as exc:
        render.console(stderr=True).print(f"prober demo could not start: {exc}", markup=False, highlight=False)
        sys.exit(2)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script and of `python -m prober`."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="prober")
