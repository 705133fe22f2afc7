"""The `browser` check's YAML model: the page, its steps, viewport, headers and blocked URLs.

Its own module so that the probe (browser) and the work inside the page (browser_run) both import it and
neither imports the other at import time. Pure pydantic: no Playwright, no I/O.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from prober.config.models import CheckBase, HttpUrl, StrictModel

__all__ = [
    "PAGE_TEXT",
    "STEP_ACTIONS",
    "BrowserCheck",
    "Step",
    "Viewport",
    "wanted_selectors",
    "wanted_texts",
]

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
    trace_context: bool = Field(
        True, description="send W3C `traceparent`/`tracestate` with the page load (while traces are exported)"
    )
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
