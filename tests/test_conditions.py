"""The expect/warn condition language: parsing, evaluation, JSON paths, verdicts (with hypothesis properties)."""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prober.config.conditions import (
    MISSING,
    ConditionError,
    MetricSpec,
    compile_conditions,
    judge,
    lookup_path,
    parse_condition,
)

SPECS = {
    spec.name: spec
    for spec in (
        MetricSpec("status", "HTTP status"),
        MetricSpec("latency", "total time", unit="s"),
        MetricSpec("body_size", "bytes", unit="bytes"),
        MetricSpec("connected", "a flag value"),
        MetricSpec("body_contains", "text in the body", kind="contains", subject="body"),
        MetricSpec("body_matches", "regex in the body", kind="matches", subject="body"),
        MetricSpec("json", "paths into JSON", kind="paths", subject="json"),
        MetricSpec("headers", "headers", kind="paths", subject="headers", case_insensitive_paths=True),
    )
}
READINESS = {"status": "healthy", "checks": {"database": {"status": "healthy", "latency_ms": 5}}}


def _verdict(expect: dict[str, Any], metrics: dict[str, Any], subjects: dict[str, Any] | None = None, **kw: Any) -> Any:
    conditions, errors = compile_conditions(expect, kw.get("warn", {}), SPECS, kw.get("default_expect"))
    assert errors == []
    return judge(conditions, metrics, subjects or {})


# --- values ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "actual", "expected"),
    [
        (200, 200, True),
        (200, 503, False),
        ("healthy", "healthy", True),
        ("healthy", "unhealthy", False),
        (True, True, True),
        (True, 1, False),
        (False, False, True),
        ("true", True, True),
        (None, None, True),
        (None, "null", False),
        (5, "5", True),
        ("200", 200, True),
        (0, False, False),
    ],
)
def test_a_plain_value_means_equality(condition: Any, actual: Any, expected: bool) -> None:
    assert parse_condition(condition).test(actual) is expected


@pytest.mark.parametrize(
    ("condition", "actual", "expected"),
    [
        ("< 2s", 1.999, True),
        ("< 2s", 2.0, False),
        ("< 800ms", 0.799, True),
        ("< 800ms", 0.8, False),
        ("<= 800ms", 0.8, True),
        ("> 1m", 61, True),
        ("> 1m", 60, False),
        (">= 14", 14, True),
        (">= 14", 13.99, False),
        (">=14", 20, True),
        ("== 0", 0, True),
        ("!= 0", 0, False),
        ("!= 0", 3, True),
        ("== up", "up", True),
        ("== up", "down", False),
        ("!= up", "down", True),
        ("< 100", "42", True),
        ("< 100", "many", False),
        ("< 100", None, False),
        ("< 100", True, False),
        ("> 2h", 7201, True),
        ("< 14d", 13 * 86400, True),
        ("< 1.5", 1.25, True),
        ("> -5", -4, True),
    ],
)
def test_operators_compare_numbers_and_durations(condition: str, actual: Any, expected: bool) -> None:
    assert parse_condition(condition).test(actual) is expected


@pytest.mark.parametrize(
    ("condition", "actual", "expected"),
    [
        ("2xx", 200, True),
        ("2xx", 299, True),
        ("2xx", 301, False),
        ("5XX", 503, True),
        ("3xx", 302, True),
        ("2xx", "200", False),
        ("2xx", None, False),
    ],
)
def test_a_status_class_matches_its_hundred(condition: str, actual: Any, expected: bool) -> None:
    assert parse_condition(condition).test(actual) is expected


@pytest.mark.parametrize(
    ("condition", "actual", "expected"),
    [
        ([200, 204], 204, True),
        ([200, 204], 201, False),
        (["2xx", 304], 304, True),
        (["2xx", 304], 302, False),
        (["healthy", "degraded"], "degraded", True),
        (["< 1s", "> 1h"], 7200, True),
        (["< 1s", "> 1h"], 60, False),
    ],
)
def test_a_list_matches_any_of_its_conditions(condition: list[Any], actual: Any, expected: bool) -> None:
    assert parse_condition(condition).test(actual) is expected


