"""The expect/warn condition language (docs/check-files.md): parsed once at load, evaluated per run.

A condition is a plain value (equality), a string with an operator (`"< 2s"`, `">= 14"`, `"!= 0"`,
`"== up"`), a status class (`"2xx"`), a list of those (any of), or `{contains: X}` / `{not_contains: X}`
for a metric whose value is a list or a text (every X must be, or none may be, among its items).
Metrics come in kinds:

* ``value``     the probe measured a value; the condition compares it;
* ``contains``  the condition is text to find in a subject the probe returned (a body, a message);
* ``matches``   the condition is a regular expression searched in that subject;
* ``paths``     the condition is a map of dotted paths (or header names) to conditions, looked up in a
                structured subject (parsed JSON, headers);
* ``flag``      the condition is a parameter for the probe (a selector); the probe reports whether it held.

`judge` evaluates every condition first, then picks the sentence: when several fail, the one whose metric
explains the others (`MetricSpec.explains`: a stalled LL-HLS part stream explains a stale playlist) is the cause.

This module never does I/O and never knows about probes: it sees metric specs, metrics and subjects.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from prober.config.durations import format_duration, parse_duration
from prober.results import Assertion, Level, Status

if TYPE_CHECKING:
    from prober.config.regex import UserRegex

__all__ = [
    "MISSING",
    "CompiledCondition",
    "Condition",
    "ConditionError",
    "MetricKind",
    "MetricSpec",
    "Verdict",
    "compile_conditions",
    "judge",
    "lookup_path",
    "parse_condition",
]

MetricKind = Literal["value", "contains", "matches", "paths", "flag"]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()
"""The value of a metric or JSON path that is absent, distinct from a present null."""


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """What a probe can report under one name, and how a condition on it is read."""

    name: str
    description: str
    kind: MetricKind = "value"
    subject: str | None = None
    unit: str = ""
    """`s` for seconds (shown as 41.7ms / 2.3s), else a word for docs (`bytes`, `days`)."""
    case_insensitive_paths: bool = False
    describe: Callable[[Any, str], str | None] | None = field(default=None, compare=False, repr=False)
    """Optional: (actual, condition text) -> a better failure sentence than "X was A, expected C", or None."""
    describe_with: Callable[[Any, str, Mapping[str, Any]], str | None] | None = field(
        default=None, compare=False, repr=False
    )
    """Optional, instead of `describe` when the sentence needs other metrics of the same run: (actual,
    condition text, every metric) -> the sentence, or None ("timestamps advanced 2.1 s in 5 s")."""
    explains: tuple[str, ...] = ()
    """Metrics whose failure follows from this one's: when this fails with them, it is the cause, and its
    sentence is the result's error (a stalled LL-HLS part stream explains a stale playlist, not the reverse)."""


class ConditionError(ValueError):
    """A condition that cannot be parsed; the message says what was expected."""


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_OPERATOR_RE = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(.*?)\s*$", re.S)
_STATUS_CLASS_RE = re.compile(r"^\s*([1-5])xx\s*$", re.I)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scalar(text: str) -> Any:
    """Read an operand: a duration or number becomes seconds/float, true/false/null their values."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none", "~"):
        return None
    try:
        return parse_duration(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text.strip().strip("'\"")


def _equal(actual: Any, expected: Any) -> bool:
    if actual is MISSING:
        return False
    if _is_number(actual) and _is_number(expected):
        # Exact, like Python: a tolerance would make `== b` and `> b` both true for one value.
        return bool(actual == expected)
    if _is_number(actual) and isinstance(expected, str):
        operand = _scalar(expected)
        return _is_number(operand) and _equal(actual, operand)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected or (isinstance(expected, str) and _scalar(expected) is actual)
    if isinstance(actual, str) and _is_number(expected):
        try:
            return _equal(float(actual), expected)
        except ValueError:
            return False
    return bool(actual == expected)


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed condition; `text` is how it is shown in assertions and errors."""

    text: str
    test: Callable[[Any], bool] = field(repr=False, compare=False)


_PARSED: dict[tuple[type, Any], Condition] = {}
"""parse_condition of scalars, by type and value: thousands of checks repeat `200`, `2xx`, `< 2s`. A Condition
is immutable, so one is shared by every check that writes the same text."""
_PARSED_MAX = 4096


