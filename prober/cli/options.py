"""The command-line options several `prober` commands share, each declared once.

A name, its environment variable and its type are the same wherever the option appears, so `--db` cannot
read `PROBER_DB` in one command and something else in another; what differs between commands (a default,
the sentence of help) is a parameter. The checks of values click's types cannot express (HOST:PORT, I/N)
are here too, each raising click's own error. Imports nothing but click: `prober --help` stays quick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import click

__all__ = [
    "artifacts_option",
    "concurrency_option",
    "db_option",
    "json_option",
    "listen_option",
    "location_option",
    "log_format_option",
    "parse_listen",
    "parse_shard",
    "paths_argument",
]

F = TypeVar("F", bound=Callable[..., Any])


class Decorator(Protocol):
    """What click.option returns: the command function, unchanged in type, with one more parameter."""

    def __call__(self, function: F, /) -> F: ...


def paths_argument() -> Decorator:
    """The check files and folders (none: ./checks or ./prober.yaml, as prober.config.loader finds them)."""
    return click.argument("paths", nargs=-1, type=click.Path())


def db_option(default: str | None = "prober.db", help: str = "SQLite database file. [env: PROBER_DB]") -> Decorator:
    return click.option(
        "--db",
        default=default,
        show_default=default is not None,
        type=click.Path(dir_okay=False),
        envvar="PROBER_DB",
        help=help,
    )


def location_option(default: str | None, help: str) -> Decorator:
    return click.option("--location", envvar="PROBER_LOCATION", default=default, show_default=default is not None,
                        help=help)  # fmt: skip


def json_option(help: str) -> Decorator:
    return click.option("--json", "as_json", is_flag=True, envvar="PROBER_JSON", help=help)


def concurrency_option(default: int, maximum: int, help: str) -> Decorator:
    return click.option(
        "--concurrency",
        default=default,
        show_default=True,
        type=click.IntRange(1, maximum),
        envvar="PROBER_CONCURRENCY",
        help=help,
    )


def artifacts_option(default: str | None, help: str) -> Decorator:
    return click.option(
        "--artifacts",
        default=default,
        show_default=default is not None,
        type=click.Path(file_okay=False),
        envvar="PROBER_ARTIFACTS",
        help=help,
    )


def listen_option(help: str) -> Decorator:
    return click.option("--listen", envvar="PROBER_LISTEN", default="127.0.0.1:8080", show_default=True, help=help)


def log_format_option(help: str | None = None) -> Decorator:
    return click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        envvar="PROBER_LOG_FORMAT",
        help=help,
    )


def parse_listen(value: str) -> str:
    _host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"expected HOST:PORT like 127.0.0.1:8080, got {value!r}")
    return value


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    index, sep, count = value.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or not 1 <= int(index) <= int(count):
        raise click.BadParameter(f"expected I/N with 1 <= I <= N, like 1/3, got {value!r}")
    return int(index), int(count)