def test_conditions_keep_the_text_they_were_written_with() -> None:
    assert parse_condition("< 2s").text == "< 2s"
    assert parse_condition(">=14").text == ">= 14"
    assert parse_condition("2XX").text == "2xx"
    assert parse_condition([200, "3xx"]).text == "200 | 3xx"
    assert parse_condition(True).text == "true"
    assert parse_condition(None).text == "null"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "an empty list matches nothing"),
        ({"a": 1}, "got a mapping"),
        ("<", "needs a value after it"),
        ("< fast", "compares numbers or durations"),
        (">= 2 parsecs", "compares numbers or durations"),
        ([200, {"x": 1}], "got a mapping"),
    ],
)
def test_malformed_conditions_raise_condition_error_saying_what_was_expected(raw: Any, message: str) -> None:
    with pytest.raises(ConditionError, match=message):
        parse_condition(raw)


# --- properties -----------------------------------------------------------------------------------------

OPERATORS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
# Operands are read as floats, so integers are kept where floats are exact (|n| <= 2**53).
numbers = st.integers(min_value=-(2**53), max_value=2**53) | st.floats(allow_nan=False, allow_infinity=False)


@given(a=numbers, b=numbers, op=st.sampled_from(sorted(OPERATORS)))
def test_operators_agree_with_python_comparisons(a: float, b: float, op: str) -> None:
    assert parse_condition(f"{op} {b}").test(a) is OPERATORS[op](a, b)


@given(a=numbers, b=numbers)
def test_equal_and_greater_never_both_hold(a: float, b: float) -> None:
    holds = [parse_condition(f"{op} {b}").test(a) for op in ("<", "==", ">")]
    assert sum(holds) == 1


@given(text=st.text(max_size=40))
def test_parse_condition_raises_only_condition_error_on_arbitrary_text(text: str) -> None:
    try:
        condition = parse_condition(text)
    except ConditionError:
        return
    condition.test(text)
    condition.test(1.5)
    condition.test(None)


@given(
    prefix=st.sampled_from(["", "<", "<=", ">", ">=", "==", "!=", "< ", ">= "]),
    body=st.text(alphabet="0123456789.smhdwx -+eE", max_size=12),
)
def test_parse_condition_raises_only_condition_error_on_operator_like_text(prefix: str, body: str) -> None:
    with contextlib.suppress(ConditionError):
        parse_condition(prefix + body)


json_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
json_keys = st.text(
    alphabet=st.characters(blacklist_characters=".", blacklist_categories=["Cs"]), min_size=1, max_size=6
)
json_documents = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4),
    max_leaves=12,
)


def _leaves(document: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _leaves(value, (*path, str(index)))
    else:
        yield ".".join(path), document


@settings(deadline=None)
@given(
    document=st.dictionaries(json_keys, json_documents, min_size=1, max_size=4) | st.lists(json_documents, min_size=1)
)
def test_lookup_path_finds_every_leaf_of_a_json_document(document: Any) -> None:
    for path, leaf in _leaves(document):
        found = lookup_path(document, path)
        assert found is not MISSING, path
        assert found == leaf or (found is leaf), path


# --- JSON paths -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "path", "expected"),
    [
        (READINESS, "status", "healthy"),
        (READINESS, "checks.database.status", "healthy"),
        (READINESS, "checks.database.latency_ms", 5),
        ({"items": [{"id": 7}, {"id": 9}]}, "items.0.id", 7),
        ({"items": [{"id": 7}, {"id": 9}]}, "items.1.id", 9),
        ({"items": [{"id": 7}]}, "items.2.id", MISSING),
        ({"items": [{"id": 7}]}, "items.first.id", MISSING),
        (READINESS, "checks.cache.status", MISSING),
        (READINESS, "status.deeper", MISSING),
        ({"value": None}, "value", None),
        ([[1, 2], [3, 4]], "1.0", 3),
    ],
)
def test_lookup_path_follows_dotted_paths(document: Any, path: str, expected: Any) -> None:
    assert lookup_path(document, path) == expected or lookup_path(document, path) is expected


def test_a_present_null_is_distinct_from_a_missing_path() -> None:
    assert lookup_path({"value": None}, "value") is None
    assert lookup_path({"value": None}, "other") is MISSING


def test_header_paths_ignore_case() -> None:
    headers = {"Content-Type": "text/html", "X-Custom": "abc"}
    assert lookup_path(headers, "content-type", case_insensitive=True) == "text/html"
    assert lookup_path(headers, "X-CUSTOM", case_insensitive=True) == "abc"
    assert lookup_path(headers, "x-missing", case_insensitive=True) is MISSING