def parse_condition(raw: Any) -> Condition:
    """Parse a value condition (equality, operator string, status class, or a list of them)."""
    if isinstance(raw, str | int | float | bool) or raw is None:
        key = (type(raw), raw)
        cached = _PARSED.get(key)
        if cached is None:
            cached = _parse_condition(raw)
            if len(_PARSED) < _PARSED_MAX:
                _PARSED[key] = cached
        return cached
    return _parse_condition(raw)


def _parse_condition(raw: Any) -> Condition:
    if isinstance(raw, list):
        if not raw:
            raise ConditionError("an empty list matches nothing; give at least one value")
        parts = [parse_condition(item) for item in raw]
        return Condition(
            text=" | ".join(part.text for part in parts),
            test=lambda actual: any(part.test(actual) for part in parts),
        )
    if isinstance(raw, dict):
        return _membership(raw)
    if isinstance(raw, str):
        status_class = _STATUS_CLASS_RE.match(raw)
        if status_class:
            hundreds = int(status_class.group(1))
            return Condition(
                text=f"{hundreds}xx",
                test=lambda actual: _is_number(actual) and int(actual) // 100 == hundreds,
            )
        match = _OPERATOR_RE.match(raw)
        if match:
            symbol, operand_text = match.group(1), match.group(2)
            if not operand_text:
                raise ConditionError(f"operator {symbol!r} needs a value after it, like '{symbol} 2s'")
            operand = _scalar(operand_text)
            return _comparison(symbol, operand, f"{symbol} {operand_text}")
    return Condition(text=_show(raw), test=lambda actual: _equal(actual, raw))


def _membership(raw: Mapping[Any, Any]) -> Condition:
    """`{contains: X}` / `{not_contains: X}` on a list metric (DNS answers, SANs) or a text: X (or every item
    of a list X) is, or is not, one of the items (equal as `==` compares) or a part of the text."""
    if len(raw) != 1 or next(iter(raw)) not in ("contains", "not_contains"):
        raise ConditionError(
            "expected a value, an operator string like '< 2s' or '>= 14', a list, or {contains: X} / "
            f"{{not_contains: X}}; got a mapping with keys {', '.join(map(str, raw)) or 'none'}"
        )
    word, operand = next(iter(raw.items()))
    needles = operand if isinstance(operand, list) else [operand]
    if not needles or not all(isinstance(item, str | int | float) and not isinstance(item, bool) for item in needles):
        raise ConditionError(f"{word} needs a value or a list of values, got {operand!r}")

    def has(actual: Any, needle: Any) -> bool:
        if isinstance(actual, str):
            return str(needle) in actual
        return any(_equal(item, needle) for item in actual)

    def test(actual: Any) -> bool:
        if not isinstance(actual, str | list | tuple):
            return False
        if word == "contains":
            return all(has(actual, needle) for needle in needles)
        return not any(has(actual, needle) for needle in needles)

    return Condition(text=f"{word} {', '.join(_show(item) for item in needles)}", test=test)


def _comparison(symbol: str, operand: Any, text: str) -> Condition:
    if symbol == "==":
        return Condition(text=text, test=lambda actual: _equal(actual, operand))
    if symbol == "!=":
        return Condition(text=text, test=lambda actual: actual is not MISSING and not _equal(actual, operand))
    if not _is_number(operand):
        raise ConditionError(
            f"{symbol!r} compares numbers or durations, got {operand!r}; write e.g. '{symbol} 2s' or '{symbol} 14'"
        )
    compare = _OPERATORS[symbol]
    bound = float(operand)

    def test(actual: Any) -> bool:
        if isinstance(actual, str):
            try:
                actual = float(actual)
            except ValueError:
                return False
        return _is_number(actual) and bool(compare(float(actual), bound))

    return Condition(text=text, test=test)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    """One condition bound to a metric (and a path inside it for `paths` metrics)."""

    metric: str
    """The name shown in assertions: `status`, or `json.checks.database.status` for a path."""
    spec: MetricSpec
    level: Level
    condition: Condition
    path: str | None = None
    needles: tuple[str, ...] = ()
    pattern: UserRegex | None = None


