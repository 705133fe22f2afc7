"""The `browser` check type (SPEC.md §2): load a page in headless Chromium the way a person would.

A run opens a fresh context on the process's shared Chromium (browser_pool), injects the Web Vitals
observers (browser_vitals), loads `url` to its `wait_until` event, plays the `steps`, waits for the
`selector` and `text_contains` the conditions ask for, and reports timings, counts and the page text; the
work inside the page lives in browser_run. Screenshots are saved under the runner's artifacts directory.

This module holds the YAML model and the probe. Neither imports Playwright at import time, so
`prober validate` and the other check types never pay for it. Like every probe it measures and never
judges: it asks `ctx.judge` only to decide whether an `on_failure` screenshot is due, and reads the
conditions of `selector`/`text_contains` because they are parameters (what to wait for).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from prober.conditions import MetricSpec, compile_conditions, judge
from prober.config_models import CheckBase, HttpUrl, StrictModel
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.registry import Export, SecretKind, register, standard_exports, url_target

__all__ = ["PAGE_TEXT", "BrowserCheck", "BrowserProbe", "Step", "Viewport", "wanted_selectors", "wanted_texts"]

STEP_ACTIONS = ("click", "fill", "wait_for", "goto")
_STEP_FORMS = "{click: SELECTOR}, {fill: SELECTOR, value: TEXT}, {wait_for: SELECTOR} or {goto: URL}"
_VIEWPORT_TEXT = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


class Step(StrictModel):
    """One step of a journey: exactly one action, plus `value` for `fill`."""

    click: str | None = None
    fill: str | None = None
    value: str | None = None
    wait_for: str | None = None
    goto: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_action(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"expected a step like {_STEP_FORMS}, got {data!r}")
        for key in data:
            if key not in (*STEP_ACTIONS, "value"):
                raise ValueError(f"unknown key {key!r} in a step; a step is {_STEP_FORMS}")
        actions = [key for key in STEP_ACTIONS if key in data]
        if len(actions) != 1:
            got = ", ".join(actions) if actions else "none"
            raise ValueError(
                f"a step needs exactly one of click, fill, wait_for, goto (got {got}); write {_STEP_FORMS}"
            )
        if actions[0] == "fill" and "value" not in data:
            raise ValueError("a fill step needs a value: {fill: SELECTOR, value: TEXT}")
        if actions[0] != "fill" and "value" in data:
            raise ValueError(f"'value' belongs to a fill step only, not to {actions[0]}")
        cleaned: dict[str, str] = {}
        for key, item in data.items():
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise ValueError(f"{key} of a step must be text, got {item!r}")
            cleaned[key] = str(item)
            if key != "value" and not cleaned[key].strip():
                raise ValueError(f"{key} of a step must not be empty")
        return cleaned

    @property
    def action(self) -> str:
        return next(key for key in STEP_ACTIONS if getattr(self, key) is not None)

    @property
    def target(self) -> str:
        target: str = getattr(self, self.action)
        return target

    @property
    def label(self) -> str:
        """How the step is shown in details and errors: `click '#buy'`."""
        return f"{self.action} {self.target!r}"


class Viewport(StrictModel):
    width: int = Field(1280, ge=200, le=7680, description="CSS pixels")
    height: int = Field(720, ge=200, le=4320, description="CSS pixels")


def _viewport(value: Any) -> Any:
    """Accept `1280x720` as well as `{width: 1280, height: 720}`."""
    if isinstance(value, str):
        match = _VIEWPORT_TEXT.match(value)
        if not match:
            raise ValueError(f"expected a viewport like 1280x720 or {{width: 1280, height: 720}}, got {value!r}")
        return {"width": int(match.group(1)), "height": int(match.group(2))}
    return value


class BrowserCheck(CheckBase):
    type: Literal["browser"]
    url: HttpUrl
    wait_until: Literal["load", "domcontentloaded", "networkidle"] = "load"
    viewport: Annotated[Viewport, BeforeValidator(_viewport)] = Field(default_factory=Viewport)
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers on every request")
    steps: list[Step] = Field(default_factory=list)
    screenshot: Literal["on_failure", "always", "never"] = "on_failure"
    block: list[str] = Field(default_factory=list, description="URL globs to abort, e.g. '**/*.doubleclick.net/**'")

    @field_validator("block")
    @classmethod
    def _globs(cls, value: list[str]) -> list[str]:
        for glob in value:
            if not glob.strip():
                raise ValueError("a block glob must not be empty; write e.g. '**/analytics.js'")
        return value

    @model_validator(mode="after")
    def _one_selector(self) -> BrowserCheck:
        if "selector" in self.expect and "selector" in self.warn and self.expect["selector"] != self.warn["selector"]:
            raise ValueError(
                "selector is set in both expect and warn with different values; the page reports one "
                "'selector' result, so give it in one place (a list there means any of them)"
            )
        return self


def wanted_selectors(check: BrowserCheck) -> list[str]:
    """The selectors a run waits to see visible (any of them), from the `selector` condition."""
    raw = check.expect.get("selector", check.warn.get("selector"))
    return _texts(raw)


def wanted_texts(check: BrowserCheck) -> list[list[str]]:
    """Groups of texts a run waits for (any of a group): the expect group, then the warn group."""
    return [_texts(check.expect.get("text_contains")), _texts(check.warn.get("text_contains"))]


def _texts(raw: Any) -> list[str]:
    if raw is None:
        return []
    values = raw if isinstance(raw, list) else [raw]
    return [str(value) for value in values]


PAGE_TEXT = "page text"
"""Subject name of the page's visible text (`text_contains` searches it)."""


