// Helpers shared by the status page (app.js) and the check page (check.js): element building, time and
// number formatting, uptime bars, announcements. Every text goes in through textContent, never innerHTML.
"use strict";

(function () {
  const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // Seconds between an ISO time and `now` (the feed's generated_at when given, so a page agrees with its feed).
  function secondsSince(iso, now) {
    const end = now ? Date.parse(now) : Date.now();
    return Math.max(0, (end - Date.parse(iso)) / 1000);
  }

  function ago(iso, now) {
    if (!iso) return "never";
    return span(secondsSince(iso, now)) + " ago";
  }

  function span(seconds) {
    if (seconds < 60) return Math.round(seconds) + "s";
    if (seconds < 3600) return Math.round(seconds / 60) + " min";
    if (seconds < 86400) {
      const hours = Math.floor(seconds / 3600);
      const minutes = Math.round((seconds % 3600) / 60);
      return hours + " h" + (minutes ? " " + minutes + " min" : "");
    }
    const days = Math.floor(seconds / 86400);
    const hours = Math.round((seconds % 86400) / 3600);
    return days + " d" + (hours ? " " + hours + " h" : "");
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    return span(seconds);
  }

  function percent(value) {
    if (value === null || value === undefined) return "–";
    if (value >= 100) return "100%";
    return (Math.floor(value * 100) / 100).toFixed(2) + "%";
  }

  function two(number) {
    return number < 10 ? "0" + number : String(number);
  }

  function hhmm(date) {
    return two(date.getUTCHours()) + ":" + two(date.getUTCMinutes());
  }

  function dayLabel(date, now) {
    const far = Math.abs(date.getTime() - (now ? Date.parse(now) : Date.now())) > 6 * 86400 * 1000;
    let text = DAYS[date.getUTCDay()];
    if (far) text += " " + date.getUTCDate() + " " + MONTHS[date.getUTCMonth()];
    return text;
  }

  // "Sun 03:00 UTC"
  function utcTime(iso, now) {
    if (!iso) return "";
    const date = new Date(iso);
    return dayLabel(date, now) + " " + hhmm(date) + " UTC";
  }

  // "Sun 03:00–03:30 UTC", or "Sun 23:00 – Mon 01:00 UTC" across midnight
  function utcRange(startIso, endIso, now) {
    if (!startIso) return endIso ? "until " + utcTime(endIso, now) : "";
    const start = new Date(startIso);
    if (!endIso) return "from " + utcTime(startIso, now);
    const end = new Date(endIso);
    const sameDay = start.toISOString().slice(0, 10) === end.toISOString().slice(0, 10);
    if (sameDay) return dayLabel(start, now) + " " + hhmm(start) + "–" + hhmm(end) + " UTC";
    return dayLabel(start, now) + " " + hhmm(start) + " – " + dayLabel(end, now) + " " + hhmm(end) + " UTC";
  }

  function dateTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return date.getUTCFullYear() + "-" + two(date.getUTCMonth() + 1) + "-" + two(date.getUTCDate()) + " " + hhmm(date) + " UTC";
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

  // The one-line reason of a check that is not up: "eu: HTTP status 503 · since 12 min ago".
  function reasonLine(check, now) {
    const reason = check.reason;
    const line = el("div", "check-reason reason-" + reason.status);
    const multi = check.locations.length > 1;
    const text = el("span", "reason-text", (multi ? reason.location + ": " : "") + reason.text);
    text.title = reason.text;
    line.appendChild(text);
    const since = el("span", "reason-since", "since " + dateTime(reason.since) + " (" + ago(reason.since, now) + ")");
    line.appendChild(since);
    return line;
  }

  function announcementItem(item, now) {
    const li = el("li", "announcement announcement-" + item.severity + (item.active ? "" : " upcoming"));
    li.dataset.id = item.id;
    const head = el("div", "incident-title");
    head.appendChild(el("span", "severity", item.severity));
    head.appendChild(el("span", "", item.title));
    li.appendChild(head);
    if (item.message) li.appendChild(el("div", "announcement-message", item.message));
    let when = "";
    if (!item.active) when = "scheduled: " + utcRange(item.from, item.until, now);
    else if (item.until) when = "until " + utcTime(item.until, now);
    else if (item.from) when = "since " + utcTime(item.from, now);
    if (item.checks.length) {
      const names = item.affected.slice(0, 5).join(", ") + (item.affected.length > 5 ? " and " + (item.affected.length - 5) + " more" : "");
      when += (when ? " · " : "") + "affects " + (names || "no configured check");
    }
    if (when) li.appendChild(el("div", "incident-detail", when));
    return li;
  }

  window.proberUI = {
    el, ago, span, duration, percent, utcTime, utcRange, dateTime, pill, barClass, renderBars, reasonLine,
    announcementItem, secondsSince,
  };
})();