def _compile_one(
    spec: MetricSpec, raw: Any, level: Level, field_name: str, errors: list[tuple[str, str]]
) -> list[CompiledCondition]:
    if spec.kind == "paths":
        if not isinstance(raw, dict) or not raw:
            raise ConditionError(
                f"{field_name}: expected a mapping of paths to conditions, like "
                f"{{checks.database.status: healthy}}; got {raw!r}"
            )
        compiled = []
        for path, sub in raw.items():
            try:
                condition = parse_condition(sub)
            except ConditionError as exc:
                errors.append((f"{field_name}.{path}", str(exc)))  # every bad path, each under its own field
                continue
            compiled.append(CompiledCondition(f"{spec.name}.{path}", spec, level, condition, path=str(path)))
        return compiled
    if spec.kind in ("contains", "flag"):
        values = raw if isinstance(raw, list) else [raw]
        if not values or not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
            raise ConditionError(f"{field_name}: expected text or a list of texts, got {raw!r}")
        needles = tuple(str(v) for v in values)
        text = " | ".join(needles)
        return [CompiledCondition(spec.name, spec, level, Condition(text, bool), needles=needles)]
    if spec.kind == "matches":
        if not isinstance(raw, str):
            raise ConditionError(f"{field_name}: expected a regular expression string, got {raw!r}")
        try:
            from prober.config.regex import compile_user_regex  # RE2 loads only for a check that has a `matches`

            pattern = compile_user_regex(raw)
        except ValueError as exc:
            shown = repr(raw) if len(raw) <= 120 else repr(raw[:100]) + f"... ({len(raw)} characters)"
            raise ConditionError(f"{field_name}: invalid regular expression {shown}: {exc}") from None
        return [CompiledCondition(spec.name, spec, level, Condition(raw, bool), pattern=pattern)]
    try:
        condition = parse_condition(raw)
    except ConditionError as exc:
        raise ConditionError(f"{field_name}: {exc}") from None
    return [CompiledCondition(spec.name, spec, level, condition)]


def compile_conditions(
    expect: Mapping[str, Any],
    warn: Mapping[str, Any],
    specs: Mapping[str, MetricSpec],
    default_expect: Mapping[str, Any] | None = None,
) -> tuple[list[CompiledCondition], list[tuple[str, str]]]:
    """Compile a check's conditions; defaults apply for every metric the check does not name itself.

    Returns the compiled conditions and a list of (field, message) errors, so a loader can report
    every problem at once instead of the first.
    """
    compiled: list[CompiledCondition] = []
    errors: list[tuple[str, str]] = []
    merged_expect = {**(default_expect or {}), **expect}
    valid = ", ".join(sorted(specs))
    for level, table in (("expect", merged_expect), ("warn", warn)):
        for name, raw in table.items():
            field_name = f"{level}.{name}"
            spec = specs.get(name)
            if spec is None:
                errors.append((field_name, f"unknown metric {name!r}; valid metrics: {valid}"))
                continue
            try:
                compiled.extend(_compile_one(spec, raw, level, field_name, errors))  # type: ignore[arg-type]
            except ConditionError as exc:
                errors.append((field_name, str(exc).removeprefix(f"{field_name}: ")))
    return compiled, errors


def lookup_path(document: Any, path: str, *, case_insensitive: bool = False) -> Any:
    """Follow a dotted path (`checks.database.status`, `items.0.id`) into parsed JSON; MISSING if absent."""
    if case_insensitive and isinstance(document, Mapping):
        lowered = {str(key).lower(): value for key, value in document.items()}
        return lowered.get(path.lower(), MISSING)
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                return MISSING
            current = current[part]
        elif isinstance(current, Sequence) and not isinstance(current, str | bytes):
            try:
                current = current[int(part)]
            except (ValueError, IndexError):
                return MISSING
        else:
            return MISSING
    return current


def _display(value: Any, unit: str) -> str:
    if value is MISSING:
        return "missing"
    if unit == "s" and _is_number(value):
        return format_duration(float(value))
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    return _show(value)


@dataclass(slots=True)
class Verdict:
    """Conditions applied to one observation: the status, every assertion, and the sentence for `down`."""

    status: Status
    assertions: list[Assertion]
    error: str | None


