"""SVG badges for READMEs and dashboards: a check's status, or its uptime over 24h, 7d or 30d.

    /badge/api-health.svg              api-health | up
    /badge/api-health.svg?window=7d    api-health 7d | 99.95%
    ?label=API                         replaces the left-hand text

Flat style in the shields.io look (two rounded boxes, Verdana 11px); text widths are estimated from a
table of character widths, so no font is needed. Pure functions: text in, SVG text out; every text is
XML-escaped, so a label cannot inject markup.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

__all__ = [
    "STATUS_COLORS",
    "badge_svg",
    "format_percent",
    "status_badge",
    "text_width",
    "uptime_badge",
    "uptime_color",
]

STATUS_COLORS = {
    "up": "#2ea44f",
    "degraded": "#dfb317",
    "down": "#e05d44",
    "maintenance": "#0a7bbb",
    "unknown": "#9f9f9f",
}
_NARROW = set("fijlrtI!.,:;'|()[]{} ")
_WIDE = set("mwMW@%")


def text_width(text: str) -> int:
    """Approximate width in pixels of `text` in Verdana 11px."""
    width = 0.0
    for char in text:
        if char in _NARROW:
            width += 3.9
        elif char in _WIDE:
            width += 10.5
        elif char.isupper() or char.isdigit():
            width += 7.4
        else:
            width += 6.6
    return round(width)


def badge_svg(label: str, message: str, color: str) -> str:
    """A two-part flat badge."""
    left, right = text_width(label) + 10, text_width(message) + 10
    total = left + right
    label_x, message_x = left / 2, left + right / 2
    label_text, message_text = escape(label), escape(message)
    title = escape(f"{label}: {message}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{escape(color)}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{label_x:g}" y="15" fill="#010101" fill-opacity=".3">{label_text}</text>'
        f'<text x="{label_x:g}" y="14">{label_text}</text>'
        f'<text x="{message_x:g}" y="15" fill="#010101" fill-opacity=".3">{message_text}</text>'
        f'<text x="{message_x:g}" y="14">{message_text}</text></g></svg>'
    )


def status_badge(label: str, status: str) -> str:
    return badge_svg(label, status, STATUS_COLORS.get(status, STATUS_COLORS["unknown"]))


def uptime_color(percent: float | None) -> str:
    if percent is None:
        return STATUS_COLORS["unknown"]
    if percent >= 99.9:
        return "#2ea44f"
    if percent >= 99.0:
        return "#97ca00"
    if percent >= 95.0:
        return "#dfb317"
    return "#e05d44"


def format_percent(percent: float) -> str:
    """99.951 → '99.95%', 100 → '100%', 87.5 → '87.5%' (never rounds up to 100 unless it is 100)."""
    if percent >= 100:
        return "100%"
    text = f"{int(percent * 100) / 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def uptime_badge(label: str, percent: float | None) -> str:
    return badge_svg(label, "no data" if percent is None else format_percent(percent), uptime_color(percent))
