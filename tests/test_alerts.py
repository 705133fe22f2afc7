"""The incident state machine (docs/alerting.md): table-driven cases, exact values, and hypothesis properties."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prober.alerts import (
    FLAP_WINDOW,
    CheckAlertState,
    Transition,
    due_repeats,
    forget_locations,
    observe,
)
from prober.config.models import AlertPolicy
from prober.results import Status

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
STEP = timedelta(seconds=30)
CODES: dict[str, Status] = {"D": "down", "U": "up", "G": "degraded"}


def play(
    tokens: str, policy: AlertPolicy, state: CheckAlertState | None = None, start: datetime = T0
) -> tuple[CheckAlertState, list[tuple[int, Transition]]]:
    """Tokens like `D@a U@b G@a D@a*`: status, location, `*` = inside a maintenance window; one per STEP."""
    state = state or CheckAlertState("api")
    out: list[tuple[int, Transition]] = []
    for index, token in enumerate(tokens.split()):
        maintenance = token.endswith("*")
        code, _, location = token.rstrip("*").partition("@")
        state, transitions = observe(
            state, CODES[code], location or "a", start + index * STEP, f"error {code}", policy, maintenance
        )
        out.extend((index, t) for t in transitions)
    return state, out


TABLE = [
    # name, policy, tokens, expected [(index, kind, notify)]
    ("opens after two downs and resolves on one up", {}, "D D U", [(1, "opened", True), (2, "resolved", True)]),
    ("a single down does not open with after 2", {}, "D U D U", []),
    ("after 3 needs three in a row", {"after": 3}, "D D U D D U D D D", [(8, "opened", True)]),
    ("after 1 opens on the first down", {"after": 1}, "D", [(0, "opened", True)]),
    ("degraded never opens", {"after": 1}, "G G G G", []),
    ("degraded between downs breaks the streak", {}, "D G D G D", []),
    ("degraded counts as a recovery", {}, "D D G", [(1, "opened", True), (2, "resolved", True)]),
    ("further downs do not open again", {}, "D D D D D", [(1, "opened", True)]),
    (
        "recover_after 2 needs two good runs in a row",
        {"recover_after": 2},
        "D D U D U U",
        [(1, "opened", True), (5, "resolved", True)],
    ),
    ("quorum 2 ignores one failing location", {"quorum": 2}, "D@a D@a D@a U@b U@b", []),
    (
        "quorum 2 opens when the second location is down",
        {"quorum": 2},
        "D@a D@a D@b D@b U@a",
        [(3, "opened", True), (4, "resolved", True)],
    ),
    (
        "quorum 2 of 3 stays open while two are still down",
        {"quorum": 2},
        "D@a D@a D@b D@b D@c D@c U@a U@b",
        [(3, "opened", True), (7, "resolved", True)],
    ),
    (
        "a recovering location still counts until recover_after",
        {"quorum": 2, "recover_after": 2},
        "D@a D@a D@b D@b U@a D@b U@a",
        [(3, "opened", True), (6, "resolved", True)],
    ),
    ("nothing opens inside a maintenance window", {}, "D* D* D* U*", []),
    ("an outage that outlasts the window opens after it", {}, "D* D* D", [(2, "opened", True)]),
    ("a recovering location does not open after the window", {}, "D* D* U", []),
    (
        "a recovery inside a window is recorded, not announced",
        {},
        "D D D* U*",
        [(1, "opened", True), (3, "resolved", False)],
    ),
    ("a two-location outage during maintenance stays silent", {"quorum": 2}, "D@a* D@a* D@b* D@b* U@a* U@b*", []),
]


@pytest.mark.parametrize(("name", "policy", "tokens", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_incident_transitions_follow_the_policy(
    name: str, policy: dict[str, int], tokens: str, expected: list[tuple[int, str, bool]]
) -> None:
    _, got = play(tokens, AlertPolicy(**policy))
    assert [(index, t.kind, t.notify) for index, t in got] == expected


def test_incident_starts_at_the_first_failing_run_and_downtime_runs_to_the_first_good_run() -> None:
    _, got = play("U D D D U U", AlertPolicy(after=2, recover_after=2))
    (_, opened), (_, resolved) = got
    assert opened.started_at == T0 + 1 * STEP
    assert opened.at == T0 + 2 * STEP
    assert resolved.started_at == opened.started_at
    assert resolved.ended_at == T0 + 4 * STEP
    assert resolved.at == T0 + 5 * STEP
    assert resolved.downtime == (3 * STEP).total_seconds()
    assert resolved.incident_id == opened.incident_id


def test_quorum_incident_starts_when_enough_locations_were_all_failing() -> None:
    _, got = play("D@a D@a D@a D@b D@b", AlertPolicy(quorum=2))
    ((index, opened),) = got
    assert index == 4
    assert opened.started_at == T0 + 3 * STEP  # b's first failure, a was failing already
    assert opened.locations == ("a", "b")


def test_resolve_names_every_location_that_was_down_during_the_incident() -> None:
    _, got = play("D@a D@a D@b D@b U@a U@b", AlertPolicy())
    assert [t.kind for _, t in got] == ["opened", "resolved"]
    assert got[1][1].locations == ("a", "b")
    assert got[1][0] == 5


def test_one_error_is_reported_as_is_and_different_errors_per_location() -> None:
    state = CheckAlertState("api")
    policy = AlertPolicy(after=1, quorum=2)
    state, _ = observe(state, "down", "eu", T0, "connection refused", policy, False)
    state, got = observe(state, "down", "us", T0 + STEP, "timed out after 10s", policy, False)
    assert got[0].error == "eu: connection refused; us: timed out after 10s"
    state2, _ = observe(CheckAlertState("api"), "down", "eu", T0, "connection refused", policy, False)
    _, same = observe(state2, "down", "us", T0 + STEP, "connection refused", policy, False)
    assert same[0].error == "connection refused"


def test_third_incident_within_the_flap_window_is_flapping() -> None:
    _, got = play("D D U D D U D D U", AlertPolicy())
    opened = [t for _, t in got if t.kind == "opened"]
    assert [t.flapping for t in opened] == [False, False, True]
    assert opened[2].recent_incidents == 3
    resolved = [t for _, t in got if t.kind == "resolved"]
    assert resolved[2].flapping


def test_incidents_further_apart_than_the_flap_window_are_not_flapping() -> None:
    policy = AlertPolicy()
    state = CheckAlertState("api")
    gap = FLAP_WINDOW / 2 + timedelta(minutes=1)
    flags = []
    for n in range(4):
        state, got = play("D D U", policy, state, start=T0 + n * gap)
        flags.append(got[0][1].flapping)
    assert flags == [False, False, False, False]


def test_repeat_reminds_every_interval_while_open_and_never_when_zero() -> None:
    policy = AlertPolicy(repeat=300)
    state, got = play("D D", policy)
    opened_at = got[0][1].at
    state, none = due_repeats(state, opened_at + timedelta(seconds=299), policy)
    assert none == []
    state, first = due_repeats(state, opened_at + timedelta(seconds=300), policy)
    assert [t.kind for t in first] == ["repeat"]
    assert first[0].started_at == got[0][1].started_at
    assert first[0].notify
    state, again = due_repeats(state, opened_at + timedelta(seconds=301), policy)
    assert again == []
    _, second = due_repeats(state, opened_at + timedelta(seconds=600), policy)
    assert len(second) == 1
    _, never = due_repeats(state, opened_at + timedelta(days=1), AlertPolicy(repeat=0))
    assert never == []


def test_repeat_after_a_long_pause_is_one_message_not_a_burst() -> None:
    policy = AlertPolicy(repeat=60)
    state, got = play("D D", policy)
    state, reminders = due_repeats(state, got[0][1].at + timedelta(hours=5), policy)
    assert len(reminders) == 1
    _, more = due_repeats(state, got[0][1].at + timedelta(hours=5, seconds=1), policy)
    assert more == []


def test_repeat_waits_for_the_end_of_a_maintenance_window() -> None:
    policy = AlertPolicy(repeat=60)
    state, got = play("D D", policy)
    later = got[0][1].at + timedelta(minutes=10)
    state, during = due_repeats(state, later, policy, in_maintenance=True)
    assert during == []
    _, after = due_repeats(state, later + timedelta(seconds=1), policy)
    assert len(after) == 1


def test_no_repeat_without_an_open_incident() -> None:
    state, _ = play("D U", AlertPolicy(repeat=1))
    _, got = due_repeats(state, T0 + timedelta(hours=1), AlertPolicy(repeat=1))
    assert got == []


def test_open_incident_survives_a_restart_without_a_second_down_message() -> None:
    policy = AlertPolicy()
    state, got = play("D D", policy)
    assert [t.kind for _, t in got] == ["opened"]
    restored = CheckAlertState.from_json(json.loads(json.dumps(state.to_json())))
    assert restored == state
    restored, more = play("D D D", policy, restored, start=T0 + 10 * STEP)
    assert more == []
    _, recovery = play("U", policy, restored, start=T0 + 20 * STEP)
    assert [(t.kind, t.notify, t.incident_id) for _, t in recovery] == [("resolved", True, got[0][1].incident_id)]
    assert recovery[0][1].downtime == (20 * STEP).total_seconds()


def test_state_from_an_unknown_version_or_with_naive_times_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        CheckAlertState.from_json({"version": 99, "check": "api"})
    data = play("D D", AlertPolicy())[0].to_json()
    data["incident"]["started_at"] = "2026-11-23T08:00:00"
    with pytest.raises(ValueError, match="timezone"):
        CheckAlertState.from_json(data)


def test_naive_times_are_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="timezone"):
        observe(CheckAlertState("api"), "down", "a", datetime(2026, 1, 1), None, AlertPolicy(), False)


def test_forgetting_a_removed_location_resolves_the_incident_it_held_open() -> None:
    policy = AlertPolicy()
    state, _ = play("D@a D@a U@b", policy)
    assert state.incident is not None
    state, got = forget_locations(state, {"b"}, T0 + 10 * STEP, policy, False)
    assert [t.kind for t in got] == ["resolved"]
    assert state.incident is None and set(state.locations) == {"b"}
    unchanged, none = forget_locations(state, {"a", "b"}, T0 + 11 * STEP, policy, False)
    assert none == [] and unchanged is state


def test_observe_does_not_change_the_state_it_is_given() -> None:
    state, _ = play("D", AlertPolicy())
    snapshot = state.to_json()
    observe(state, "down", "a", T0 + STEP, "x", AlertPolicy(), False)
    assert state.to_json() == snapshot


def test_transition_json_is_serialisable_for_the_store() -> None:
    _, got = play("D D U", AlertPolicy())
    data = json.loads(json.dumps(got[1][1].to_json()))
    assert data["kind"] == "resolved" and data["downtime"] == 60.0 and data["ended_at"].endswith("Z")


# ---- properties ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    tick: bool
    status: Status
    location: str
    maintenance: bool
    gap: int


events_strategy = st.lists(
    st.builds(
        Event,
        tick=st.sampled_from([False] * 5 + [True]),
        status=st.sampled_from(["up", "degraded", "down", "down"]),
        location=st.sampled_from(["a", "b", "c"]),
        maintenance=st.sampled_from([False, False, False, True]),
        gap=st.integers(1, 400),
    ),
    max_size=60,
)
policies = st.builds(
    AlertPolicy,
    after=st.integers(1, 4),
    recover_after=st.integers(1, 3),
    quorum=st.integers(1, 3),
    repeat=st.sampled_from([0.0, 60.0, 300.0]),
)


def simulate(
    events: list[Event], policy: AlertPolicy, restart_at: int | None = None
) -> tuple[CheckAlertState, list[tuple[int, Transition]], list[CheckAlertState]]:
    state = CheckAlertState("prop")
    at = T0
    out: list[tuple[int, Transition]] = []
    states = []
    for index, event in enumerate(events):
        if index == restart_at:
            state = CheckAlertState.from_json(json.loads(json.dumps(state.to_json())))
        at += timedelta(seconds=event.gap)
        if event.tick:
            state, got = due_repeats(state, at, policy, in_maintenance=event.maintenance)
        else:
            state, got = observe(state, event.status, event.location, at, "boom", policy, event.maintenance)
        out.extend((index, t) for t in got)
        states.append(state)
    return state, out, states


def counts_as_down(statuses: list[Status], after: int, recover_after: int) -> bool:
    """Declarative oracle: the last run of `after` downs was not followed by `recover_after` good runs."""
    last = None
    for i in range(after - 1, len(statuses)):
        if all(s == "down" for s in statuses[i - after + 1 : i + 1]):
            last = i
    if last is None:
        return False
    good = 0
    for status in statuses[last + 1 :]:
        good = good + 1 if status != "down" else 0
        if good >= recover_after:
            return False
    return True


@settings(max_examples=250, deadline=None)
@given(events_strategy, policies)
def test_opens_and_resolves_alternate_and_repeats_only_while_open(events: list[Event], policy: AlertPolicy) -> None:
    _, out, _ = simulate(events, policy)
    is_open = False
    for _, t in out:
        if t.kind == "opened":
            assert not is_open, "two opens without a resolve between them"
            is_open = True
        elif t.kind == "resolved":
            assert is_open, "a resolve without an open"
            is_open = False
        else:
            assert is_open, "a repeat while no incident is open"


@settings(max_examples=250, deadline=None)
@given(events_strategy, policies)
def test_incident_is_open_exactly_as_the_spec_says(events: list[Event], policy: AlertPolicy) -> None:
    _, out, states = simulate(events, policy)
    history: dict[str, list[Status]] = {}
    opened_at = {index for index, t in out if t.kind == "opened"}
    for index, (event, state) in enumerate(zip(events, states, strict=True)):
        if event.tick:
            continue
        history.setdefault(event.location, []).append(event.status)
        down = sum(counts_as_down(h, policy.after, policy.recover_after) for h in history.values())
        assert set(state.down_locations) == {
            name for name, h in history.items() if counts_as_down(h, policy.after, policy.recover_after)
        }
        if down < policy.quorum:
            assert state.incident is None, "an incident is open with fewer than quorum locations down"
        if index in opened_at:
            assert down >= policy.quorum and not event.maintenance and event.status == "down"
        if event.status == "down" and not event.maintenance and down >= policy.quorum:
            assert state.incident is not None, "quorum locations are down but no incident is open"


@settings(max_examples=250, deadline=None)
@given(events_strategy, policies)
def test_nothing_is_announced_inside_a_maintenance_window(events: list[Event], policy: AlertPolicy) -> None:
    _, out, _ = simulate(events, policy)
    for index, t in out:
        assert t.notify == (not events[index].maintenance)
        if t.kind == "opened":
            assert t.notify and t.started_at <= t.at
        if t.kind == "resolved":
            assert t.downtime is not None and t.downtime >= 0
            assert t.ended_at is not None and t.started_at <= t.ended_at <= t.at


@settings(max_examples=250, deadline=None)
@given(events_strategy, policies, st.integers(0, 60))
def test_a_restart_anywhere_changes_nothing(events: list[Event], policy: AlertPolicy, split: int) -> None:
    final, out, _ = simulate(events, policy)
    final_restarted, out_restarted, _ = simulate(events, policy, restart_at=min(split, len(events)))
    assert out_restarted == out
    assert final_restarted == final


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["up", "degraded", "down"]), max_size=80), st.integers(1, 4))
def test_one_open_per_outage_at_a_single_location(statuses: list[Status], after: int) -> None:
    events = [Event(False, s, "a", False, 30) for s in statuses]
    _, out, _ = simulate(events, AlertPolicy(after=after))
    outages, run = 0, 0
    for status in [*statuses, "up"]:
        if status == "down":
            run += 1
        else:
            outages += run >= after
            run = 0
    assert sum(t.kind == "opened" for _, t in out) == outages