# --- compile and judge ----------------------------------------------------------------------------------


def test_all_passing_conditions_are_up_with_an_assertion_each() -> None:
    verdict = _verdict(
        {"status": 200, "latency": "< 2s", "json": {"checks.database.status": "healthy", "status": "healthy"}},
        {"status": 200, "latency": 0.0417},
        {"json": READINESS},
    )
    assert verdict.status == "up"
    assert verdict.error is None
    assert [(a.metric, a.condition, a.actual, a.ok, a.level) for a in verdict.assertions] == [
        ("status", "200", 200, True, "expect"),
        ("latency", "< 2s", 0.0417, True, "expect"),
        ("json.checks.database.status", "healthy", "healthy", True, "expect"),
        ("json.status", "healthy", "healthy", True, "expect"),
    ]


def test_a_failed_expect_is_down_with_a_sentence_holding_the_actual_value() -> None:
    verdict = _verdict({"status": "2xx"}, {"status": 503})
    assert verdict.status == "down"
    assert verdict.error == "status was 503, expected 2xx"


def test_a_failed_duration_expect_shows_the_actual_time_readably() -> None:
    verdict = _verdict({"latency": "< 2s"}, {"latency": 2.5})
    assert verdict.error == "latency was 2.5s, expected < 2s"
    verdict = _verdict({"latency": "< 100ms"}, {"latency": 0.25})
    assert verdict.error == "latency was 250ms, expected < 100ms"


def test_several_failed_expects_name_the_first_and_count_the_rest() -> None:
    verdict = _verdict(
        {"status": 200, "latency": "< 1s", "body_size": "> 0"}, {"status": 500, "latency": 3.0, "body_size": 0}
    )
    assert verdict.status == "down"
    assert verdict.error == "status was 500, expected 200; and 2 more failed"


def test_a_failed_warn_only_is_degraded() -> None:
    verdict = _verdict({"status": 200}, {"status": 200, "latency": 0.9}, warn={"latency": "< 800ms"})
    assert verdict.status == "degraded"
    assert verdict.error == "warning: latency was 900ms, expected < 800ms"
    assert [(a.metric, a.ok, a.level) for a in verdict.assertions] == [
        ("status", True, "expect"),
        ("latency", False, "warn"),
    ]


def test_a_failed_expect_wins_over_a_failed_warn() -> None:
    verdict = _verdict({"status": 200}, {"status": 500, "latency": 0.9}, warn={"latency": "< 800ms"})
    assert verdict.status == "down"
    assert verdict.error == "status was 500, expected 200"


def test_a_metric_that_was_not_measured_fails_its_condition() -> None:
    verdict = _verdict({"latency": "< 2s"}, {})
    assert verdict.status == "down"
    assert verdict.error == "latency was not measured (expected < 2s)"


def test_a_json_path_failure_names_the_path_and_the_actual_value() -> None:
    sick = {"checks": {"database": {"status": "unhealthy"}}}
    verdict = _verdict({"json": {"checks.database.status": "healthy"}}, {}, {"json": sick})
    assert verdict.status == "down"
    assert verdict.error == "json.checks.database.status was 'unhealthy', expected healthy"
    assert verdict.assertions[0].actual == "unhealthy"


def test_a_json_condition_without_a_json_body_fails() -> None:
    verdict = _verdict({"json": {"status": "healthy"}}, {}, {})
    assert verdict.status == "down"
    assert verdict.error == "json.status: no json to check (expected healthy)"


def test_contains_finds_text_and_any_of_a_list() -> None:
    body = "<title>Shop</title><p>In stock</p>"
    assert _verdict({"body_contains": "In stock"}, {}, {"body": body}).status == "up"
    assert _verdict({"body_contains": ["Sold out", "In stock"]}, {}, {"body": body}).status == "up"
    verdict = _verdict({"body_contains": "Sold out"}, {}, {"body": body})
    assert verdict.status == "down"
    assert verdict.error == "body does not contain 'Sold out'"


def test_matches_searches_a_regular_expression() -> None:
    body = "build 2024.11.3 ok"
    assert _verdict({"body_matches": r"build \d+\.\d+\.\d+"}, {}, {"body": body}).status == "up"
    verdict = _verdict({"body_matches": r"^ok$"}, {}, {"body": body})
    assert verdict.status == "down"
    assert verdict.error == "body does not match /^ok$/"


