"""Browser check definitions: what `prober validate` accepts and how it explains what it rejects.

No browser runs here, except to show that a missing Chromium is a clear `down` result.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from browser_pages import write_checks
from click.testing import CliRunner

from prober.cli.commands import cli
from prober.config.loader import ConfigError, load_config
from prober.probes import PROBES
from prober.probes.browser.pool import BrowserUnavailable, chromium_executable, page_slots
from prober.probes.browser.probe import BrowserCheck
from prober.scheduling.runner import Runner

REPO = Path(__file__).resolve().parents[1]


def _load(tmp_path: Path, **check: Any) -> BrowserCheck:
    config = load_config([write_checks(tmp_path, [{"name": "page", "type": "browser", **check}])])
    model = config.checks[0].model
    assert isinstance(model, BrowserCheck)
    return model


def _problems(tmp_path: Path, **check: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config([write_checks(tmp_path, [{"name": "page", "type": "browser", **check}])])
    return [f"field {problem.field!r}: {problem.message}" for problem in caught.value.problems]


def test_defaults_are_load_on_failure_screenshots_and_a_720p_viewport(tmp_path: Path):
    model = _load(tmp_path, url="https://example.com/")

    assert model.wait_until == "load"
    assert model.screenshot == "on_failure"
    assert (model.viewport.width, model.viewport.height) == (1280, 720)
    assert model.steps == [] and model.block == [] and model.headers == {}
    assert PROBES["browser"].default_expect(model) == {"page_errors": 0}


def test_steps_accept_the_four_actions(tmp_path: Path):
    model = _load(
        tmp_path,
        url="https://shop.example.com/",
        steps=[
            {"click": "text=Sign in"},
            {"fill": "#email", "value": "probe@example.com"},
            {"fill": "#pin", "value": 1234},
            {"wait_for": "#dashboard"},
            {"goto": "/basket"},
        ],
    )

    assert [step.label for step in model.steps] == [
        "click 'text=Sign in'",
        "fill '#email'",
        "fill '#pin'",
        "wait_for '#dashboard'",
        "goto '/basket'",
    ]
    assert model.steps[2].value == "1234"


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            {"clik": "#buy"},
            "unknown key 'clik' in a step; a step is {click: SELECTOR}, {fill: SELECTOR, value: TEXT}, "
            "{wait_for: SELECTOR} or {goto: URL}",
        ),
        ({"fill": "#email"}, "a fill step needs a value: {fill: SELECTOR, value: TEXT}"),
        ({"click": "#a", "goto": "/b"}, "a step needs exactly one of click, fill, wait_for, goto (got click, goto)"),
        ({"click": "#a", "value": "x"}, "'value' belongs to a fill step only, not to click"),
        ({"wait_for": ""}, "wait_for of a step must not be empty"),
        ("click #buy", "expected a step like {click: SELECTOR}"),
    ],
)
def test_bad_steps_are_rejected_with_a_sentence_naming_the_step(tmp_path: Path, step: Any, message: str):
    (problem,) = _problems(tmp_path, url="https://example.com/", steps=[{"goto": "/"}, step])

    assert problem.startswith("field 'steps[1]': " + message)


def test_viewport_may_be_written_as_width_x_height(tmp_path: Path):
    model = _load(tmp_path, url="https://example.com/", viewport="390x844")

    assert (model.viewport.width, model.viewport.height) == (390, 844)
    (problem,) = _problems(tmp_path, url="https://example.com/", viewport="huge")
    assert "expected a viewport like 1280x720 or {width: 1280, height: 720}, got 'huge'" in problem


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"url": "example.com"}, "field 'url': expected an http:// or https:// URL, got 'example.com'"),
        ({"url": "https://a/", "wait_until": "idle"}, "field 'wait_until'"),
        ({"url": "https://a/", "screenshot": "sometimes"}, "field 'screenshot'"),
        (
            {"url": "https://a/", "expect": {"lcpp": "< 2s"}},
            "field 'expect.lcpp': unknown metric 'lcpp'; valid metrics:",
        ),
        ({"url": "https://a/", "wait": "load"}, "field 'wait': unknown key 'wait'; valid keys:"),
    ],
)
def test_invalid_browser_checks_name_the_field(tmp_path: Path, check: dict[str, Any], message: str):
    problems = _problems(tmp_path, **check)

    assert any(problem.startswith(message) for problem in problems), problems


def test_selector_in_both_expect_and_warn_with_different_values_is_rejected(tmp_path: Path):
    (problem,) = _problems(
        tmp_path, url="https://example.com/", expect={"selector": "#main"}, warn={"selector": "#ads"}
    )

    assert "selector is set in both expect and warn with different values" in problem


def test_every_spec_metric_is_known_to_conditions(tmp_path: Path):
    spec_metrics = {
        "load", "ttfb", "fcp", "lcp", "cls", "dom_content_loaded", "console_errors", "page_errors",
        "failed_requests", "requests", "transfer_bytes", "selector", "text_contains", "title",
    }  # fmt: skip
    assert spec_metrics <= set(PROBES["browser"].metrics)


def test_example_browser_check_file_validates():
    result = CliRunner().invoke(cli, ["validate", str(REPO / "checks" / "landing-page-browser.yaml")])

    assert result.exit_code == 0, result.output
    assert "1 check(s) in 1 file(s) are valid." in result.output


def test_loading_checks_does_not_import_playwright():
    code = (
        "import sys; from prober.config.loader import load_config; "
        f"load_config([{str(REPO / 'checks' / 'landing-page-browser.yaml')!r}]); "
        "print('playwright' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)

    assert out.stdout.strip() == "False"


def test_chromium_comes_from_prober_chromium_else_the_system_path(tmp_path: Path):
    binary = tmp_path / "chrome"
    binary.write_text("#!/bin/sh\n")

    assert chromium_executable({"PROBER_CHROMIUM": str(binary)}) == str(binary)
    with pytest.raises(BrowserUnavailable, match="PROBER_CHROMIUM is '/nowhere/chrome', which does not exist"):
        chromium_executable({"PROBER_CHROMIUM": "/nowhere/chrome"})
    expected = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    assert chromium_executable({}) == expected


def test_page_bound_comes_from_prober_browser_pages():
    assert page_slots({}) == 2
    assert page_slots({"PROBER_BROWSER_PAGES": "4"}) == 4
    with pytest.raises(BrowserUnavailable, match="PROBER_BROWSER_PAGES must be a whole number of at least 1, got '0'"):
        page_slots({"PROBER_BROWSER_PAGES": "0"})


async def test_missing_chromium_is_a_down_result_that_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PROBER_CHROMIUM", str(tmp_path / "no-chromium-here"))
    config = load_config([write_checks(tmp_path, [{"name": "page", "type": "browser", "url": "http://127.0.0.1/"}])])
    runner = Runner(artifacts_dir=tmp_path)
    try:
        result = await runner.run(config.checks[0])
    finally:
        await runner.resources.aclose()

    assert result.status == "down"
    assert result.error == (
        f"PROBER_CHROMIUM is '{tmp_path / 'no-chromium-here'}', which does not exist; point it at a Chromium "
        "binary or unset it to use /usr/bin/chromium"
    )
