"""When several conditions fail, the error is the failure that explains the others (`MetricSpec.explains`), not the
first in the order the conditions were written; every condition is still evaluated and recorded."""

from __future__ import annotations

from prober.config.conditions import MetricSpec, Verdict, compile_conditions, judge

SPECS = {
    spec.name: spec
    for spec in (
        MetricSpec("fresh", "a new segment appeared in time"),
        MetricSpec(
            "part_fresh",
            "a new part appeared in time",
            explains=("fresh",),
            describe=lambda actual, condition: "the parts stalled" if actual is False else None,
        ),
        MetricSpec("segment_status", "segment HTTP status", explains=("segment_bytes",)),
        MetricSpec("segment_bytes", "segment size"),
        MetricSpec("consistent", "no sequence number changed"),
        MetricSpec("a", "explains b", explains=("b",)),
        MetricSpec("b", "explains a", explains=("a",)),
        MetricSpec("c", "explains d", explains=("d",)),
        MetricSpec("d", "explains e", explains=("e",)),
        MetricSpec("e", "explained through d"),
    )
}


def verdict(expect: dict[str, object], metrics: dict[str, object], warn: dict[str, object] | None = None) -> Verdict:
    conditions, errors = compile_conditions(expect, warn or {}, SPECS)
    assert errors == []
    return judge(conditions, metrics)


def test_the_cause_is_named_although_its_condition_comes_later() -> None:
    result = verdict({"fresh": True, "part_fresh": "!= false"}, {"fresh": False, "part_fresh": False})
    assert result.status == "down"
    assert result.error == "the parts stalled"
    assert [a.ok for a in result.assertions] == [False, False]


def test_failures_the_cause_does_not_explain_are_still_counted() -> None:
    result = verdict(
        {"fresh": True, "consistent": True, "part_fresh": "!= false"},
        {"fresh": False, "consistent": False, "part_fresh": False},
    )
    assert result.error == "the parts stalled; and 1 more failed"


def test_without_an_explanation_the_first_failure_is_the_sentence() -> None:
    result = verdict({"fresh": True, "consistent": True}, {"fresh": False, "consistent": False})
    assert result.error == "fresh was false, expected true; and 1 more failed"
    alone = verdict({"fresh": True, "part_fresh": "!= false"}, {"fresh": False, "part_fresh": True})
    assert alone.error == "fresh was false, expected true"


def test_consequences_follow_through_a_chain_and_a_cycle_falls_back_to_the_order_written() -> None:
    chain = verdict({"e": 1, "d": 1, "c": 1}, {"e": 0, "d": 0, "c": 0})
    assert chain.error == "c was 0, expected 1"
    cycle = verdict({"b": 1, "a": 1}, {"b": 0, "a": 0})
    assert cycle.error == "b was 0, expected 1"  # each explains the other


def test_a_warning_names_its_cause_too() -> None:
    result = verdict({}, {"segment_bytes": 0, "segment_status": 503}, {"segment_bytes": "> 0", "segment_status": 200})
    assert result.status == "degraded"
    assert result.error == "warning: segment_status was 503, expected 200"
