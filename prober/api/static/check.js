// One check's page (checks/NAME): renders api/v1/checks/NAME. The response-time chart is inline SVG drawn
// here (no library, no network): p50 and p95 per hour from the hourly rollups, and for 24 h the raw results
// of the last hours as points. Every text goes in through textContent. Refreshes every 30 seconds.
"use strict";

(function () {
  const U = window.proberUI;
  const el = U.el;
  const SVG = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 30000;
  const HOUR = 3600 * 1000;
  const WINDOWS = { "24h": 24 * HOUR, "7d": 7 * 24 * HOUR, "30d": 30 * 24 * HOUR };
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const name = decodeURIComponent(location.pathname.replace(/\/+$/, "").split("/").pop() || "");
  const api = "../api/v1/checks/" + encodeURIComponent(name);
  let chosen = "24h";
  let last = null;

  function svg(tag, attrs, className) {
    const node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach((key) => node.setAttribute(key, String(attrs[key])));
    if (className) node.setAttribute("class", className);
    return node;
  }

  function niceStep(max, count) {
    const rough = max / count;
    const power = Math.pow(10, Math.floor(Math.log10(rough)));
    const fraction = rough / power;
    return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
  }

  function latencyLabel(seconds) {
    if (seconds === 0) return "0";
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    return (Math.round(seconds * 10) / 10) + " s";
  }

  function two(number) {
    return number < 10 ? "0" + number : String(number);
  }

  function tickLabel(ms, windowName) {
    const date = new Date(ms);
    if (windowName === "24h") return two(date.getUTCHours()) + ":00";
    if (windowName === "7d") return DAYS[date.getUTCDay()] + " " + date.getUTCDate();
    return date.getUTCDate() + " " + MONTHS[date.getUTCMonth()];
  }

  // Lines through the hours, broken where an hour has no data.
  function linePath(points, x, y) {
    let d = "";
    let previous = null;
    points.forEach((point) => {
      const joined = previous !== null && point.ms - previous <= 1.5 * HOUR;
      d += (joined ? " L" : " M") + x(point.ms).toFixed(1) + " " + y(point.value).toFixed(1);
      previous = point.ms;
    });
    return d.trim();
  }

  function drawChart(data, windowName) {
    const container = document.getElementById("chart");
    const width = Math.max(260, Math.floor(container.clientWidth || 600));
    const height = width < 500 ? 200 : 240;
    const pad = { left: 52, right: 10, top: 12, bottom: 26 };
    const now = Date.parse(data.generated_at);
    const start = now - WINDOWS[windowName];
    const hours = data.chart.hours
      .map((hour) => ({ ms: Date.parse(hour.t) + HOUR / 2, hour: hour }))
      .filter((item) => item.ms >= start && item.hour.count > 0);
    const raw = windowName === "24h" ? data.chart.raw.filter((point) => Date.parse(point.t) >= start) : [];
    const values = [];
    hours.forEach((item) => {
      if (item.hour.p95 !== null) values.push(item.hour.p95);
    });
    raw.forEach((point) => values.push(point.latency));
    const chart = svg("svg", { viewBox: "0 0 " + width + " " + height, width: width, height: height, role: "img" }, "chart-svg");
    chart.dataset.window = windowName;
    const plotted = hours.length + raw.length;
    chart.dataset.points = String(plotted);
    chart.dataset.hours = String(hours.length);
    chart.dataset.raw = String(raw.length);
    chart.setAttribute(
      "aria-label",
      "Response time over " + windowName + ": " + hours.length + " hours" + (raw.length ? " and " + raw.length + " results" : "")
    );
    if (!values.length) {
      const text = svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "chart-empty");
      text.textContent = "No results in the last " + windowName;
      chart.appendChild(text);
      container.replaceChildren(chart);
      return;
    }
    // A few very slow results (timeouts) should not flatten the rest: the scale stops a little above the
    // 95th percentile of the values shown (or the highest hourly median), and slower ones sit on the top edge.
    const sorted = values.slice().sort((a, b) => a - b);
    const medians = hours.filter((item) => item.hour.p50 !== null).map((item) => item.hour.p50);
    let top = Math.max(sorted[Math.floor((sorted.length - 1) * 0.95)] * 1.25, medians.length ? Math.max(...medians) : 0);
    if (!(top > 0)) top = sorted[sorted.length - 1] || 0.001;
    const step = niceStep(top, 4);
    const yMax = Math.ceil(top / step) * step;
    const x = (ms) => pad.left + ((ms - start) / (now - start)) * (width - pad.left - pad.right);
    const y = (value) => pad.top + (1 - Math.min(value, yMax) / yMax) * (height - pad.top - pad.bottom);

    const grid = svg("g", {}, "grid");
    for (let value = 0; value <= yMax + step / 2; value += step) {
      grid.appendChild(svg("line", { x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value) }));
      const label = svg("text", { x: pad.left - 6, y: y(value) + 4, "text-anchor": "end" }, "axis");
      label.textContent = latencyLabel(value);
      grid.appendChild(label);
    }
    const tickEvery = windowName === "24h" ? (width < 500 ? 6 : 4) * HOUR : windowName === "7d" ? 24 * HOUR : (width < 500 ? 10 : 5) * 24 * HOUR;
    const firstTick = Math.ceil(start / tickEvery) * tickEvery;
    for (let ms = firstTick; ms <= now; ms += tickEvery) {
      const label = svg("text", { x: x(ms), y: height - 8, "text-anchor": "middle" }, "axis");
      label.textContent = tickLabel(ms, windowName);
      grid.appendChild(label);
    }
    chart.appendChild(grid);

    const downs = svg("g", {}, "downs");
    const hourWidth = Math.max(1.5, (HOUR / (now - start)) * (width - pad.left - pad.right));
    hours.forEach((item) => {
      if (!item.hour.down) return;
      const mark = svg("rect", { x: x(item.ms) - hourWidth / 2, y: height - pad.bottom - 4, width: hourWidth, height: 4 }, "down-mark");
      const title = svg("title");
      title.textContent = U.dateTime(item.hour.t) + ": " + item.hour.down + " of " + item.hour.count + " down";
      mark.appendChild(title);
      downs.appendChild(mark);
    });
    chart.appendChild(downs);

    const p95 = hours.filter((item) => item.hour.p95 !== null).map((item) => ({ ms: item.ms, value: item.hour.p95 }));
    const p50 = hours.filter((item) => item.hour.p50 !== null).map((item) => ({ ms: item.ms, value: item.hour.p50 }));
    chart.appendChild(svg("path", { d: linePath(p95, x, y) }, "line line-p95"));
    chart.appendChild(svg("path", { d: linePath(p50, x, y) }, "line line-p50"));
    if (hours.length <= 200) {
      const marks = svg("g", {}, "hour-points");
      p95.forEach((point) => marks.appendChild(svg("circle", { cx: x(point.ms).toFixed(1), cy: y(point.value).toFixed(1), r: 1.8 }, "hour-point")));
      chart.appendChild(marks);
    }

    // One invisible column per hour, so hovering anywhere over an hour tells its numbers.
    const hits = svg("g", {}, "hour-hits");
    hours.forEach((item) => {
      const hit = svg("rect", { x: x(item.ms) - hourWidth / 2, y: pad.top, width: hourWidth, height: height - pad.top - pad.bottom }, "hit");
      const title = svg("title");
      const hour = item.hour;
      title.textContent =
        U.dateTime(hour.t) + " · p50 " + U.duration(hour.p50) + " · p95 " + U.duration(hour.p95) + " · " +
        hour.count + " result" + (hour.count === 1 ? "" : "s") + (hour.down ? ", " + hour.down + " down" : "");
      hit.appendChild(title);
      hits.appendChild(hit);
    });
    chart.appendChild(hits);

    const dots = svg("g", {}, "raw-points");
    raw.forEach((point) => {
      const ms = Date.parse(point.t);
      const dot = svg("circle", { cx: x(ms).toFixed(1), cy: y(point.latency).toFixed(1), r: 2.2 }, "pt pt-" + point.status);
      const title = svg("title");
      title.textContent = U.dateTime(point.t) + " · " + U.duration(point.latency) + " · " + point.status + " · " + point.location;
      dot.appendChild(title);
      dots.appendChild(dot);
    });
    chart.appendChild(dots);
    container.replaceChildren(chart);
    document.getElementById("legend-raw").hidden = raw.length === 0;
  }

  function metricValue(value, unit, now) {
    if (value === null || value === undefined) return "–";
    if (unit === "ago") return U.ago(String(value), now);
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (unit === "s" && typeof value === "number") return U.duration(value);
    if (unit === "days" && typeof value === "number") return value.toFixed(1) + " days";
    if (unit === "ratio" && typeof value === "number") return (Math.round(value * 1000) / 10) + "%";
    if (unit === "time") return U.dateTime(String(value));
    if (typeof value === "number" && !Number.isInteger(value)) return String(Math.round(value * 1000) / 1000);
    return String(value);
  }

  function renderHeadline(data) {
    const box = document.getElementById("headline");
    const multi = data.check.locations.length > 1;
    box.replaceChildren(
      ...data.headline.map((metric) => {
        const card = el("div", "metric");
        card.dataset.metric = metric.metric;
        card.appendChild(el("div", "metric-label", metric.label));
        metric.values.forEach((item) => {
          const line = el("div", "metric-value");
          line.appendChild(el("span", "", metricValue(item.value, metric.unit, data.generated_at)));
          if (multi) line.appendChild(el("span", "metric-location", item.location));
          card.appendChild(line);
        });
        return card;
      })
    );
    box.hidden = data.headline.length === 0;
  }

  function renderHeader(data) {
    const check = data.check;
    const now = data.generated_at;
    document.title = check.name + " · " + data.title;
    document.getElementById("home").textContent = "← " + data.title;
    const title = document.getElementById("title");
    title.textContent = check.name;
    title.appendChild(el("span", "check-type", check.type));
    document.getElementById("status-pill").replaceChildren(U.pill(check.status));
    const parts = [];
    if (check.description) parts.push(check.description);
    if (check.target) parts.push(check.target);
    if (check.group) parts.push("group " + check.group);
    document.getElementById("subtitle").textContent = parts.join(" · ");
    document.getElementById("updated").textContent = "Updated " + U.dateTime(now);
    document.getElementById("reason").replaceChildren(...(check.reason ? [U.reasonLine(check, now)] : []));
    if (check.maintenance) {
      document.getElementById("reason").appendChild(el("div", "check-meta", "Maintenance " + check.maintenance.name + " until " + U.utcTime(check.maintenance.ends_at, now)));
    } else if (check.scheduled_maintenance) {
      const window = check.scheduled_maintenance;
      document.getElementById("reason").appendChild(el("div", "check-meta check-scheduled", "Maintenance " + window.name + " scheduled: " + U.utcRange(window.starts_at, window.ends_at, now)));
    }
    const open = data.incidents.filter((incident) => incident.open);
    document.getElementById("incident").hidden = open.length === 0;
    document.getElementById("incident-list").replaceChildren(
      ...open.map((incident) => {
        const item = el("li", "");
        item.appendChild(el("div", "incident-title", "Down from " + (incident.locations.join(", ") || "every location")));
        item.appendChild(el("div", "incident-detail", "Since " + U.dateTime(incident.started_at) + " · " + U.span(incident.duration_seconds) + " so far"));
        if (incident.error) item.appendChild(el("div", "incident-error", "First error: " + incident.error));
        return item;
      })
    );
    document.getElementById("announcement-list").replaceChildren(...data.announcements.map((item) => U.announcementItem(item, now)));
    document.getElementById("announcements").hidden = data.announcements.length === 0;
  }

  function renderUptime(data) {
    const box = document.getElementById("uptime");
    box.replaceChildren(
      ...["24h", "7d", "30d", "90d"].map((key) => {
        const item = el("div", "uptime-number");
        item.appendChild(el("div", "metric-value", U.percent(data.check.uptime[key])));
        item.appendChild(el("div", "metric-label", key));
        return item;
      })
    );
    const latency = data.check.latency;
    if (latency.p50 !== null) {
      const item = el("div", "uptime-number");
      item.appendChild(el("div", "metric-value", U.duration(latency.p50) + " / " + U.duration(latency.p95)));
      item.appendChild(el("div", "metric-label", "p50 / p95, 24h"));
      box.appendChild(item);
    }
    document.getElementById("bars").replaceChildren(
      U.renderBars(data.days.map((day) => day.day), data.days.map((day) => day.uptime))
    );
  }

  function renderLocations(data) {
    const now = data.generated_at;
    document.getElementById("locations").replaceChildren(
      ...data.locations.map((loc) => {
        const item = el("li", "location-item");
        item.dataset.location = loc.location;
        const head = el("div", "check-head");
        head.appendChild(el("span", "check-name loc loc-" + loc.status, loc.location));
        head.appendChild(U.pill(loc.status));
        item.appendChild(head);
        const meta = el("div", "check-meta");
        meta.appendChild(el("span", "", "last run " + U.ago(loc.started_at, now)));
        if (loc.duration_ms !== null) meta.appendChild(el("span", "", U.duration(loc.duration_ms / 1000)));
        meta.appendChild(el("span", "", "24h " + U.percent(loc.uptime_24h)));
        meta.appendChild(el("span", "", "30d " + U.percent(loc.uptime_30d)));
        if (loc.since && loc.status !== "unknown") meta.appendChild(el("span", "", loc.status + " since " + U.dateTime(loc.since)));
        item.appendChild(meta);
        if (loc.error && loc.status !== "up") item.appendChild(el("div", "check-error", loc.error));
        return item;
      })
    );
  }

  function renderScreenshot(data) {
    const section = document.getElementById("screenshot");
    const shot = data.screenshot;
    section.hidden = !shot;
    if (!shot) return;
    document.getElementById("screenshot-when").textContent = "Taken " + U.dateTime(shot.at) + " (" + U.ago(shot.at, data.generated_at) + ")";
    const img = document.getElementById("screenshot-img");
    const src = "../" + shot.url;
    if (img.getAttribute("src") !== src) img.setAttribute("src", src);
  }

  function renderLists(data) {
    const failures = document.getElementById("failures");
    failures.replaceChildren(
      ...data.failures.slice(0, 10).map((item) => {
        const li = el("li", "result-item");
        li.appendChild(el("div", "incident-detail", U.dateTime(item.started_at) + " · " + item.location + " · " + U.duration(item.duration_ms / 1000)));
        li.appendChild(el("div", "check-error", item.error || "down"));
        return li;
      })
    );
    if (!data.failures.length) failures.appendChild(el("li", "muted empty", "No failed results kept."));
    const incidents = document.getElementById("incidents");
    incidents.replaceChildren(
      ...data.incidents.map((incident) => {
        const li = el("li", incident.open ? "" : "resolved");
        const lasted = incident.open ? U.span(incident.duration_seconds) + " so far (ongoing)" : "lasted " + U.duration(incident.duration_seconds);
        li.appendChild(el("div", "incident-title", U.dateTime(incident.started_at) + " · " + lasted));
        li.appendChild(el("div", "incident-detail", "down from " + (incident.locations.join(", ") || "–")));
        if (incident.error) li.appendChild(el("div", "incident-error", incident.error));
        return li;
      })
    );
    if (!data.incidents.length) incidents.appendChild(el("li", "muted empty", "No incidents."));
  }

  function render(data) {
    last = data;
    renderHeader(data);
    drawChart(data, chosen);
    renderHeadline(data);
    renderUptime(data);
    renderLocations(data);
    renderScreenshot(data);
    renderLists(data);
    document.body.dataset.ready = "true";
  }

  document.querySelectorAll(".tabs button").forEach((button) => {
    button.addEventListener("click", () => {
      chosen = button.dataset.window;
      document.querySelectorAll(".tabs button").forEach((other) => other.setAttribute("aria-selected", String(other === button)));
      if (last) drawChart(last, chosen);
    });
  });

  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => last && drawChart(last, chosen), 150);
  });

  async function refresh() {
    const error = document.getElementById("error");
    try {
      const response = await fetch(api, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!response.ok) throw new Error("the check's data answered " + response.status);
      render(await response.json());
      error.hidden = true;
    } catch (exc) {
      error.textContent = "Could not load the check: " + exc.message;
      error.hidden = false;
    }
  }

  document.getElementById("json-link").href = api;
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