def _evaluate(
    item: CompiledCondition, metrics: Mapping[str, Any], subjects: Mapping[str, Any]
) -> tuple[Any, bool, str]:
    spec = item.spec
    if spec.kind == "value":
        actual = metrics.get(spec.name, MISSING)
        ok = actual is not MISSING and item.condition.test(actual)
        if actual is MISSING:
            return None, False, f"{item.metric} was not measured (expected {item.condition.text})"
        sentence = None
        if not ok and spec.describe_with is not None:
            sentence = spec.describe_with(actual, item.condition.text, metrics)
        elif not ok and spec.describe is not None:
            sentence = spec.describe(actual, item.condition.text)
        if sentence:
            return actual, ok, sentence
        return actual, ok, f"{item.metric} was {_display(actual, spec.unit)}, expected {item.condition.text}"
    if spec.kind == "paths":
        document = subjects.get(spec.subject or spec.name, MISSING)
        if document is MISSING:
            return (
                None,
                False,
                f"{item.metric}: no {spec.subject or spec.name} to check (expected {item.condition.text})",
            )
        actual = lookup_path(document, item.path or "", case_insensitive=spec.case_insensitive_paths)
        ok = actual is not MISSING and item.condition.test(actual)
        shown = None if actual is MISSING else actual
        return shown, ok, f"{item.metric} was {_display(actual, '')}, expected {item.condition.text}"
    if spec.kind == "flag":
        actual = metrics.get(spec.name, MISSING)
        ok = actual is True
        return (None if actual is MISSING else actual), ok, f"{item.metric} {item.condition.text} did not hold"
    text = subjects.get(spec.subject or spec.name)
    if not isinstance(text, str):
        return None, False, f"{item.metric}: no {spec.subject or 'text'} to search"
    if spec.kind == "contains":
        ok = any(needle in text for needle in item.needles)
        return ok, ok, f"{spec.subject} does not contain {item.condition.text!r}"
    assert item.pattern is not None
    ok = item.pattern.search(text) is not None
    return ok, ok, f"{spec.subject} does not match /{item.condition.text}/"


def _cause(failures: Sequence[tuple[CompiledCondition, str]]) -> tuple[str, int]:
    """The sentence of the failure that explains the others (`MetricSpec.explains`), and how many failed besides.

    The cause is a failure no other failure explains, the one explaining the most of them (the first written
    on a tie); failures it explains are its consequences and are not counted again (they stay in the
    assertions). Without any `explains` this is the first failure, in the order the conditions were written.
    """
    failed = {item.spec.name for item, _ in failures}
    specs = {item.spec.name: item.spec for item, _ in failures}
    explained = {name for item, _ in failures for name in item.spec.explains if name != item.spec.name}
    candidates = [(item, text) for item, text in failures if item.spec.name not in explained] or list(failures)
    reach = {item.spec.name: _consequences(item.spec.name, specs) & failed for item, _ in candidates}
    cause, sentence = max(candidates, key=lambda pair: len(reach[pair[0].spec.name]))  # max keeps the first on a tie
    consequences = reach[cause.spec.name]
    others = sum(1 for item, _ in failures if item is not cause and item.spec.name not in consequences)
    return sentence, others


def _consequences(name: str, specs: Mapping[str, MetricSpec]) -> set[str]:
    """Every metric that `name` explains, directly or through a metric it explains."""
    found: set[str] = set()
    todo = [name]
    while todo:
        spec = specs.get(todo.pop())
        for other in spec.explains if spec is not None else ():
            if other not in found and other != name:
                found.add(other)
                todo.append(other)
    return found


def judge(
    conditions: Sequence[CompiledCondition],
    metrics: Mapping[str, Any],
    subjects: Mapping[str, Any] | None = None,
) -> Verdict:
    """Evaluate every condition (all of them: collect first), then judge: a failed expect means down, else a
    failed warn means degraded; the error is the sentence of the failure that explains the others."""
    subjects = subjects or {}
    assertions: list[Assertion] = []
    expect_failures: list[tuple[CompiledCondition, str]] = []
    warn_failures: list[tuple[CompiledCondition, str]] = []
    for item in conditions:
        actual, ok, sentence = _evaluate(item, metrics, subjects)
        assertions.append(Assertion(item.metric, item.condition.text, actual, ok, item.level))
        if not ok:
            (expect_failures if item.level == "expect" else warn_failures).append((item, sentence))
    if expect_failures:
        sentence, others = _cause(expect_failures)
        return Verdict("down", assertions, sentence + (f"; and {others} more failed" if others else ""))
    if warn_failures:
        return Verdict("degraded", assertions, "warning: " + _cause(warn_failures)[0])
    return Verdict("up", assertions, None)
