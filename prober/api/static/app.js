// The prober status page: renders api/v1/status (feed version 1) and api/v1/history (daily uptime bars).
// Every text from the feed goes in through textContent, never innerHTML, so a check name or an error
// message cannot inject markup. Refreshes every 30 seconds. Helpers are in common.js (window.proberUI).
"use strict";

(function () {
  const U = window.proberUI;
  const el = U.el;
  const REFRESH_MS = 30000;
  const OPEN_ALL_BELOW = 60; // with fewer checks every group starts open; else only groups with trouble
  const STATUS_TEXT = {
    up: "All systems operational",
    degraded: "Some systems are degraded",
    down: "Some systems are down",
    maintenance: "Maintenance in progress",
    unknown: "No results yet",
  };
  const openGroups = new Map(); // group name → open, kept across refreshes once the visitor toggles

  function renderCheck(check, history, now) {
    const row = el("div", "check");
    row.id = "check-" + check.name;
    row.dataset.status = check.status;
    const info = el("div", "check-info");
    const head = el("div", "check-head");
    const name = el("a", "check-name", check.name);
    name.href = check.page || "checks/" + encodeURIComponent(check.name);
    name.appendChild(el("span", "check-type", check.type));
    head.appendChild(name);
    head.appendChild(U.pill(check.status));
    info.appendChild(head);

    const meta = el("div", "check-meta");
    meta.appendChild(el("span", "", "90d " + U.percent(check.uptime["90d"])));
    meta.appendChild(el("span", "", "24h " + U.percent(check.uptime["24h"])));
    if (check.latency.p95 !== null) meta.appendChild(el("span", "", "p95 " + U.duration(check.latency.p95)));
    if (check.description) meta.appendChild(el("span", "", check.description));
    info.appendChild(meta);

    if (check.locations.length > 1) {
      const locations = el("div", "locations");
      check.locations.forEach((loc) => {
        const item = el("span", "loc loc-" + loc.status, loc.location);
        item.title = loc.status + (loc.started_at ? ", " + U.ago(loc.started_at, now) : "");
        locations.appendChild(item);
      });
      info.appendChild(locations);
    }
    if (check.reason) info.appendChild(U.reasonLine(check, now));
    if (check.maintenance) {
      info.appendChild(el("div", "check-meta check-maintenance", "Maintenance " + check.maintenance.name + " until " + U.utcTime(check.maintenance.ends_at, now)));
    } else if (check.scheduled_maintenance) {
      const window = check.scheduled_maintenance;
      info.appendChild(el("div", "check-meta check-scheduled", "Maintenance " + window.name + " scheduled: " + U.utcRange(window.starts_at, window.ends_at, now)));
    }
    row.appendChild(info);
    row.appendChild(U.renderBars(history.days, history.checks[check.name]));
    return row;
  }

  function renderGroups(feed, history) {
    const container = document.getElementById("groups");
    const byName = new Map(feed.checks.map((check) => [check.name, check]));
    const fragment = document.createDocumentFragment();
    feed.groups.forEach((group) => {
      const key = group.name === null ? "" : group.name;
      const details = el("details", "group");
      details.dataset.group = key;
      const trouble = group.status === "down" || group.status === "degraded";
      const remembered = openGroups.get(key);
      details.open = remembered !== undefined ? remembered : feed.checks.length < OPEN_ALL_BELOW || trouble;
      details.addEventListener("toggle", () => openGroups.set(key, details.open));
      const summary = el("summary");
      const label = group.name === null ? (feed.groups.length > 1 ? "Other checks" : "Checks") : group.name;
      summary.appendChild(el("span", "name", label + " (" + group.checks.length + ")"));
      summary.appendChild(U.pill(group.status));
      details.appendChild(summary);
      group.checks.forEach((name) => {
        const check = byName.get(name);
        if (check) details.appendChild(renderCheck(check, history, feed.generated_at));
      });
      fragment.appendChild(details);
    });
    container.replaceChildren(fragment);
  }

  function incidentItem(incident, resolved, now) {
    const item = el("li", resolved ? "resolved" : "");
    item.dataset.incident = String(incident.id);
    const title = el("div", "incident-title");
    const link = el("a", "", incident.check);
    link.href = "checks/" + encodeURIComponent(incident.check);
    title.appendChild(link);
    title.appendChild(document.createTextNode(resolved ? " was down" : " is down"));
    item.appendChild(title);
    const where = incident.locations && incident.locations.length ? " · down from " + incident.locations.join(", ") : "";
    let detail;
    if (resolved) {
      detail = U.dateTime(incident.started_at) + where + " · resolved after " + U.duration(incident.downtime_seconds);
    } else {
      const sofar = incident.duration_seconds !== undefined ? incident.duration_seconds : U.secondsSince(incident.started_at, now);
      detail = "Since " + U.dateTime(incident.started_at) + " · " + U.span(sofar) + " so far" + where;
    }
    item.appendChild(el("div", "incident-detail", detail));
    if (incident.error) {
      const error = el("div", "incident-error", (resolved ? "" : "First error: ") + incident.error);
      error.title = incident.error;
      item.appendChild(error);
    }
    return item;
  }

  function renderIncidents(feed) {
    const now = feed.generated_at;
    const open = feed.incidents.filter((incident) => incident.open);
    const past = feed.incidents.filter((incident) => !incident.open);
    const openSection = document.getElementById("open-incidents");
    const openList = document.getElementById("open-incident-list");
    openList.replaceChildren(...open.map((incident) => incidentItem(incident, false, now)));
    openSection.hidden = open.length === 0;
    const pastSection = document.getElementById("past-incidents");
    document.getElementById("past-incident-list").replaceChildren(...past.map((incident) => incidentItem(incident, true, now)));
    pastSection.hidden = past.length === 0;

    const windows = feed.maintenance || [];
    const list = document.getElementById("maintenance-list");
    list.replaceChildren(
      ...windows.map((window) => {
        const item = el("li", "maintenance" + (window.active ? "" : " upcoming"));
        item.appendChild(el("div", "incident-title", window.name + (window.active ? " (in progress)" : "")));
        const when = window.active
          ? "in progress until " + U.utcTime(window.ends_at, now)
          : "scheduled: " + U.utcRange(window.starts_at, window.ends_at, now);
        const covers = window.checks.length === 1 && window.checks[0] === "*" ? "" : " · " + window.checks.join(", ");
        item.appendChild(el("div", "incident-detail", when + covers));
        return item;
      })
    );
    document.getElementById("maintenance").hidden = windows.length === 0;

    const announcements = feed.announcements || [];
    document.getElementById("announcement-list").replaceChildren(...announcements.map((item) => U.announcementItem(item, now)));
    document.getElementById("announcements").hidden = announcements.length === 0;
  }

  function render(feed, history) {
    document.title = feed.title;
    document.getElementById("title").textContent = feed.title;
    const banner = document.getElementById("banner");
    banner.className = "banner banner-" + feed.status;
    const counts = feed.summary;
    let text = STATUS_TEXT[feed.status] || feed.status;
    if (feed.status === "down") text = counts.down + " of " + counts.total + " checks are down";
    if (feed.status === "degraded") text = counts.degraded + " of " + counts.total + " checks are degraded";
    document.getElementById("banner-text").textContent = text;
    document.getElementById("updated").textContent = "Updated " + U.dateTime(feed.generated_at);
    renderIncidents(feed);
    renderGroups(feed, history);
    document.body.dataset.ready = "true";
  }

  async function getJSON(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!response.ok) throw new Error(path + " answered " + response.status);
    return response.json();
  }

  let lastHistory = { days: [], checks: {} };

  async function refresh() {
    const error = document.getElementById("error");
    try {
      const [feed, history] = await Promise.all([
        getJSON("api/v1/status"),
        getJSON("api/v1/history?days=90").catch(() => lastHistory),
      ]);
      lastHistory = history;
      render(feed, history);
      error.hidden = true;
    } catch (exc) {
      error.textContent = "Could not load the status: " + exc.message;
      error.hidden = false;
    }
  }

  refresh();
  setInterval(refresh, REFRESH_MS);
})();
