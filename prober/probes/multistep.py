"""The `multistep` check type: HTTP requests run in order, each with its own `expect`, passing values along.

    steps:
      - name: login
        method: POST
        url: https://api.example.com/login
        json: {user: monitor, password: "${API_PASSWORD}"}      # ${VAR}: the environment, when files load
        capture: {token: {json: access_token}}
      - name: orders
        url: https://api.example.com/orders
        headers: {Authorization: "Bearer {{ steps.login.token }}"}   # {{ }}: a value captured at run time
        expect: {status: 200, json: {count: ">= 1"}}

Each step is one request made by the `http` type's probe (`HttpProbe.run`, the same phase timings, limits and
error sentences) and judged by its own `expect` (default `status: 2xx`). A step's `capture` takes values from
its response (`json: dotted.path`, `header: Name`, `regex: RE2 with one group`); later steps use them as
`{{ steps.<step>.<name> }}` in their url, headers and body. References are checked when the files load (an
earlier step, a name it captures). The first step that fails (its request, its expect, or a capture that
finds nothing) ends the run; the error names it: `step 2 'orders': status was 401, expected 2xx`.

Captured values are secrets unless a capture says `secret: false`: this probe masks them in everything it
returns (errors, metrics, details), on top of the check's own declared secrets that the runner masks.
It never judges the check as a whole (its `expect` does, on `latency`, `steps_passed`, `steps_failed`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from prober.config.conditions import MISSING, MetricSpec, compile_conditions, judge, lookup_path
from prober.config.models import NAME_PATTERN, CheckBase, StrictModel, http_url
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.http import HttpCheck, HttpProbe
from prober.probes.registry import Export, SecretKind, register, standard_exports
from prober.redact import Scrubber, redact_url

__all__ = ["Capture", "MultiStepCheck", "MultiStepProbe", "Step"]

TEMPLATE = re.compile(r"\{\{\s*steps\.([a-z0-9][a-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
"""`{{ steps.<step>.<capture> }}`: a value captured by an earlier step (run time; `${VAR}` is load time)."""
_OPEN = re.compile(r"\{\{")
MAX_STEPS = 20
_HTTP = HttpProbe.metrics
_SUBJECTS = {"json": {}, "headers": {}, "body_contains": ""}
"""Asked of the http probe so that every subject a capture may read is built (they never fail)."""


class Capture(StrictModel):
    """Where a value comes from: exactly one of `json` (a dotted path), `header` (a name), `regex` (RE2; its
    first group, or the whole match without one)."""

    json_path: str | None = Field(None, alias="json", description="dotted path into the JSON body")
    header: str | None = Field(None, description="response header name (any case)")
    regex: str | None = Field(None, description="RE2 searched in the body; the first group is the value")
    secret: bool = Field(True, description="mask the value in results, logs and pages")

    @model_validator(mode="after")
    def _one_source(self) -> Capture:
        given = [name for name in ("json_path", "header", "regex") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a capture takes exactly one of 'json', 'header' or 'regex'")
        if self.regex is not None:
            from prober.config.regex import compile_user_regex

            compile_user_regex(self.regex)
        return self


class Step(StrictModel):
    name: str = Field(description="unique within the check; names the step in errors and {{ steps.<name>.* }}")
    url: str = Field(description="http(s) URL; may use {{ steps.<step>.<capture> }}")
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    json_body: Any = Field(default=None, alias="json")
    expect: dict[str, Any] = Field(
        default_factory=dict, description="conditions on the http metrics; default status 2xx"
    )
    capture: dict[str, Capture] = Field(default_factory=dict, description="name -> where its value comes from")
    follow_redirects: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a valid step name: use lowercase letters, digits, '_', '.', '-'")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        http_url(TEMPLATE.sub("x", value))
        return value

    @field_validator("capture")
    @classmethod
    def _capture_names(cls, value: dict[str, Capture]) -> dict[str, Capture]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"capture name {name!r}: use letters, digits and '_', starting with a letter")
        return value

    @model_validator(mode="after")
    def _valid(self) -> Step:
        HttpCheck.model_validate(
            {
                "name": "step",
                "type": "http",
                "url": "http://x/",
                "method": self.method,
                "body": self.body,
                "json": self.json_body,
            }
        )
        _, errors = compile_conditions(self.expect, {}, _HTTP)
        if errors:
            raise ValueError("; ".join(f"{where}: {why}" for where, why in errors))
        return self


def _templates(step: Step) -> list[str]:
    texts = [step.url, *step.headers.values(), step.body or ""]
    texts.extend(_strings(step.json_body))
    return texts


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


class MultiStepCheck(CheckBase):
    type: Literal["multistep"]
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS, description="requests run in order")
    verify_tls: bool = True
    max_body: int = Field(1024 * 1024, ge=0, le=64 * 1024 * 1024, description="bytes of each body read at most")

    @model_validator(mode="after")
    def _references(self) -> MultiStepCheck:
        captures: dict[str, set[str]] = {}
        for index, step in enumerate(self.steps):
            if step.name in captures:
                raise ValueError(f"steps[{index}]: the step name {step.name!r} is used twice")
            for text in _templates(step):
                for match in TEMPLATE.finditer(text):
                    source, name = match.groups()
                    if source not in captures:
                        raise ValueError(
                            f"steps[{index}] ({step.name}): {match.group(0)} names no earlier step "
                            f"(earlier steps: {', '.join(captures) or 'none'})"
                        )
                    if name not in captures[source]:
                        raise ValueError(
                            f"steps[{index}] ({step.name}): {match.group(0)}: step {source!r} captures no "
                            f"{name!r} (it captures: {', '.join(sorted(captures[source])) or 'nothing'})"
                        )
                rest = TEMPLATE.sub("", text)
                if _OPEN.search(rest):
                    raise ValueError(
                        f"steps[{index}] ({step.name}): {{{{ … }}}} must read {{{{ steps.<step>.<capture> }}}}, "
                        f"got {rest[_OPEN.search(rest).start() :][:60]!r}"  # type: ignore[union-attr]
                    )
            captures[step.name] = set(step.capture)
        return self


class _Failed(Exception):
    pass


def _fill(value: Any, values: Mapping[tuple[str, str], str]) -> Any:
    if isinstance(value, str):
        return TEMPLATE.sub(lambda match: values[(match.group(1), match.group(2))], value)
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    return value


def _captured(capture: Capture, subjects: Mapping[str, Any]) -> tuple[str | None, str]:
    """The value and, when it is missing, what was looked for."""
    found: Any = MISSING
    if capture.json_path is not None:
        what = f"the JSON path {capture.json_path!r}"
        document = subjects.get("json", MISSING)
        if document is not MISSING:
            found = lookup_path(document, capture.json_path)
    elif capture.header is not None:
        what = f"the header {capture.header!r}"
        headers = {key.lower(): item for key, item in subjects.get("headers", {}).items()}
        found = headers.get(capture.header.lower(), MISSING)
    else:
        from prober.config.regex import compile_user_regex

        assert capture.regex is not None
        what = f"the regular expression {capture.regex!r}"
        match: Any = compile_user_regex(capture.regex).search(str(subjects.get("body", "")))
        if match is not None:
            found = match.group(1) if match.re.groups else match.group(0)
    if found is MISSING or found is None or found == "":
        return None, what
    return (found if isinstance(found, str) else json.dumps(found)), what


@register("multistep")
class MultiStepProbe:
    """HTTP requests in order, each judged by its own expect, passing captured values to later steps."""

    type_name: ClassVar[str]
    Config = MultiStepCheck
    metrics: ClassVar[Mapping[str, MetricSpec]] = {
        spec.name: spec
        for spec in (
            MetricSpec("latency", "every step, first request to last body", unit="s"),
            MetricSpec("steps_passed", "steps that passed"),
            MetricSpec("steps_failed", "steps that failed (0 or 1: the first failure ends the run)"),
            MetricSpec("failed_step", "the name of the step that failed"),
            MetricSpec("status", "HTTP status of the last response received"),
        )
    }
    exports: ClassVar[Mapping[str, tuple[Export, ...]]] = {
        **standard_exports("multistep", metrics, text=("failed_step",)),
        "failed_step": (),
    }
    headline: ClassVar[tuple[str, ...]] = ("latency", "steps_passed")
    secrets: ClassVar[Mapping[str, SecretKind]] = {
        "steps.url": "url",
        "steps.headers": "headers",
        "steps.body": "text",
        "steps.json_body": "text",
    }
    _http = HttpProbe()

    def target(self, check: MultiStepCheck) -> str:
        first = redact_url(TEMPLATE.sub("…", check.steps[0].url))
        return first if len(check.steps) == 1 else f"{first} (+{len(check.steps) - 1} steps)"

    def default_expect(self, check: MultiStepCheck) -> Mapping[str, Any]:
        return {"steps_failed": 0}

    async def run(self, check: MultiStepCheck, ctx: ProbeContext) -> Observation:
        values: dict[tuple[str, str], str] = {}
        secrets: set[str] = set()
        steps: list[dict[str, Any]] = []
        metrics: dict[str, Any] = {"steps_passed": 0, "steps_failed": 0}
        began = time.perf_counter()
        try:
            for index, step in enumerate(check.steps):
                detail: dict[str, Any] = {"name": step.name, "method": step.method}
                steps.append(detail)
                await self._step(check, index, step, ctx, values, secrets, detail, metrics)
                metrics["steps_passed"] += 1
        except _Failed as failure:
            metrics["steps_failed"] = 1
            metrics["failed_step"] = steps[-1]["name"]
            metrics["latency"] = round(time.perf_counter() - began, 6)
            scrub = Scrubber(secrets)
            raise ProbeError(
                scrub.text(str(failure)), metrics=scrub.json(metrics), details=scrub.json({"steps": steps})
            ) from None
        metrics["latency"] = round(time.perf_counter() - began, 6)
        scrub = Scrubber(secrets)
        return Observation(metrics=scrub.json(metrics), details=scrub.json({"steps": steps}))

    async def _step(
        self,
        check: MultiStepCheck,
        index: int,
        step: Step,
        ctx: ProbeContext,
        values: dict[tuple[str, str], str],
        secrets: set[str],
        detail: dict[str, Any],
        metrics: dict[str, Any],
    ) -> None:
        label = f"step {index + 1} {step.name!r}"
        url = _fill(step.url, values)
        detail["url"] = redact_url(url)
        request: dict[str, Any] = {
            "name": check.name,
            "type": "http",
            "url": url,
            "method": step.method,
            "headers": _fill(step.headers, values),
            "follow_redirects": step.follow_redirects,
            "verify_tls": check.verify_tls,
            "max_body": check.max_body,
            "expect": _SUBJECTS,
        }
        if step.body is not None:
            request["body"] = _fill(step.body, values)
        if step.json_body is not None:
            request["json"] = _fill(step.json_body, values)
        try:
            http_check = HttpCheck.model_validate(request)
        except ValueError as exc:
            raise _Failed(f"{label}: the request cannot be made: {_first_error(exc)}") from None
        started = time.perf_counter()
        try:
            observation = await self._http.run(http_check, ctx)
        except ProbeError as exc:
            detail.update(metrics=exc.metrics, ok=False, error=str(exc))
            if "status" in exc.metrics:
                metrics["status"] = exc.metrics["status"]
            raise _Failed(f"{label}: {exc}") from None
        finally:
            detail["latency"] = round(time.perf_counter() - started, 6)
        detail["metrics"] = observation.metrics
        metrics["status"] = observation.metrics.get("status")
        conditions, _ = compile_conditions(step.expect, {}, _HTTP, {"status": "2xx"})
        verdict = judge(conditions, observation.metrics, observation.subjects)
        if verdict.status == "down":
            detail.update(ok=False, error=verdict.error)
            raise _Failed(f"{label}: {verdict.error}")
        for name, capture in step.capture.items():
            value, what = _captured(capture, observation.subjects)
            if value is None:
                detail.update(ok=False, error=f"capture {name!r} found nothing")
                raise _Failed(f"{label}: the capture {name!r} found nothing ({what} is not in the response)")
            values[(step.name, name)] = value
            if capture.secret:
                secrets.add(value)
        detail["captured"] = sorted(step.capture)
        detail["ok"] = True


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return str(first.get("msg", exc)).removeprefix("Value error, ")
    return str(exc)
