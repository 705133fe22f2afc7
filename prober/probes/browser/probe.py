"""The `browser` check type (docs/checks/browser.md): load a page in headless Chromium the way a person would.

A run opens a fresh context on the process's shared Chromium (browser_pool), injects the Web Vitals
observers (browser_vitals), loads `url` to its `wait_until` event, plays the `steps`, waits for the
`selector` and `text_contains` the conditions ask for, and reports timings, counts and the page text; the
work inside the page lives in browser_run. Screenshots are saved under the runner's artifacts directory.

This module holds the probe; the YAML model is browser_config's (re-exported here). Neither imports
Playwright at import time, so
`prober validate` and the other check types never pay for it. Like every probe it measures and never
judges: it asks `ctx.judge` only to decide whether an `on_failure` screenshot is due, and reads the
conditions of `selector`/`text_contains` because they are parameters (what to wait for).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from prober.config.conditions import MetricSpec, compile_conditions, judge
from prober.probes.base import Observation, ProbeContext, ProbeError
from prober.probes.browser.config import PAGE_TEXT, BrowserCheck, Step, Viewport, wanted_selectors, wanted_texts
from prober.probes.registry import Export, SecretKind, register, standard_exports, url_target

__all__ = ["PAGE_TEXT", "BrowserCheck", "BrowserProbe", "Step", "Viewport", "wanted_selectors", "wanted_texts"]


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
        from prober.probes.browser.pool import BrowserUnavailable, browser_missing, get_pool

        missing = browser_missing()
        if missing is not None:  # the slim image: a sentence, not an ImportError's traceback
            raise ProbeError(missing)
        from prober.probes.browser.run import PageRun, context_options, margin_for

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