def test_default_expectations_apply_unless_the_check_names_the_metric() -> None:
    defaults = {"status": "2xx"}
    conditions, _ = compile_conditions({}, {}, SPECS, defaults)
    assert [(c.metric, c.condition.text) for c in conditions] == [("status", "2xx")]
    conditions, _ = compile_conditions({"status": 503}, {}, SPECS, defaults)
    assert [(c.metric, c.condition.text) for c in conditions] == [("status", "503")]


def test_every_bad_json_path_is_reported_under_its_own_field() -> None:
    _, errors = compile_conditions({"json": {"a": "<", "b": "ok", "c.d": ">= soon"}}, {}, SPECS)
    assert errors == [
        ("expect.json.a", "operator '<' needs a value after it, like '< 2s'"),
        ("expect.json.c.d", "'>=' compares numbers or durations, got 'soon'; write e.g. '>= 2s' or '>= 14'"),
    ]


def test_unknown_metrics_in_expect_and_warn_are_errors_listing_the_valid_ones() -> None:
    _, errors = compile_conditions({"stauts": 200}, {"latnecy": "< 1s"}, SPECS)
    valid = "body_contains, body_matches, body_size, connected, headers, json, latency, status"
    assert errors == [
        ("expect.stauts", f"unknown metric 'stauts'; valid metrics: {valid}"),
        ("warn.latnecy", f"unknown metric 'latnecy'; valid metrics: {valid}"),
    ]


@pytest.mark.parametrize(
    ("expect", "field", "message"),
    [
        ({"body_matches": "(unclosed"}, "expect.body_matches", "invalid regular expression '(unclosed'"),
        ({"body_matches": 5}, "expect.body_matches", "expected a regular expression string"),
        ({"body_contains": {"a": 1}}, "expect.body_contains", "expected text or a list of texts"),
        ({"json": "healthy"}, "expect.json", "expected a mapping of paths to conditions"),
        ({"json": {"status": "<"}}, "expect.json.status", "operator '<' needs a value after it"),
        ({"headers": {"X-A": {"b": 1}}}, "expect.headers.X-A", "got a mapping"),
        ({"latency": "< soon"}, "expect.latency", "'<' compares numbers or durations"),
    ],
)
def test_bad_conditions_are_errors_naming_the_field(expect: dict[str, Any], field: str, message: str) -> None:
    _, errors = compile_conditions(expect, {}, SPECS)
    assert len(errors) == 1
    assert errors[0][0] == field
    assert message in errors[0][1]


@pytest.mark.parametrize(
    ("raw", "actual", "holds"),
    [
        ({"contains": "192.0.2.10"}, ["192.0.2.1", "192.0.2.10"], True),
        ({"contains": "192.0.2.10"}, ["192.0.2.1"], False),
        ({"contains": ["192.0.2.1", "192.0.2.10"]}, ["192.0.2.10"], False),  # every listed value must be there
        ({"contains": 10}, [10.0, 20], True),
        ({"contains": "spf1"}, "v=spf1 -all", True),
        ({"not_contains": "10.0.0.1"}, ["192.0.2.1"], True),
        ({"not_contains": ["a", "10.0.0.1"]}, ["10.0.0.1"], False),
        ({"contains": "x"}, None, False),
        ({"contains": "x"}, 7, False),
    ],
)
def test_contains_and_not_contains_look_inside_a_list_or_a_text(raw: Any, actual: Any, holds: bool) -> None:
    assert parse_condition(raw).test(actual) is holds


def test_a_failed_contains_reads_as_a_sentence_with_the_actual_list() -> None:
    specs = {"answers": MetricSpec("answers", "answers")}
    compiled, errors = compile_conditions({"answers": {"contains": "192.0.2.10"}}, {}, specs)
    assert errors == []
    verdict = judge(compiled, {"answers": ["192.0.2.99"]})
    assert verdict.status == "down"
    assert verdict.error == "answers was ['192.0.2.99'], expected contains 192.0.2.10"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"contains": "a", "not_contains": "b"}, "got a mapping with keys contains, not_contains"),
        ({"includes": "a"}, "got a mapping with keys includes"),
        ({"contains": []}, "contains needs a value or a list of values, got []"),
        ({"contains": {"a": 1}}, "contains needs a value or a list of values"),
    ],
)
def test_bad_membership_conditions_say_what_was_expected(raw: Any, message: str) -> None:
    with pytest.raises(ConditionError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_condition(raw)
