"""The sentences browser results show for Playwright's errors, and the reading of Web Vitals numbers.

Pure functions, fed with error texts in the exact shape Playwright 1.x produces them.
"""

from __future__ import annotations

import pytest

from prober.probes.browser.recorder import call_log_hint, first_line, network_sentence
from prober.probes.browser.run import margin_for
from prober.probes.browser.vitals import vitals_metrics


class FakePlaywrightError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        (
            "Page.goto: net::ERR_CONNECTION_REFUSED at http://127.0.0.1:9/\nCall log:\n  - navigating to …",
            "connection refused (net::ERR_CONNECTION_REFUSED)",
        ),
        (
            "Page.goto: net::ERR_NAME_NOT_RESOLVED at https://nope.invalid/",
            "DNS lookup failed (name not resolved) (net::ERR_NAME_NOT_RESOLVED)",
        ),
        (
            "Page.goto: net::ERR_CERT_DATE_INVALID at https://old/",
            "the TLS certificate is not valid (net::ERR_CERT_DATE_INVALID)",
        ),
        ("Page.goto: net::ERR_HTTP2_PROTOCOL_ERROR at https://x/", "net::ERR_HTTP2_PROTOCOL_ERROR"),
        (
            "Page.click: Target page, context or browser has been closed",
            "Target page, context or browser has been closed",
        ),
    ],
)
def test_network_errors_read_as_short_sentences(text: str, sentence: str):
    assert network_sentence(FakePlaywrightError(text)) == sentence


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ('Page.click: Timeout 500ms exceeded.\nCall log:\n  - waiting for locator("#nope")\n', "no element matched"),
        (
            'Page.click: Timeout 500ms exceeded.\nCall log:\n  - waiting for locator("#add")\n'
            '    - locator resolved to <button id="add" disabled>Add</button>\n  - attempting click action\n'
            "    2 × waiting for element to be visible, enabled and stable\n      - element is not enabled\n"
            "    - retrying click action\n      - waiting 100ms\n",
            "element is not enabled",
        ),
        (
            'Page.wait_for_selector: Timeout 500ms exceeded.\nCall log:\n  - waiting for locator("#hidden") to be'
            ' visible\n    6 × locator resolved to hidden <div id="hidden">x</div>\n',
            'locator resolved to hidden <div id="hidden">x</div>',
        ),
        ("Page.goto: Timeout 500ms exceeded.", ""),
    ],
)
def test_a_timed_out_step_says_what_it_was_still_waiting_for(text: str, hint: str):
    assert call_log_hint(FakePlaywrightError(text)) == hint


def test_first_line_drops_the_api_prefix():
    error = FakePlaywrightError('Page.click: Unexpected token "!" while parsing css selector "!!bad".\nCall log:')
    assert first_line(error) == 'Unexpected token "!" while parsing css selector "!!bad".'


def test_vitals_are_seconds_and_missing_ones_are_null():
    metrics = vitals_metrics({"ttfb": 12.3, "dom_content_loaded": 80, "fcp": 100.04, "lcp": None, "cls": 0.123456})

    assert metrics == {"ttfb": 0.0123, "dom_content_loaded": 0.08, "fcp": 0.1, "lcp": None, "cls": 0.1235}


@pytest.mark.parametrize(("timeout", "margin"), [(1.0, 0.3), (2.0, 0.5), (4.0, 1.0), (30.0, 1.0)])
def test_the_run_keeps_a_margin_before_the_timeout_for_its_screenshot(timeout: float, margin: float):
    assert margin_for(timeout) == pytest.approx(margin)
