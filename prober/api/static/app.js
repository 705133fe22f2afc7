// The prober status page: renders api/v1/status (feed version 1) and api/v1/history (daily uptime bars).
// Every text from the feed goes in through textContent, never innerHTML, so a check name or an error
// message cannot inject markup. Refreshes every 30 seconds.
"use strict";

(function () {
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

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function ago(iso) {
    if (!iso) return "never";
    const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 60) return Math.round(seconds) + "s ago";
    if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.round(seconds / 3600) + " h ago";
    return Math.round(seconds / 86400) + " d ago";
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    if (seconds < 3600) return Math.round(seconds / 60) + " min";
    if (seconds < 86400) return (seconds / 3600).toFixed(1) + " h";
    return (seconds / 86400).toFixed(1) + " d";
  }

  function percent(value) {
    if (value === null || value === undefined) return "–";
    if (value >= 100) return "100%";
    return (Math.floor(value * 100) / 100).toFixed(2) + "%";
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "";
  }

  function pill(status) {
    return el("span", "pill pill-" + status, status);
  }

  function barClass(value) {
    if (value === null || value === undefined) return "bar";
    if (value >= 99.9) return "bar bar-high";
    if (value >= 99) return "bar bar-mid";
    if (value >= 95) return "bar bar-low";
    return "bar bar-bad";
  }

  function renderBars(days, values) {
    const wrap = el("div", "bars-wrap");
    const bars = el("div", "bars");
    bars.setAttribute("role", "img");
    const known = (values || []).filter((v) => v !== null);
    bars.setAttribute("aria-label", days.length + "-day uptime bars" + (known.length ? "" : ", no data"));
    days.forEach((day, index) => {
      const value = values ? values[index] : null;
      const bar = el("div", barClass(value));
      bar.title = day + ": " + (value === null || value === undefined ? "no data" : percent(value));
      bars.appendChild(bar);
    });
    wrap.appendChild(bars);
    const legend = el("div", "bars-legend");
    legend.appendChild(el("span", "", days.length + " days ago"));
    legend.appendChild(el("span", "", "today"));
    wrap.appendChild(legend);
    return wrap;
  }

  function renderCheck(check, history) {
    const row = el("div", "check");
    row.id = "check-" + check.name;
    row.dataset.status = check.status;
    const info = el("div", "check-info");
    const head = el("div", "check-head");
    const name = el("span", "check-name", check.name);
    name.appendChild(el("span", "check-type", check.type));
    head.appendChild(name);
    head.appendChild(pill(check.status));
    info.appendChild(head);

    const meta = el("div", "check-meta");
    meta.appendChild(el("span", "", "90d " + percent(check.uptime["90d"])));
    meta.appendChild(el("span", "", "24h " + percent(check.uptime["24h"])));
    if (check.latency.p95 !== null) meta.appendChild(el("span", "", "p95 " + duration(check.latency.p95)));
    if (check.description) meta.appendChild(el("span", "", check.description));
    info.appendChild(meta);

    if (check.locations.length > 1) {
      const locations = el("div", "locations");
      check.locations.forEach((loc) => {
        const item = el("span", "loc loc-" + loc.status, loc.location);
        item.title = loc.status + (loc.started_at ? ", " + ago(loc.started_at) : "");
        locations.appendChild(item);
      });
      info.appendChild(locations);
    }
    const failing = check.locations.find((loc) => loc.error && loc.status === "down");
    if (failing && check.status !== "up") {
      const text = (check.locations.length > 1 ? failing.location + ": " : "") + failing.error;
      const error = el("div", "check-error", text);
      error.title = text;
      info.appendChild(error);
    }
    if (check.maintenance) {
      info.appendChild(el("div", "check-meta", "Maintenance " + check.maintenance.name + " until " + when(check.maintenance.ends_at)));
    }
    row.appendChild(info);
    row.appendChild(renderBars(history.days, history.checks[check.name]));
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
      summary.appendChild(pill(group.status));
      details.appendChild(summary);
      group.checks.forEach((name) => {
        const check = byName.get(name);
        if (check) details.appendChild(renderCheck(check, history));
      });
      fragment.appendChild(details);
    });
    container.replaceChildren(fragment);
  }

  function incidentItem(incident, resolved) {
    const item = el("li", resolved ? "resolved" : "");
    item.appendChild(el("div", "incident-title", incident.check + (resolved ? " was down" : " is down")));
    const where = incident.locations && incident.locations.length ? " from " + incident.locations.join(", ") : "";
    let detail = "Since " + when(incident.started_at) + where;
    if (resolved) detail = when(incident.started_at) + where + " · resolved after " + duration(incident.downtime_seconds);
    item.appendChild(el("div", "incident-detail", detail));
    if (incident.error) {
      const error = el("div", "incident-error", incident.error);
      error.title = incident.error;
      item.appendChild(error);
    }
    return item;
  }

  function renderIncidents(feed) {
    const open = feed.incidents.filter((incident) => incident.open);
    const past = feed.incidents.filter((incident) => !incident.open);
    const openSection = document.getElementById("open-incidents");
    const openList = document.getElementById("open-incident-list");
    openList.replaceChildren(...open.map((incident) => incidentItem(incident, false)));
    openSection.hidden = open.length === 0;
    const pastSection = document.getElementById("past-incidents");
    document.getElementById("past-incident-list").replaceChildren(...past.map((incident) => incidentItem(incident, true)));
    pastSection.hidden = past.length === 0;

    const windows = feed.maintenance || [];
    const list = document.getElementById("maintenance-list");
    list.replaceChildren(
      ...windows.map((window) => {
        const item = el("li", "maintenance");
        item.appendChild(el("div", "incident-title", window.name + (window.active ? " (in progress)" : " (scheduled)")));
        item.appendChild(el("div", "incident-detail", when(window.starts_at) + " – " + when(window.ends_at)));
        return item;
      })
    );
    document.getElementById("maintenance").hidden = windows.length === 0;
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
    document.getElementById("updated").textContent = "Updated " + new Date(feed.generated_at).toLocaleTimeString();
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
