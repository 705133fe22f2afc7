"""The feed in the Atlassian Statuspage public API format (`/api/v2/summary.json`, `/api/v2/status.json`),
so status widgets and aggregators written for Statuspage read prober unchanged.

Mapping: a check is a component (its group, when it has one, a group component holding it); check
status → component status: up → operational, degraded → degraded_performance, down → major_outage when
every reporting location is down else partial_outage, maintenance → under_maintenance. Checks without a
result yet are left out (Statuspage has no "unknown"). Open incidents are `investigating` incidents with
impact major (critical when every location is down); active and upcoming maintenance windows are
scheduled maintenances. Announcements shown now (the feed's `announcements`) are incidents too: impact
major for `outage`, maintenance for `maintenance`, none for `info`, with the announcement's message as
their update and the checks it names as components; a maintenance announcement listed ahead of time is
a scheduled maintenance. The page indicator is critical when every component is in major outage, major
when any is in an outage, minor when any is degraded, else none.

Pure functions of a feed document (feed.py); nothing here reads the store or the clock.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["COMPONENT_STATUS", "status_json", "summary_json"]

COMPONENT_STATUS = {
    "up": "operational",
    "degraded": "degraded_performance",
    "maintenance": "under_maintenance",
}
_DESCRIPTIONS = {
    "none": "All Systems Operational",
    "minor": "Minor Service Outage",
    "major": "Partial System Outage",
    "critical": "Major Service Outage",
}


def _id(*parts: object) -> str:
    """A stable Statuspage-looking id (12 lowercase alphanumerics) for a name."""
    return hashlib.sha256("\x00".join(str(part) for part in parts).encode()).hexdigest()[:12]


def _page(feed: dict[str, Any], url: str) -> dict[str, Any]:
    return {
        "id": _id("page", feed["title"]),
        "name": feed["title"],
        "url": url,
        "time_zone": "Etc/UTC",
        "updated_at": feed["generated_at"],
    }


def _component_status(check: dict[str, Any]) -> str:
    status = str(check["status"])
    if status != "down":
        return COMPONENT_STATUS[status]
    reporting = [item for item in check["locations"] if item["status"] != "unknown"]
    all_down = reporting and all(item["status"] == "down" for item in reporting)
    return "major_outage" if all_down else "partial_outage"


def _indicator(statuses: list[str]) -> str:
    if statuses and all(status == "major_outage" for status in statuses):
        return "critical"
    if any(status in ("major_outage", "partial_outage") for status in statuses):
        return "major"
    if any(status == "degraded_performance" for status in statuses):
        return "minor"
    return "none"


def _status(components: list[dict[str, Any]], feed: dict[str, Any]) -> dict[str, str]:
    indicator = _indicator([item["status"] for item in components if not item["group"]])
    description = _DESCRIPTIONS[indicator]
    if indicator == "none" and feed["status"] == "maintenance":
        description = "Service Under Maintenance"
    return {"indicator": indicator, "description": description}


def _components(feed: dict[str, Any], page_id: str) -> list[dict[str, Any]]:
    updated = feed["generated_at"]
    components: list[dict[str, Any]] = []
    by_name = {check["name"]: check for check in feed["checks"]}
    position = 0
    for group in feed["groups"]:
        members = [by_name[name] for name in group["checks"] if by_name[name]["status"] != "unknown"]
        if not members:
            continue
        group_id = _id("group", group["name"]) if group["name"] is not None else None
        children: list[dict[str, Any]] = []
        for check in members:
            position += 1
            children.append(
                {
                    "id": _id("check", check["name"]),
                    "name": check["name"],
                    "status": _component_status(check),
                    "created_at": updated,
                    "updated_at": check["since"] or updated,
                    "position": position,
                    "description": check["description"],
                    "showcase": True,
                    "start_date": None,
                    "group_id": group_id,
                    "page_id": page_id,
                    "group": False,
                    "only_show_if_degraded": False,
                }
            )
        if group_id is not None:
            position += 1
            statuses = [child["status"] for child in children]
            worst = max(statuses, key=_COMPONENT_ORDER.index)
            components.append(
                {
                    "id": group_id,
                    "name": group["name"],
                    "status": worst,
                    "created_at": updated,
                    "updated_at": updated,
                    "position": position,
                    "description": None,
                    "showcase": False,
                    "start_date": None,
                    "group_id": None,
                    "page_id": page_id,
                    "group": True,
                    "only_show_if_degraded": False,
                    "components": [child["id"] for child in children],
                }
            )
        components.extend(children)
    return components


_COMPONENT_ORDER = ["operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"]


def _incidents(feed: dict[str, Any], components: list[dict[str, Any]], page_id: str) -> list[dict[str, Any]]:
    by_name = {item["name"]: item for item in components if not item["group"]}
    incidents = []
    for check in feed["checks"]:
        incident = check["incident"]
        if incident is None:
            continue
        component = by_name.get(check["name"])
        incident_id = _id("incident", incident["id"])
        all_down = component is not None and component["status"] == "major_outage"
        where = ", ".join(incident["locations"])
        body = f"{check['name']} is down" + (f" from {where}" if where else "")
        if incident["error"]:
            body += f": {incident['error']}"
        incidents.append(
            {
                "id": incident_id,
                "name": f"{check['name']} is down",
                "status": "investigating",
                "created_at": incident["started_at"],
                "updated_at": incident["started_at"],
                "monitoring_at": None,
                "resolved_at": None,
                "impact": "critical" if all_down else "major",
                "shortlink": "",
                "started_at": incident["started_at"],
                "page_id": page_id,
                "incident_updates": [
                    {
                        "id": _id("update", incident["id"]),
                        "status": "investigating",
                        "body": body,
                        "incident_id": incident_id,
                        "created_at": incident["started_at"],
                        "updated_at": incident["started_at"],
                        "display_at": incident["started_at"],
                        "affected_components": None,
                        "deliver_notifications": True,
                        "custom_tweet": None,
                        "tweet_id": None,
                    }
                ],
                "components": [component] if component is not None else [],
            }
        )
    incidents.extend(_announcement_incidents(feed, by_name, page_id))
    incidents.sort(key=lambda item: item["started_at"], reverse=True)
    return incidents


_ANNOUNCEMENT_IMPACT = {"outage": "major", "maintenance": "maintenance", "info": "none"}
_ANNOUNCEMENT_STATUS = {"outage": "identified", "maintenance": "in_progress", "info": "monitoring"}


def _announcement_entry(
    item: dict[str, Any], by_name: dict[str, dict[str, Any]], page_id: str, status: str, impact: str, at: str
) -> dict[str, Any]:
    entry_id = _id("announcement", item["id"])
    components = [by_name[name] for name in item["affected"] if name in by_name] if item["checks"] else []
    return {
        "id": entry_id,
        "name": item["title"],
        "status": status,
        "created_at": at,
        "updated_at": at,
        "monitoring_at": None,
        "resolved_at": None,
        "impact": impact,
        "shortlink": "",
        "started_at": at,
        "page_id": page_id,
        "incident_updates": [
            {
                "id": _id("announcement-update", item["id"]),
                "status": status,
                "body": item["message"] or item["title"],
                "incident_id": entry_id,
                "created_at": at,
                "updated_at": at,
                "display_at": at,
                "affected_components": None,
                "deliver_notifications": False,
                "custom_tweet": None,
                "tweet_id": None,
            }
        ],
        "components": components,
    }


def _announcement_incidents(
    feed: dict[str, Any], by_name: dict[str, dict[str, Any]], page_id: str
) -> list[dict[str, Any]]:
    found = []
    for item in feed.get("announcements", []):
        if not item["active"]:
            continue
        severity = item["severity"]
        at = item["from"] or feed["generated_at"]
        found.append(
            _announcement_entry(
                item, by_name, page_id, _ANNOUNCEMENT_STATUS[severity], _ANNOUNCEMENT_IMPACT[severity], at
            )
        )
    return found


def _announcement_maintenances(
    feed: dict[str, Any], components: list[dict[str, Any]], page_id: str
) -> list[dict[str, Any]]:
    by_name = {item["name"]: item for item in components if not item["group"]}
    found = []
    for item in feed.get("announcements", []):
        if item["active"] or item["severity"] != "maintenance":
            continue
        entry = _announcement_entry(item, by_name, page_id, "scheduled", "maintenance", item["from"])
        entry["scheduled_for"] = item["from"]
        entry["scheduled_until"] = item["until"]
        found.append(entry)
    return found


def _maintenances(feed: dict[str, Any], page_id: str) -> list[dict[str, Any]]:
    found = []
    for window in feed["maintenance"]:
        maintenance_id = _id("maintenance", window["name"], window["starts_at"])
        status = "in_progress" if window["active"] else "scheduled"
        found.append(
            {
                "id": maintenance_id,
                "name": window["name"],
                "status": status,
                "created_at": window["starts_at"],
                "updated_at": feed["generated_at"],
                "monitoring_at": None,
                "resolved_at": None,
                "impact": "maintenance",
                "shortlink": "",
                "started_at": window["starts_at"],
                "page_id": page_id,
                "scheduled_for": window["starts_at"],
                "scheduled_until": window["ends_at"],
                "incident_updates": [
                    {
                        "id": _id("maintenance-update", window["name"], window["starts_at"]),
                        "status": status,
                        "body": f"Maintenance window {window['name']} ({', '.join(window['checks'])})",
                        "incident_id": maintenance_id,
                        "created_at": window["starts_at"],
                        "updated_at": window["starts_at"],
                        "display_at": window["starts_at"],
                        "affected_components": None,
                        "deliver_notifications": False,
                        "custom_tweet": None,
                        "tweet_id": None,
                    }
                ],
                "components": [],
            }
        )
    return found


def summary_json(feed: dict[str, Any], *, url: str = "") -> dict[str, Any]:
    """`/api/v2/summary.json`: page, components, unresolved incidents, scheduled maintenances, status.
    `url` is the page's public address (Statuspage's `page.url`)."""
    page = _page(feed, url)
    components = _components(feed, page["id"])
    return {
        "page": page,
        "components": components,
        "incidents": _incidents(feed, components, page["id"]),
        "scheduled_maintenances": _maintenances(feed, page["id"])
        + _announcement_maintenances(feed, components, page["id"]),
        "status": _status(components, feed),
    }


def status_json(feed: dict[str, Any], *, url: str = "") -> dict[str, Any]:
    """`/api/v2/status.json`: page and status indicator only."""
    page = _page(feed, url)
    return {"page": page, "status": _status(_components(feed, page["id"]), feed)}
