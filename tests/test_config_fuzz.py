"""Random YAML structures and random bytes fed to `load_config`: the only outcomes are a Config or ConfigError.

Anything else (a TypeError from a list where a string was expected, a RecursionError, an OverflowError
from a huge number) would be a traceback for `prober validate` and a dead reload for the daemon.
Bounded so it runs in CI in a few seconds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prober.config.loader import ConfigError, load_config
from prober.probes import PROBES

KEYS = sorted(
    {
        "version",
        "defaults",
        "notifiers",
        "maintenance",
        "checks",
        "ingest",
        "retention",
        "status_page",
        "name",
        "type",
        "url",
        "schedule",
        "timeout",
        "retries",
        "locations",
        "alert",
        "expect",
        "warn",
        "after",
        "quorum",
        "repeat",
        "notify",
        "duration",
        "urls",
        "tokens",
        "raw",
        "rollup",
        "title",
        "headers",
        "json",
        "body",
        "host",
        "port",
        "steps",
        "click",
        "value",
        "connections",
        "segments",
        "body_matches",
        "status",
        "latency",
        "checks.database.status",
        "<<",
    }
    | {key for probe in PROBES.values() for key in probe.Config.model_fields}
)
TYPES = sorted(PROBES)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([*TYPES, "every 1s", "every 0s", "*/5 * * * *", "61 * * * *", "10s", "1e400s", "${X}", "$$"]),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers()), inner, max_size=5),
    ),
    max_leaves=25,
)


def check_like() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "name": st.one_of(st.sampled_from(["a", "b", "api-health"]), values),
            "type": st.one_of(st.sampled_from(TYPES), values),
        },
        optional={key: values for key in ("url", "schedule", "timeout", "expect", "warn", "alert", "host", "retries")},
    )


documents = st.one_of(
    values,
    st.fixed_dictionaries(
        {"checks": st.one_of(st.lists(check_like(), max_size=3), values)},
        optional={key: values for key in ("defaults", "notifiers", "maintenance", "version", "retention", "ingest")},
    ),
)


def _load(text: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "checks.yaml"
        path.write_bytes(text)
        try:
            load_config([path], env={"X": "1"})
        except ConfigError as exc:
            assert exc.problems
            for problem in exc.problems:
                assert "this is a bug in prober" not in str(problem), str(problem)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_structures_give_a_config_or_problems(document: Any) -> None:
    _load(yaml.safe_dump(document, allow_unicode=True).encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_give_a_config_or_problems(data: bytes) -> None:
    _load(data)


YAML_BITS = [
    "checks:",
    "\n  - ",
    "name: a",
    "type: http",
    "&a ",
    "*a",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "? ",
    "- ",
    "<<: ",
    "!!python/object ",
    "!!binary ",
    ".nan",
    ".inf",
    "9" * 40,
    "'",
    '"',
    "\t",
    "#",
    "\n",
    "    ",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(YAML_BITS), max_size=40))
def test_random_yaml_fragments_give_a_config_or_problems(parts: list[str]) -> None:
    _load("".join(parts).encode())


MERGES = """
base: &base {a: 1, b: [1, 2], c: {d: e}}
other: &other {a: 2, z: 26}
one: {<<: *base, b: 3}
both: {<<: [*other, *base], own: yes}
list: [*base, *base, &s hi, *s]
quoted: ['1', "2", !!str 3, ! 4, 0x1F, 1_000, 0o17, 1.5e3, .nan, -.inf, ~, null, Yes, off, 2026-12-02]
stamp: 2026-12-02T03:04:05Z
bin: !!binary aGVsbG8=
"""


def test_the_safe_reader_gives_what_pyyaml_gives_for_anchors_merges_and_tags(tmp_path: Path) -> None:
    from prober.config.yaml_reader import read_yaml

    path = tmp_path / "doc.yaml"
    path.write_text(MERGES)
    mine, theirs = read_yaml(path), yaml.safe_load(MERGES)
    assert repr(mine) == repr(theirs)  # repr: .nan != .nan
    assert mine["list"][0] is mine["list"][1], "an alias shares its anchor's object, as in PyYAML"


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.sampled_from([{}, {"default_flow_style": True}, {"default_style": '"'}]))
def test_the_safe_reader_agrees_with_pyyaml_on_random_documents(document: Any, style: dict[str, Any]) -> None:
    from prober.config.yaml_reader import YamlProblem, read_yaml

    text = yaml.safe_dump(document, allow_unicode=True, **style)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "doc.yaml"
        path.write_text(text)
        try:
            mine = read_yaml(path)
        except YamlProblem as exc:
            # Only the limits may refuse what PyYAML reads: huge numbers and deep nesting.
            assert "digits" in str(exc) or "nest" in str(exc), (text, str(exc))
            return
    assert repr(mine) == repr(yaml.safe_load(text))
