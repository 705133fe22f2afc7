"""The JavaScript a browser check injects before navigation, and the reading of its numbers.

`INIT_SCRIPT` runs in every document before any of the page's own scripts (Playwright's init scripts).
It restores Chrome's usual popup blocking (Playwright disables it): `window.open` without a recent click
or key press returns null, so a page opening popups in a loop opens none. In the top frame it then starts
PerformanceObservers for Largest Contentful Paint and layout shifts (CLS with the session windows of
web-vitals: shifts less than 1 s apart, at most 5 s per window, the worst window wins) and keeps the
latest values on a hidden, non-enumerable property. `READ_SCRIPT` collects those plus the Navigation
Timing and Paint Timing entries, the title and (when asked) the visible text, in one call;
`vitals_metrics` turns milliseconds into the seconds every prober metric uses.

This module never talks to a browser itself and never judges the numbers: it is text and arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["INIT_SCRIPT", "READ_SCRIPT", "vitals_metrics"]

INIT_SCRIPT = """
(() => {
  // Chrome's popup blocker, which Playwright turns off: window.open opens nothing unless a real input
  // event (a click or key press from a step) came within the last 5 s, Chrome's transient activation.
  // navigator.userActivation cannot tell: Playwright's own evaluations count as user gestures.
  let lastInput = -Infinity;
  for (const type of ['pointerdown', 'mousedown', 'click', 'keydown', 'touchstart']) {
    addEventListener(type, (event) => { if (event.isTrusted) lastInput = performance.now(); }, true);
  }
  const open = window.open;
  window.open = function (...args) {
    return performance.now() - lastInput < 5000 ? open.apply(this, args) : null;
  };
  if (window.top !== window || window.__proberVitals) return;
  const vitals = { lcp: null, cls: 0, waiting: [] };
  Object.defineProperty(window, '__proberVitals', { value: vitals, enumerable: false });
  try { performance.setResourceTimingBufferSize(1000); } catch (e) {}
  const observe = (type, onEntry) => {
    try {
      new PerformanceObserver((list) => list.getEntries().forEach(onEntry)).observe({ type, buffered: true });
    } catch (e) {}
  };
  observe('largest-contentful-paint', (entry) => {
    vitals.lcp = entry.startTime;
    vitals.waiting.splice(0).forEach((resolve) => resolve());
  });
  let windowValue = 0, windowFirst = 0, windowLast = 0;
  observe('layout-shift', (entry) => {
    if (entry.hadRecentInput) return;
    if (windowValue && entry.startTime - windowLast < 1000 && entry.startTime - windowFirst < 5000) {
      windowValue += entry.value;
    } else {
      windowValue = entry.value;
      windowFirst = entry.startTime;
    }
    windowLast = entry.startTime;
    if (windowValue > vitals.cls) vitals.cls = windowValue;
  });
})();
"""

READ_SCRIPT = """
async ({ vitals: wantVitals, text: wantText }) => {
  const found = { title: document.title, text: null };
  if (wantText) found.text = document.body ? document.body.innerText : '';
  if (!wantVitals) return found;
  const vitals = window.__proberVitals || { lcp: null, cls: null, waiting: [] };
  // Paint entries arrive a few frames after the paint itself, which may be just after `load`:
  // wait for the first LCP entry for up to a second (a page that paints nothing pays the whole second).
  if (vitals.lcp === null) {
    await new Promise((resolve) => { vitals.waiting.push(resolve); setTimeout(resolve, 1000); });
  }
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  const positive = (value) => (typeof value === 'number' && value > 0 ? value : null);
  return Object.assign(found, {
    ttfb: nav ? positive(nav.responseStart - nav.startTime) : null,
    dom_content_loaded: nav ? positive(nav.domContentLoadedEventEnd - nav.startTime) : null,
    fcp: fcp ? fcp.startTime : null,
    lcp: vitals.lcp,
    cls: vitals.cls,
  });
}
"""

_MILLISECOND_METRICS = ("ttfb", "dom_content_loaded", "fcp", "lcp")


def vitals_metrics(raw: Mapping[str, Any]) -> dict[str, float | None]:
    """Metrics in seconds (rounded to 0.1 ms) from what READ_SCRIPT returned; CLS stays unitless."""
    metrics: dict[str, float | None] = {}
    for name in _MILLISECOND_METRICS:
        value = raw.get(name)
        metrics[name] = round(float(value) / 1000, 4) if isinstance(value, int | float) else None
    cls = raw.get("cls")
    metrics["cls"] = round(float(cls), 4) if isinstance(cls, int | float) else None
    return metrics
