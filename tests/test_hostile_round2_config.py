"""Check files, second hostile round: a string alias bomb. One anchored 1 MB string holding `$$`, named 1,000
times, is a 1 MB file under the 8 MiB and 1,000,000-value limits; before, `${VAR}` interpolation copied it
at every use and `prober validate` took about 1 GB (a 4.5 MB file: MemoryError; a few MB: the OOM killer).
Now the expanded size is bounded in characters and an aliased string is interpolated once, whatever the
number of uses. Each case has its healthy twin.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from prober.config.loader import ConfigError, load_config
from prober.config.yaml_reader import MAX_CHARACTERS

if TYPE_CHECKING:
    from conftest import ProberCli

BIG = "a$$" * 350_000  # 1,050,000 characters, each `$$` an escaped dollar
MAX_PEAK_MB = 150
"""Peak memory of the whole `prober validate` process (Python and prober alone are about 45 MB)."""


def _string_bomb(uses: int) -> str:
    """A valid check file whose 1 MB header value is anchored once and named `uses` times more."""
    checks = "".join(
        f"  - {{name: c{index}, type: http, url: 'http://127.0.0.1:9/', headers: {{X-A: *s}}}}\n"
        for index in range(uses)
    )
    return f'checks:\n  - {{name: a, type: http, url: "http://127.0.0.1:9/", headers: {{X-A: &s "{BIG}"}}}}\n' + checks


_MEASURED = """
import runpy, sys
sys.argv = ["prober", "validate", sys.argv[1]]
try:
    runpy.run_module("prober", run_name="__main__")
finally:  # VmHWM: this process's own peak (ru_maxrss would count the test process it was forked from)
    peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print("PEAK_KB", peak.split()[1], file=sys.stderr)
"""


def _validate(prober_cli: ProberCli, path: Path) -> tuple[int, str, float, float]:
    """Exit code, output, seconds and peak memory (MB) of `prober validate path` in its own process."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, str(path)], capture_output=True, text=True, env=prober_cli.env()
    )
    seconds = time.monotonic() - started
    peak_kb = int(done.stderr.rsplit("PEAK_KB", 1)[1].split()[0])
    output = done.stdout + done.stderr.rsplit("PEAK_KB", 1)[0]
    return done.returncode, output, seconds, peak_kb / 1024


def test_a_1_mb_string_named_1000_times_is_refused_at_once_in_little_memory(
    tmp_path: Path, prober_cli: ProberCli
) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(_string_bomb(1000))
    assert path.stat().st_size < 1_200_000
    code, output, seconds, peak = _validate(prober_cli, path)
    assert code == 2, output
    assert (
        f"{path}: with its aliases expanded, the file holds more than {MAX_CHARACTERS:,} characters"
        " at line 65, column 72" in output
    ), output
    assert "an alias bomb of a long string?" in output
    assert "Traceback" not in output and "MemoryError" not in output
    assert seconds < 5, f"{seconds:.1f}s"
    assert peak < MAX_PEAK_MB, f"peak {peak:.0f} MB"


def test_the_twin_named_50_times_is_valid_in_little_memory_and_shares_one_string(
    tmp_path: Path, prober_cli: ProberCli
) -> None:
    path = tmp_path / "twin.yaml"
    path.write_text(_string_bomb(50))
    code, output, _, peak = _validate(prober_cli, path)
    assert code == 0, output
    assert "51 check(s) in 1 file(s) are valid" in output
    assert peak < MAX_PEAK_MB, f"peak {peak:.0f} MB"
    # Interpolated once: every check holds the very same string object, with `$$` made `$`.
    checks = load_config([path], env={}).checks
    headers: list[dict[str, str]] = [getattr(spec.model, "headers") for spec in checks]  # noqa: B009
    assert len({id(item["X-A"]) for item in headers}) == 1
    assert headers[0]["X-A"] == "a$" * 350_000


def test_an_unset_variable_in_an_aliased_string_is_reported_at_each_use(tmp_path: Path) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text(
        "checks:\n"
        "  - {name: a, type: http, url: 'http://127.0.0.1:9/', headers: {X-A: &t 'Bearer ${NO_SUCH_TOKEN}'}}\n"
        "  - {name: b, type: http, url: 'http://127.0.0.1:9/', headers: {X-A: *t}}\n"
    )
    try:
        load_config([path], env={})
    except ConfigError as exc:
        problems = [str(problem) for problem in exc.problems]
    else:
        raise AssertionError("an unset variable was accepted")
    assert len(problems) == 2, problems
    assert all("environment variable ${NO_SUCH_TOKEN} is not set" in problem for problem in problems)
    assert "check 'a'" in problems[0] and "check 'b'" in problems[1], problems


def test_a_long_variable_in_many_different_strings_is_bounded(tmp_path: Path) -> None:
    env = {"BIG": "x" * 1_000_000}
    path = tmp_path / "checks.yaml"

    def write(count: int) -> None:
        headers = ", ".join(f"X-{index}: 'v{index}-${{BIG}}'" for index in range(count))
        path.write_text(f"checks:\n  - {{name: a, type: http, url: 'http://127.0.0.1:9/', headers: {{{headers}}}}}\n")

    write(100)  # 100 distinct strings, 100 million characters once replaced
    try:
        load_config([path], env=env)
    except ConfigError as exc:
        problems = [str(problem) for problem in exc.problems]
    else:
        raise AssertionError("100 MB of replaced variables were accepted")
    assert problems == [
        f"{path}: with its ${{VAR}}s replaced, the file holds more than {MAX_CHARACTERS:,} characters"
        " (at checks[0].headers.X-67); use shorter variables or fewer of them"
    ], problems
    write(10)  # the twin: 10 MB
    assert len(load_config([path], env=env).checks) == 1
