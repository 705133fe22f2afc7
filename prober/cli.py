"""The `prober` command line (SPEC.md §1). Thin: parse options, call the library, print.

Every option can also come from `PROBER_<OPTION>` in the environment. Exit codes are part of the
contract: `check` exits 0 when nothing is down, 1 when something is, 2 for a configuration error.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from prober.config import Config, ConfigError, load_config
from prober.durations import format_duration
from prober.results import Result
from prober.runner import Runner

__all__ = ["main"]

DEFAULT_PATHS = ("checks/",)
STATUS_STYLE = {"up": "green", "degraded": "yellow", "down": "bold red"}


def _load_or_exit(paths: Sequence[str], err: Console) -> Config:
    try:
        return load_config(paths or DEFAULT_PATHS)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        err.print(f"{len(exc.problems)} problem(s) found.", style="red", highlight=False)
        sys.exit(2)


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
@click.argument("paths", nargs=-1, type=click.Path())
def validate(paths: tuple[str, ...]) -> None:
    """Load and validate check definitions; print every problem with file, check and field.

    \b
    Example:
      prober validate checks/ more-checks.yaml
    """
    err = Console(stderr=True)
    config = _load_or_exit(paths, err)
    click.echo(f"{len(config.checks)} check(s) in {len(config.files)} file(s) are valid.")


def _metric_summary(result: Result) -> str:
    shown = []
    for key in ("status", "latency", "days_remaining", "stale_for", "open_latency", "load"):
        value = result.metrics.get(key)
        if value is None:
            continue
        if key in ("latency", "stale_for", "open_latency", "load") and isinstance(value, int | float):
            shown.append(f"{key}={format_duration(float(value))}")
        elif isinstance(value, float):
            shown.append(f"{key}={value:.1f}")
        else:
            shown.append(f"{key}={value}")
    return " ".join(shown)


def _print_table(results: Sequence[Result], console: Console) -> None:
    table = Table(show_lines=False, header_style="bold")
    table.add_column("check")
    table.add_column("type")
    table.add_column("location")
    table.add_column("status")
    table.add_column("time", justify="right")
    table.add_column("details", overflow="fold")
    for result in results:
        style = STATUS_STYLE[result.status]
        detail = result.error or _metric_summary(result)
        table.add_row(
            result.check,
            result.type,
            result.location,
            f"[{style}]{result.status}[/]",
            format_duration(result.duration_ms / 1000),
            detail,
        )
    console.print(table)
    counts = {status: sum(r.status == status for r in results) for status in STATUS_STYLE}
    console.print(f"{counts['up']} up, {counts['degraded']} degraded, {counts['down']} down", highlight=False)


async def _run_checks(
    config: Config, names: Sequence[str], location: str | None, concurrency: int, emit: Any, artifacts: Path
) -> list[Result]:
    selected = config.select(names=names, location=location)
    runner = Runner(location=location or "default", artifacts_dir=artifacts)
    bound = asyncio.Semaphore(concurrency)
    results: list[Result] = []

    async def one(spec: Any) -> None:
        async with bound:
            result = await runner.run(spec)
        results.append(result)
        emit(result)

    try:
        await asyncio.gather(*(one(spec) for spec in selected))
    finally:
        await runner.resources.aclose()
    order = {spec.name: index for index, spec in enumerate(selected)}
    return sorted(results, key=lambda r: order[r.check])


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--name", "names", multiple=True, metavar="GLOB", help="Only checks whose name matches (repeatable).")
@click.option(
    "--location",
    envvar="PROBER_LOCATION",
    default=None,
    help="Run as this location: only checks listing it run. [env: PROBER_LOCATION]",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="PROBER_JSON",
    help="Print JSON Lines, one result per line, nothing else on stdout.",
)
@click.option(
    "--concurrency",
    default=32,
    show_default=True,
    type=click.IntRange(1, 1000),
    envvar="PROBER_CONCURRENCY",
    help="How many checks run at once.",
)
@click.option(
    "--artifacts",
    default="artifacts",
    show_default=True,
    type=click.Path(file_okay=False),
    envvar="PROBER_ARTIFACTS",
    help="Where screenshots are saved.",
)
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
    err = Console(stderr=True)
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

    results = asyncio.run(_run_checks(config, names, location, concurrency, emit, Path(artifacts)))
    if not as_json:
        _print_table(results, Console())
    sys.exit(1 if any(r.status == "down" for r in results) else 0)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script and of `python -m prober`."""
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    cli.main(args=list(argv) if argv is not None else None, prog_name="prober")
