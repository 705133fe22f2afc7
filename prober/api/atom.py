"""`GET /feed.atom`: incidents and announcements as an Atom feed (RFC 4287), the subscription feed readers
and chat tools understand.

One entry per incident, whose id never changes (`urn:uuid:` derived from the page's address and the
incident's id), so a reader shows one item that is updated when the incident resolves (`<updated>` moves
and the title says "Resolved"); one entry per announcement shown on the status page, with the id the
status page uses. Text comes from the API's documents, already scrubbed of secrets; the XML is built
with ElementTree, so a check name or a message cannot inject markup.

It only formats what it is given: no store access, no clock of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from xml.etree import ElementTree as ET

__all__ = ["CONTENT_TYPE", "atom_feed", "incident_entry_id"]

CONTENT_TYPE = "application/atom+xml"
_NS = "http://www.w3.org/2005/Atom"


def incident_entry_id(base_url: str, incident_id: Any) -> str:
    """The entry id of one incident: the same every time the feed is built, from any replica of the page."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{base_url.rstrip('/')}/incidents/{incident_id}").urn


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def _incident_entry(feed: ET.Element, incident: Mapping[str, Any], base: str) -> str:
    check = str(incident["check"])
    resolved = incident.get("resolved_at")
    updated = str(resolved or incident["started_at"])
    entry = _sub(feed, "entry")
    _sub(entry, "id", incident_entry_id(base, incident["id"]))
    title = f"Resolved: {check}" if resolved else f"Down: {check}"
    _sub(entry, "title", title)
    _sub(entry, "published", str(incident["started_at"]))
    _sub(entry, "updated", updated)
    _sub(entry, "link", href=f"{base}/checks/{check}", rel="alternate")
    _sub(entry, "category", term="incident")
    locations = ", ".join(incident.get("locations") or []) or "every location"
    lines = [f"{check} went down at {incident['started_at']} ({locations})."]
    if incident.get("error"):
        lines.append(f"Error: {incident['error']}")
    if resolved:
        downtime = incident.get("downtime_seconds")
        lasted = f" after {round(float(downtime))} s" if isinstance(downtime, int | float) else ""
        lines.append(f"Resolved at {resolved}{lasted}.")
    _sub(entry, "content", "\n".join(lines), type="text")
    return updated


def _announcement_entry(feed: ET.Element, item: Mapping[str, Any], base: str, now: str) -> str:
    updated = str(item.get("from") or now)
    entry = _sub(feed, "entry")
    _sub(entry, "id", uuid.uuid5(uuid.NAMESPACE_URL, f"{base}/announcements/{item['id']}").urn)
    _sub(entry, "title", str(item["title"]))
    _sub(entry, "updated", updated)
    _sub(entry, "link", href=f"{base}/", rel="alternate")
    _sub(entry, "category", term=f"announcement {item.get('severity', 'info')}".replace(" ", "-"))
    _sub(entry, "content", str(item.get("message") or item["title"]), type="text")
    return updated


def atom_feed(
    title: str,
    base_url: str,
    incidents: Iterable[Mapping[str, Any]],
    announcements: Iterable[Mapping[str, Any]],
    now: str,
) -> bytes:
    """The feed document. `base_url`: the page's origin; times are the API's ISO 8601 texts."""
    base = base_url.rstrip("/")
    feed = ET.Element("feed", {"xmlns": _NS})
    _sub(feed, "id", uuid.uuid5(uuid.NAMESPACE_URL, f"{base}/feed.atom").urn)
    _sub(feed, "title", title)
    _sub(feed, "subtitle", "Incidents and announcements")
    _sub(feed, "link", href=f"{base}/feed.atom", rel="self", type=CONTENT_TYPE)
    _sub(feed, "link", href=f"{base}/", rel="alternate", type="text/html")
    author = _sub(feed, "author")
    _sub(author, "name", title)
    _sub(feed, "generator", "prober")
    updated_at = _sub(feed, "updated", now)
    moments = [_announcement_entry(feed, item, base, now) for item in announcements]
    moments += [_incident_entry(feed, item, base) for item in incidents]
    updated_at.text = max(moments, default=now)
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body
