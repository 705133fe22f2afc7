"""How the `prober` commands show things on a terminal: result tables, the progress line, the status and
history tables, the latency sparkline, problem lists.

Only rendering: it reads the values it is given and writes them to a rich Console (or, for a big table
going to a pipe or a file, writes rich's own table characters itself). It never loads configuration,
opens the store, runs a check or decides an exit code (prober.cli.commands does). rich is imported inside
the functions that draw with it, so `prober --help` and `prober validate` never pay for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prober.config.durations import format_duration

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from prober.config.loader import ConfigError
    from prober.results import Result

__all__ = [
    "SPARK",
    "STATUS_STYLE",
    "Progress",
    "console",
    "metric_summary",
    "print_history",
    "print_notify_report",
    "print_plain_table",
    "print_problems",
    "print_results",
    "print_status",
    "sparkline",
]

STATUS_STYLE = {"up": "green", "degraded": "yellow", "down": "bold red"}


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


def console(*, stderr: bool = False) -> Console:
    """A Console on stdout (or stderr), made when first printed through."""
    return _LazyConsole(stderr)  # type: ignore[return-value]


def print_problems(exc: ConfigError, err: Console) -> None:
    """Every configuration problem on a line of its own, then how many there are."""
    for problem in exc.problems:
        err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    err.print(f"{len(exc.problems)} problem(s) found.", style="red", highlight=False)


# --- `prober check`: the results table -------------------------------------------------------------------


def metric_summary(result: Result) -> str:
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


def print_results(results: Sequence[Result], console: Console) -> None:
    """The table of `prober check` and its `N up, N degraded, N down` line."""
    rows = [
        (
            result.check,
            result.type,
            result.location,
            result.status,
            format_duration(result.duration_ms / 1000),
            result.error or metric_summary(result),
        )
        for result in results
    ]
    if not print_plain_table(rows, console):
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


def print_plain_table(rows: Sequence[tuple[str, ...]], console: Console) -> bool:
    """Write the table as rich would, character for character, when the output has no styles (a pipe or a
    file) and every cell fits on one line: rich's layout engine costs half a millisecond a row, more than
    running an http check, which made the table of a 5,000-check run its most expensive part. False (nothing
    written) when rich must lay it out: a terminal, a cell to wrap or fold, markup, emoji codes, wide text."""
    if console.is_terminal or console.color_system is not None:
        return False
    widths = [len(name) for name in _COLUMNS]
    for row in rows:
        for index, cell in enumerate(row):
            plain = cell.isascii() and cell.isprintable() and "[" not in cell
            if not plain or (":" in cell and _has_emoji_code(cell)):
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


def _has_emoji_code(cell: str) -> bool:
    """Whether rich would turn a `:name:` in the cell into an emoji (rich's public `Emoji.replace`)."""
    from rich.emoji import Emoji

    return Emoji.replace(cell) != cell


# --- `prober check`: the progress line -------------------------------------------------------------------


def _maybe_terminal() -> bool:
    """False when stderr is surely not a terminal rich would draw on (a pipe, a file, and no variable forcing
    it), so the progress line's imports are skipped; otherwise rich's own Console decides."""
    forced = any(os.environ.get(name) for name in ("FORCE_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE"))
    return forced or sys.stderr.isatty()


class Progress:
    """The live line `prober check` shows on stderr while checks run: done/total, how many are down or
    degraded so far, and which are running. Only on a terminal; never on stdout (which may be --json)."""

    def __init__(self, console: Console, total: int) -> None:
        self.running: list[str] = []
        self.counts = {"up": 0, "degraded": 0, "down": 0}
        self.enabled = _maybe_terminal() and console.is_terminal and not console.is_dumb_terminal
        if not self.enabled:  # a pipe or a file: no line to draw, and rich's progress costs a lot to import
            return
        from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        if isinstance(console, _LazyConsole):
            console = console.real()
        self.progress = Bar(
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

    def __enter__(self) -> Progress:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()


# --- `prober status` ---------------------------------------------------------------------------------------


def _age(moment: datetime) -> str:
    return format_duration(max(0.0, (datetime.now(UTC) - moment).total_seconds())) + " ago"


def print_status(rows: Sequence[Any], open_incidents: Mapping[str, Any], console: Console) -> None:
    """The table of every check and location (`Store.current()` rows), then why each check that is not up
    is not, and since when."""
    from rich.table import Table
    from rich.text import Text

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


# --- `prober history` --------------------------------------------------------------------------------------

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


def print_history(name: str, since: str, results: Sequence[Result], console: Console) -> None:
    """A check's results, newest first, under a latency sparkline of them (oldest to newest)."""
    from rich.table import Table
    from rich.text import Text

    from prober.store.rollups import latency_of

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
            result.error or metric_summary(result),
        )
    console.print(table)


# --- `prober notify-test` ----------------------------------------------------------------------------------


def print_notify_report(rows: Sequence[tuple[str, str, str | None]], console: Console) -> None:
    """One row per notifier URL: sent, or failed and why. Rows are (notifier, redacted URL, error or None)."""
    from rich.table import Table

    table = Table(header_style="bold")
    for column in ("notifier", "url", "result"):
        table.add_column(column, overflow="fold")
    for name, url, error in rows:
        table.add_row(name, url, "[green]sent[/]" if error is None else f"[red]failed[/]: {error}")
    console.print(table)