@register("browser")
class BrowserProbe:
    type_name: ClassVar[str]
    Config = BrowserCheck
    metrics: ClassVar[Mapping[str, MetricSpec]] = {
        spec.name: spec
        for spec in (
            MetricSpec("load", "time until the wait_until event of the first page", unit="s"),
            MetricSpec("status", "HTTP status of the page's document"),
            MetricSpec("ttfb", "time to the first byte of the document (Navigation Timing)", unit="s"),
            MetricSpec("fcp", "First Contentful Paint", unit="s"),
            MetricSpec("lcp", "Largest Contentful Paint (latest candidate when read)", unit="s"),
            MetricSpec("cls", "Cumulative Layout Shift (worst session window)"),
            MetricSpec("dom_content_loaded", "time to the end of DOMContentLoaded", unit="s"),
            MetricSpec("console_errors", "console.error messages (network 'Failed to load resource' excluded)"),
            MetricSpec("page_errors", "uncaught exceptions in the page"),
            MetricSpec("failed_requests", "requests answered 4xx/5xx or failed on the network (blocked excluded)"),
            MetricSpec("requests", "requests the page made (blocked excluded)"),
            MetricSpec("transfer_bytes", "bytes received over the network, headers included", unit="bytes"),
            MetricSpec("title", "the document's title"),
            MetricSpec("steps_time", "time the steps took, all together", unit="s"),
            MetricSpec("selector", "a selector that must become visible within the timeout", kind="flag"),
            MetricSpec("text_contains", "text the page must show", kind="contains", subject=PAGE_TEXT),
        )
    }

    exports: ClassVar[Mapping[str, tuple[Export, ...]]] = standard_exports(
        "browser", metrics, text=("title",), rename={"status": "probe_browser_status_code"}
    )
    headline: ClassVar[tuple[str, ...]] = ("status", "load")
    secrets: ClassVar[Mapping[str, SecretKind]] = {"url": "url", "headers": "headers", "steps.value": "value"}
    target = url_target

    def default_expect(self, check: BrowserCheck) -> Mapping[str, Any]:
        return {"page_errors": 0}

    async def run(self, check: BrowserCheck, ctx: ProbeContext) -> Observation:
        from prober.probes.browser_pool import BrowserUnavailable, browser_missing, get_pool

        missing = browser_missing()
        if missing is not None:  # the slim image: a sentence, not an ImportError's traceback
            raise ProbeError(missing)
        from prober.probes.browser_run import PageRun, context_options, margin_for

        try:
            pool = await get_pool(ctx.resources)
            give_up_at = ctx.deadline - margin_for(ctx.timeout)
            async with pool.page(give_up_at=give_up_at, **context_options(check)) as page:
                observation = await PageRun(check, ctx, page, wanted_selectors(check), wanted_texts(check)).execute()
        except BrowserUnavailable as exc:
            raise ProbeError(str(exc)) from None
        sentence = self._page_error_sentence(check, observation)
        if sentence is not None:
            details = {**observation.details, "artifacts": list(observation.artifacts)}
            raise ProbeError(sentence, metrics=observation.metrics, details=details)
        return observation

    def _page_error_sentence(self, check: BrowserCheck, observation: Observation) -> str | None:
        """When uncaught exceptions fail the check, the error names the first one, not only the count.

        The runner's sentence would be "page_errors was 1, expected 0"; the exception text is what an
        on-call engineer needs. Raising ProbeError drops the subjects, so this is skipped when a condition
        searches them (text_contains), where it would misreport that assertion.
        """
        count = observation.metrics.get("page_errors")
        if not isinstance(count, int) or count == 0:
            return None
        compiled, _ = compile_conditions(check.expect, check.warn, self.metrics, self.default_expect(check))
        if any(item.spec.kind in ("contains", "matches") for item in compiled):
            return None
        own = [item for item in compiled if item.metric == "page_errors" and item.level == "expect"]
        if not own or judge(own, observation.metrics).status != "down":
            return None
        texts = observation.details.get("page_errors") or ["(no message)"]
        more = f" and {count - 1} more" if count > 1 else ""
        expected = own[0].condition.text
        return f"uncaught exception in the page: {texts[0]}{more} (page_errors was {count}, expected {expected})"
