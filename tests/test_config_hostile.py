"""Hostile check files: each is one problem line (exit 2 from `prober validate`), never a traceback or a hang.

Every case has its healthy twin beside it, so a limit that refuses good files fails here too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from prober.config.loader import ConfigError, load_config
from prober.config.yaml_reader import MAX_DEPTH, MAX_FILE_BYTES

if TYPE_CHECKING:
    from conftest import ProberCli

CHECK = "checks:\n  - name: a\n    type: http\n    url: http://127.0.0.1:9/\n"

BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{chr(98 + level)}: &{chr(98 + level)} [" + ",".join([f"*{chr(97 + level)}"] * 9) + "]"
            for level in range(8)
        ),
        "checks: []",
    ]
)


def _problems(tmp_path: Path, text: str | bytes, name: str = "checks.yaml") -> list[str]:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    try:
        load_config([path])
    except ConfigError as exc:
        return [str(problem) for problem in exc.problems]
    return []


def test_the_alias_bomb_is_refused_at_once_with_a_sentence(tmp_path: Path) -> None:
    assert len(BOMB) < 600
    started = time.perf_counter()
    problems = _problems(tmp_path, BOMB)
    assert time.perf_counter() - started < 2.0
    assert len(problems) == 1
    assert "with its aliases expanded, the file holds more than 1,000,000 values" in problems[0]
    assert "alias bomb" in problems[0]


def test_ordinary_anchors_and_merge_keys_are_fine(tmp_path: Path) -> None:
    checks = "".join(
        f"  - <<: *common\n    name: c{index}\n    url: http://127.0.0.1:9/{index}\n    headers: *h\n"
        for index in range(300)
    )
    # The anchored first check is a check of its own; the other 300 merge it and share its headers map.
    text = (
        "status_page: {title: &t Status}\n"
        "checks:\n"
        "  - &common {name: base, type: http, url: 'http://127.0.0.1:9/', timeout: 5s, group: *t,"
        " headers: &h {X-A: '1'}}\n" + checks
    )
    assert _problems(tmp_path, text) == []
    config = load_config([tmp_path / "checks.yaml"])
    assert len(config.checks) == 301
    assert all(spec.model.timeout == 5.0 for spec in config.checks)


def test_an_alias_used_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "checks: &a [*a]\n")
    assert problems == [
        f"{tmp_path / 'checks.yaml'}: the alias *a at line 1, column 13 refers to a node that contains it"
    ]


def test_deep_nesting_is_refused_and_shallow_nesting_is_fine(tmp_path: Path) -> None:
    deep = _problems(tmp_path, "checks: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert len(deep) == 1 and "nest" in deep[0]
    block = "checks: []\nretention:\n" + "".join("  " * depth + f"k{depth}:\n" for depth in range(1, MAX_DEPTH + 10))
    assert "nest more than 64 deep" in _problems(tmp_path, block)[0]
    fine = CHECK + "    json: " + "[" * 20 + "1" + "]" * 20 + "\n"
    assert _problems(tmp_path, fine) == []


def test_a_file_over_8_mib_is_refused_without_being_parsed(tmp_path: Path) -> None:
    big = CHECK + "#" + "x" * MAX_FILE_BYTES + "\n"
    assert _problems(tmp_path, big) == [
        f"{tmp_path / 'checks.yaml'}: the file is larger than 8 MiB; split it into several files"
    ]
    assert _problems(tmp_path, CHECK + "#" + "x" * (1 << 20) + "\n") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CHECK.replace("type: http", "type: [http]"), "field 'type': unknown check type ['http']"),
        ("maintenance: 5\nchecks: []\n", "field 'maintenance': expected a list of maintenance windows"),
        (CHECK + "    ? [a, b]\n    : 1\n", "a key must be a plain value, not a list or a mapping"),
        (CHECK + "    ? {a: 1}\n    : 1\n", "a key must be a plain value, not a list or a mapping"),
        (CHECK + "    retries: " + "9" * 300 + "\n", "a number with 300 digits is too large (at most 30)"),
        (CHECK + "    max_redirects: " + "9" * 5000 + "\n", "a number with 5000 digits is too large"),
        (CHECK + "    timeout: .nan\n", "field 'timeout': expected a duration"),
        (CHECK + "    timeout: .inf\n", "field 'timeout': a duration must be finite"),
        (CHECK + "    timeout: -.inf\n", "field 'timeout'"),
        (CHECK + "    timeout: 2h\n", "field 'timeout': timeout must be at most 1h, got 2h"),
        (CHECK + "    schedule: every 400d\n", "an 'every' interval must be at most 365d"),
        (CHECK + "    schedule: every " + "9" * 300 + "s\n", "field 'schedule': bad interval in 'every 9999"),
        (CHECK + "    alert: {repeat: 400d}\n", "field 'alert.repeat'"),
        (
            "maintenance:\n  - {name: w, schedule: '0 3 * * *', duration: .inf}\nchecks: []\n",
            "field 'maintenance[0].duration': a duration must be finite",
        ),
        (
            "maintenance:\n  - {name: w, schedule: '0 3 * * *', duration: 31d}\nchecks: []\n",
            "a maintenance window must last at most 30d, got 31d",
        ),
        (
            "checks:\n  - name: a\n    type: http\n    url: http://127.0.0.1:9/\n    name: b\n",
            "the key 'name' appears twice",
        ),
        (b"checks: []\n\xff\xfe garbage\n", "the file is not UTF-8 text"),
        (b"checks: []\x00\n", "the file is not text: it holds a NUL byte"),
        ("checks: [\n", "invalid YAML at line"),
        ("checks: *nowhere\n", "names no anchor defined before it"),
    ],
)
def test_each_malformed_file_is_one_problem_line(tmp_path: Path, text: str | bytes, expected: str) -> None:
    problems = _problems(tmp_path, text)
    assert problems, "the hostile file was accepted"
    assert any(expected in problem for problem in problems), problems
    assert all("\n" not in problem and len(problem) < 400 for problem in problems), problems


@pytest.mark.parametrize(
    "twin",
    [
        CHECK + "    retries: 3\n",
        CHECK + "    timeout: 1h\n",
        CHECK + "    timeout: 250ms\n",
        CHECK + "    schedule: every 365d\n",
        CHECK + "    alert: {repeat: 1h}\n",
        "maintenance:\n  - {name: w, schedule: '0 3 * * *', duration: 30d}\nchecks: []\n",
        CHECK + "    json: {big: 123456789012345678901234567890}\n",
        CHECK + "    expect: {json: {'n': 1.5e300}}\n",
    ],
)
def test_the_healthy_twins_are_accepted(tmp_path: Path, twin: str) -> None:
    assert _problems(tmp_path, twin) == []


def test_validate_exits_2_with_problem_lines_and_no_traceback(tmp_path: Path, prober_cli: ProberCli) -> None:
    cases = {
        "bomb.yaml": BOMB,
        "deep.yaml": "checks: " + "[" * 50_000 + "]" * 50_000 + "\n",
        "typelist.yaml": CHECK.replace("a\n", "t\n", 1).replace("type: http", "type: [http]"),
        "nan.yaml": CHECK.replace("name: a", "name: n") + "    timeout: .nan\n",
        "bignum.yaml": CHECK.replace("name: a", "name: b") + "    schedule: every " + "9" * 300 + "\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    started = time.perf_counter()
    run = prober_cli.run("validate", tmp_path)
    assert time.perf_counter() - started < 30
    assert run.returncode == 2, run.stderr
    output = run.stdout + run.stderr
    assert "Traceback" not in output
    for name in cases:
        assert name in output


def test_a_bad_regex_names_the_field_and_says_why(tmp_path: Path) -> None:
    back = _problems(tmp_path, CHECK + "    expect: {body_matches: '(a)\\1'}\n")
    assert back == [
        f"{tmp_path / 'checks.yaml'}: check 'a': field 'expect.body_matches': invalid regular expression "
        "'(a)\\\\1': back-references (\\1, \\2 …) are not supported: prober runs every regex in linear time (RE2)"
    ]
    look = _problems(tmp_path, CHECK + "    warn: {body_matches: 'foo(?=bar)'}\n")
    assert len(look) == 1 and "look-ahead and look-behind" in look[0] and "field 'warn.body_matches'" in look[0]
    assert _problems(tmp_path, CHECK + "    expect: {body_matches: '(?i)^ok\\s+\\d{3}$'}\n") == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://user:s3cr3t-pass@127.0.0.1:99999/", "Port out of range"),
        ("http://user:s3cr3t-pass@127.0.0.1:port/", "Port could not be cast"),
        ("http://user:s3cr3t-pass@/health", "has no host"),
        ("ftp://user:s3cr3t-pass@127.0.0.1/", "expected an http:// or https:// URL"),
    ],
)
def test_a_bad_url_is_a_problem_line_that_masks_its_password(tmp_path: Path, url: str, expected: str) -> None:
    for check_type in ("http", "hls", "browser"):
        text = f"checks:\n  - name: a\n    type: {check_type}\n    url: '{url}'\n"
        problems = _problems(tmp_path, text)
        assert len(problems) == 1 and expected in problems[0], problems
        assert "field 'url'" in problems[0]
        assert "s3cr3t-pass" not in problems[0], problems[0]
