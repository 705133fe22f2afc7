"""Loading check definitions: files and directories, ${VAR} interpolation, defaults, and every validation rule.

tests/config_cases/ holds one invalid file per rule (like blackbox_exporter's config/testdata/invalid-*.yml).
Each starts with the rule as a comment and then the exact lines `prober validate` must print for it, as
`# error: ...` comments; `{file}` stands for the file's path and `{types}`, `{http_keys}`, `{default_keys}`
for lists that grow as check types and keys are added (they are built from the registry, the one source of
truth, and a separate test pins what they must contain).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from prober.config.loader import Config, ConfigError, load_config
from prober.probes import PROBES

if TYPE_CHECKING:
    from conftest import ProberCli

CASES = Path(__file__).parent / "config_cases"
REPO = Path(__file__).resolve().parents[1]


def _aliases(model: Any) -> list[str]:
    return sorted(info.alias or name for name, info in model.model_fields.items())


PLACEHOLDERS = {
    "types": ", ".join(sorted(PROBES)),
    "http_keys": ", ".join(_aliases(PROBES["http"].Config)),
    "default_keys": ", ".join(sorted({key for probe in PROBES.values() for key in _aliases(probe.Config)} - {"name"})),
}


def _expected_lines(case: Path) -> list[str]:
    lines = []
    for line in case.read_text(encoding="utf-8").splitlines():
        if line.startswith("# error: "):
            text = line.removeprefix("# error: ")
            for key, value in {**PLACEHOLDERS, "file": str(case)}.items():
                text = text.replace("{" + key + "}", value)
            lines.append(text)
    return lines


def _problems(paths: list[Path | str], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(paths, env=env or {})
    return [str(problem) for problem in caught.value.problems]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _load(tmp_path: Path, document: dict[str, Any], env: dict[str, str] | None = None) -> Config:
    path = _write(tmp_path / "checks.yaml", yaml.safe_dump(document, sort_keys=False))
    return load_config([path], env=env or {})


HTTP = {"type": "http", "url": "http://127.0.0.1:8080/health"}


# --- one file per rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES.glob("invalid-*.yaml")), ids=lambda path: path.stem)
def test_each_invalid_case_reports_exactly_its_expected_lines(case: Path) -> None:
    expected = _expected_lines(case)
    assert expected, f"{case.name} has no '# error:' line"
    assert _problems([case]) == expected


def test_there_is_a_case_for_every_rule_of_the_issue() -> None:
    names = {path.stem for path in CASES.glob("invalid-*.yaml")}
    for rule in (
        "yaml",
        "unknown-key",
        "duplicate-name",
        "duplicate-key",
        "unset-variable",
        "bad-cron",
        "unknown-type",
        "unknown-metric-expect",
        "unknown-metric-warn",
        "unknown-notifier",
        "bad-duration",
        "bad-regex",
    ):
        assert f"invalid-{rule}" in names


def test_the_placeholder_lists_hold_what_the_spec_promises() -> None:
    http_keys = PLACEHOLDERS["http_keys"].split(", ")
    for key in ("url", "method", "headers", "body", "json", "follow_redirects", "verify_tls", "max_body", "timeout"):
        assert key in http_keys
    assert "json_body" not in http_keys, "the YAML key is `json`; the Python attribute name must not leak"
    assert "http" in PLACEHOLDERS["types"].split(", ")
    assert "json" in PLACEHOLDERS["default_keys"].split(", ")


async def test_validate_prints_one_line_per_problem_and_exits_2(prober_cli: ProberCli) -> None:
    case = CASES / "invalid-four-problems.yaml"
    process = await asyncio.create_subprocess_exec(
        *prober_cli.argv("validate", case),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=prober_cli.env({"COLUMNS": "80"}),
        cwd=REPO,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 2
    assert stdout == b""
    lines = stderr.decode().splitlines()
    expected = _expected_lines(case)
    assert len(expected) == 4
    assert lines == [*expected, "4 problem(s) found."]
    assert any("unknown key 'timout'" in line for line in lines)
    assert any("duplicate check name" in line for line in lines)
    assert any("${PROBER_TEST_SEARCH_TOKEN} is not set" in line for line in lines)
    assert any("invalid cron expression '0 25 * * *'" in line for line in lines)


async def test_validate_accepts_the_shipped_examples(prober_cli: ProberCli) -> None:
    process = await asyncio.create_subprocess_exec(
        *prober_cli.argv("validate", "checks/"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=prober_cli.env(),
        cwd=REPO,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert stdout.decode().endswith("are valid.\n")


def test_problems_from_several_files_are_all_reported_at_once(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.yaml", "checks:\n  - {name: one, type: http, url: 'http://x/', colour: red}\n")
    second = _write(tmp_path / "b.yaml", "checks:\n  - {name: two, type: http, url: 'http://x/', timeout: soon}\n")
    problems = _problems([first, second])
    assert len(problems) == 2
    assert problems[0].startswith(f"{first}: check 'one': field 'colour': unknown key 'colour'")
    assert problems[1].startswith(f"{second}: check 'two': field 'timeout': expected a duration")


def test_a_duplicate_name_in_another_file_names_the_first_file(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.yaml", "checks:\n  - {name: api, type: http, url: 'http://x/'}\n")
    second = _write(tmp_path / "b.yaml", "checks:\n  - {name: api, type: http, url: 'http://y/'}\n")
    assert _problems([tmp_path]) == [
        f"{second}: check 'api': field 'name': duplicate check name; it is already defined in {first}"
    ]


def test_a_duplicate_is_reported_even_when_the_first_copy_is_invalid(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "checks.yaml",
        "checks:\n  - {name: api, type: http, url: 'http://x/', timeout: soon}\n"
        "  - {name: api, type: http, url: 'http://y/'}\n",
    )
    problems = _problems([path])
    assert len(problems) == 2
    assert "duplicate check name" in problems[1]


def test_an_unset_variable_in_defaults_is_reported_once_not_per_check(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "checks.yaml",
        "defaults: {timeout: '${PROBER_T}'}\n"
        "checks:\n  - {name: a, type: http, url: 'http://x/'}\n  - {name: b, type: http, url: 'http://y/'}\n",
    )
    assert _problems([path]) == [
        f"{path}: field 'defaults.timeout': environment variable ${{PROBER_T}} is not set "
        "(set it, or write ${PROBER_T:-default})"
    ]


def test_json_is_accepted_as_a_key_of_a_check_and_of_defaults(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        {
            "defaults": {"json": {"q": "status"}},
            "checks": [
                {"name": "inherits", **HTTP, "method": "POST"},
                {"name": "own", **HTTP, "method": "POST", "json": {"q": "mine"}},
            ],
        },
    )
    inherits, own = config.checks
    assert inherits.model.json_body == {"q": "status"}  # type: ignore[attr-defined]
    assert own.model.json_body == {"q": "mine"}  # type: ignore[attr-defined]


def test_an_empty_file_is_valid_and_has_no_checks(tmp_path: Path) -> None:
    assert load_config([_write(tmp_path / "empty.yaml", "")], env={}).checks == []


def test_a_file_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "list.yaml", "- name: api\n")
    assert _problems([path]) == [f"{path}: expected a mapping with 'checks:' at the top, got list"]


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.yaml", "version: 1\nchecks:\n  - name: 'unterminated\n")
    assert _problems([path]) == [f"{path}: invalid YAML at line 4, column 1: found unexpected end of stream"]


def test_yaml_anchors_and_merge_keys_still_work(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "anchors.yaml",
        "checks:\n  - &first {name: a, type: http, url: 'http://x/', timeout: 3s}\n  - {<<: *first, name: b}\n",
    )
    a, b = load_config([path], env={}).checks
    assert (b.name, b.model.timeout, b.model.url) == ("b", 3.0, "http://x/")  # type: ignore[attr-defined]
    assert a.name == "a"


# --- interpolation --------------------------------------------------------------------------------------


def test_variables_are_replaced_from_the_environment(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        {
            "checks": [
                {"name": "api", "type": "http", "url": "${BASE}/health", "headers": {"Authorization": "Bearer ${T}"}}
            ]
        },
        env={"BASE": "https://api.internal", "T": "s3cret"},
    )
    model = config.checks[0].model
    assert model.url == "https://api.internal/health"  # type: ignore[attr-defined]
    assert model.headers == {"Authorization": "Bearer s3cret"}  # type: ignore[attr-defined]


def test_a_default_is_used_only_when_the_variable_is_unset(tmp_path: Path) -> None:
    document = {"checks": [{"name": "api", "type": "http", "url": "${BASE:-http://127.0.0.1:9}/health"}]}
    unset = _load(tmp_path, document, env={})
    assert unset.checks[0].model.url == "http://127.0.0.1:9/health"  # type: ignore[attr-defined]
    present = _load(tmp_path, document, env={"BASE": "https://api.internal"})
    assert present.checks[0].model.url == "https://api.internal/health"  # type: ignore[attr-defined]


def test_an_empty_default_is_allowed(tmp_path: Path) -> None:
    config = _load(tmp_path, {"checks": [{"name": "api", **HTTP, "headers": {"X-Tag": "a${SUFFIX:-}b"}}]})
    assert config.checks[0].model.headers == {"X-Tag": "ab"}  # type: ignore[attr-defined]


def test_a_double_dollar_is_a_literal_dollar(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        {"checks": [{"name": "api", **HTTP, "headers": {"X-Price": "$$5", "X-Template": "$${NOT_A_VAR}"}}]},
        env={"NOT_A_VAR": "replaced"},
    )
    assert config.checks[0].model.headers == {"X-Price": "$5", "X-Template": "${NOT_A_VAR}"}  # type: ignore[attr-defined]


def test_variables_work_in_lists_defaults_and_notifiers(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        {
            "defaults": {"timeout": "${TIMEOUT}", "locations": ["${SITE}"]},
            "notifiers": {"oncall": {"urls": ["${HOOK}"]}},
            "checks": [{"name": "api", **HTTP}],
        },
        env={"TIMEOUT": "3s", "SITE": "eu-west", "HOOK": "json://127.0.0.1:8099/hook"},
    )
    model = config.checks[0].model
    assert model.timeout == 3.0
    assert model.locations == ["eu-west"]
    assert config.notifiers["oncall"].urls == ["json://127.0.0.1:8099/hook"]


def test_a_number_from_a_variable_is_read_as_a_number(tmp_path: Path) -> None:
    config = _load(tmp_path, {"checks": [{"name": "api", **HTTP, "retries": "${RETRIES:-2}"}]})
    assert config.checks[0].model.retries == 2


# --- defaults -------------------------------------------------------------------------------------------


def test_defaults_apply_to_every_check_and_a_checks_own_keys_win(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        {
            "defaults": {"timeout": "5s", "retries": 1, "schedule": "every 30s", "locations": ["eu-west"]},
            "checks": [{"name": "plain", **HTTP}, {"name": "own", **HTTP, "timeout": "2s", "locations": ["us-east"]}],
        },
    )
    plain, own = (spec.model for spec in config.checks)
    assert (plain.timeout, plain.retries, plain.schedule.text, plain.locations) == (5.0, 1, "every 30s", ["eu-west"])
    assert (own.timeout, own.retries, own.schedule.text, own.locations) == (2.0, 1, "every 30s", ["us-east"])


def test_alert_is_merged_key_by_key(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        {
            "defaults": {"alert": {"after": 3, "quorum": 2, "notify": ["oncall"]}},
            "notifiers": {"oncall": {"urls": ["json://127.0.0.1:8099/hook"]}},
            "checks": [{"name": "api", **HTTP, "alert": {"after": 5}}],
        },
    )
    alert = config.checks[0].model.alert
    assert (alert.after, alert.quorum, alert.notify, alert.recover_after) == (5, 2, ["oncall"], 1)


def test_without_defaults_the_documented_defaults_hold(tmp_path: Path) -> None:
    model = _load(tmp_path, {"checks": [{"name": "api", **HTTP}]}).checks[0].model
    assert (model.timeout, model.retries, model.locations, model.schedule.text) == (10.0, 0, ["default"], "every 1m")
    assert model.method == "GET"  # type: ignore[attr-defined]
    assert model.follow_redirects is True  # type: ignore[attr-defined]
    assert model.verify_tls is True  # type: ignore[attr-defined]
    assert model.max_body == 1024 * 1024  # type: ignore[attr-defined]
    assert [
        (c.metric, c.condition.text)
        for c in _load(tmp_path, {"checks": [{"name": "api", **HTTP}]}).checks[0].conditions
    ] == [("status", "2xx")]


def test_a_type_may_come_from_defaults_but_a_name_may_not(tmp_path: Path) -> None:
    config = _load(tmp_path, {"defaults": {"type": "http"}, "checks": [{"name": "api", "url": "http://x/"}]})
    assert config.checks[0].type == "http"
    path = _write(
        tmp_path / "named.yaml", "defaults: {name: shared}\nchecks:\n  - {name: api, type: http, url: 'http://x/'}\n"
    )
    (problem,) = _problems([path])
    assert problem.startswith(f"{path}: field 'defaults.name': unknown key 'name' in defaults; valid keys: ")


def test_defaults_keys_of_other_check_types_do_not_break_a_check(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        {
            "defaults": {"verify_tls": False, "port": 8443},
            "checks": [{"name": "web", **HTTP}, {"name": "cert", "type": "tls", "host": "127.0.0.1"}],
        },
    )
    web, cert = (spec.model for spec in config.checks)
    assert web.verify_tls is False  # type: ignore[attr-defined]
    assert cert.port == 8443  # type: ignore[attr-defined]


def test_notifiers_from_another_file_can_be_named(tmp_path: Path) -> None:
    _write(tmp_path / "a-notifiers.yaml", "notifiers:\n  oncall: {urls: ['json://127.0.0.1:8099/hook']}\n")
    _write(
        tmp_path / "b-checks.yaml",
        "checks:\n  - {name: api, type: http, url: 'http://x/', alert: {notify: [oncall]}}\n",
    )
    config = load_config([tmp_path], env={})
    assert config.checks[0].model.alert.notify == ["oncall"]


# --- files and directories ------------------------------------------------------------------------------


def test_a_directory_loads_every_yaml_and_yml_file_below_it_sorted(tmp_path: Path) -> None:
    _write(tmp_path / "b.yml", "checks:\n  - {name: b, type: http, url: 'http://x/'}\n")
    _write(tmp_path / "a.yaml", "checks:\n  - {name: a, type: http, url: 'http://x/'}\n")
    _write(tmp_path / "sub" / "c.yaml", "checks:\n  - {name: c, type: http, url: 'http://x/'}\n")
    _write(tmp_path / "notes.txt", "checks: [this is not read]\n")
    _write(tmp_path / "d.json", "{}")
    config = load_config([tmp_path], env={})
    assert config.files == [str(tmp_path / "a.yaml"), str(tmp_path / "b.yml"), str(tmp_path / "sub" / "c.yaml")]
    assert [spec.name for spec in config.checks] == ["a", "b", "c"]
    assert config.checks[2].source == str(tmp_path / "sub" / "c.yaml")


def test_files_and_directories_can_be_mixed(tmp_path: Path) -> None:
    single = _write(tmp_path / "single.yaml", "checks:\n  - {name: single, type: http, url: 'http://x/'}\n")
    _write(tmp_path / "dir" / "x.yaml", "checks:\n  - {name: x, type: http, url: 'http://x/'}\n")
    config = load_config([tmp_path / "dir", single], env={})
    assert [spec.name for spec in config.checks] == ["x", "single"]


def test_a_file_named_twice_is_read_once(tmp_path: Path) -> None:
    path = _write(tmp_path / "api.yaml", "checks:\n  - {name: api, type: http, url: 'http://x/'}\n")
    config = load_config([tmp_path, path, tmp_path / "." / "api.yaml"], env={})
    assert [spec.name for spec in config.checks] == ["api"]
    assert config.files == [str(path)]


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    assert _problems([missing]) == [f"{missing}: no such file or directory"]


def test_a_directory_without_definitions_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert _problems([tmp_path / "empty"]) == [f"{tmp_path / 'empty'}: no *.yaml or *.yml files in this directory"]


# --- selection ------------------------------------------------------------------------------------------


def test_select_filters_by_name_globs_and_location(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        {
            "checks": [
                {"name": "api-health", **HTTP},
                {"name": "api-ready", **HTTP, "locations": ["eu-west"]},
                {"name": "web", **HTTP, "locations": ["default", "eu-west"]},
            ]
        },
    )
    assert [s.name for s in config.select()] == ["api-health", "api-ready", "web"]
    assert [s.name for s in config.select(names=["api-*"])] == ["api-health", "api-ready"]
    assert [s.name for s in config.select(names=["web", "api-h*"])] == ["api-health", "web"]
    assert [s.name for s in config.select(location="eu-west")] == ["api-ready", "web"]
    assert [s.name for s in config.select(names=["api-*"], location="eu-west")] == ["api-ready"]
    assert config.select(names=["nothing*"]) == []


def test_status_page_title_is_read_and_its_unknown_keys_are_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("status_page: {title: Acme status}\nchecks: []\n")
    assert load_config([good]).status_page.title == "Acme status"
    bad = tmp_path / "bad.yaml"
    bad.write_text("status_page: {titel: Acme}\nchecks: []\n")
    with pytest.raises(ConfigError) as caught:
        load_config([bad])
    (problem,) = caught.value.problems
    assert str(problem) == f"{bad}: field 'status_page.titel': unknown key 'titel'; valid keys: title, url"
