// ringmaster's dashboard: plain JavaScript over the /v1 API, no framework,
// no build step. Every view is read from the API; /v1/events (read with
// fetch, so the token can go in a header) keeps the open view fresh.
"use strict";

const TOKEN_KEY = "ringmaster.token";
const $ = (sel) => document.querySelector(sel);

// --- the token -----------------------------------------------------------
// `/ui#token=…` fills it in; the fragment is removed from the address bar.
(function tokenFromFragment() {
  const m = location.hash.match(/(?:^#|&)token=([^&]*)/);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + "#overview");
  }
})();

function headers() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: "Bearer " + token } : {};
}

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const res = await fetch(path, {
    ...options,
    headers: { ...headers(), ...(options.body ? { "Content-Type": "application/json" } : {}) },
  });
  if (res.status === 401) {
    askToken();
    throw new Unauthorized("the API token is missing or wrong");
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!res.ok) {
    const why = body && body.error ? body.error : res.status + " " + res.statusText;
    throw new Error(why);
  }
  return body;
}

function askToken() {
  $("#login").hidden = false;
  $("#token").focus();
}

$("#login").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("#token").value);
  $("#login").hidden = true;
  startEvents();
  show();
});

function showError(err) {
  if (err instanceof Unauthorized) return;
  const box = $("#error");
  box.textContent = String(err.message || err);
  box.hidden = false;
  setTimeout(() => { box.hidden = true; }, 6000);
}

// --- small helpers ---------------------------------------------------------
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    node.append(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? "" : String(c)));
  }
  return node;
}

function fill(table, rows) {
  const body = $(table + " tbody");
  body.replaceChildren(...rows);
  if (!rows.length) {
    const cols = $(table + " thead tr").children.length;
    body.append(el("tr", {}, el("td", { colspan: cols, class: "empty" }, "nothing here")));
  }
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

function chip(status, title) {
  return el("span", { class: "chip " + status, title: title || status }, status);
}

function action(label, run) {
  return el("button", {
    class: "action",
    "data-action": label,
    onclick: async (e) => {
      e.target.disabled = true;
      try { await run(); await show(); } catch (err) { showError(err); e.target.disabled = false; }
    },
  }, label);
}

function dl(target, pairs) {
  if (!pairs.length) pairs = [["none yet", ""]];
  $(target).replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-count": k }, v)]));
}

// --- pages -----------------------------------------------------------------
const pages = {
  async overview() {
    const health = await fetch("/healthz").then((r) => r.json());
    fill("#actors", (health.actors || []).map((a) =>
      el("tr", {}, el("td", {}, a.actor), el("td", {}, chip(a.healthy ? "ok" : "error", a.healthy ? "healthy" : "late")),
        el("td", {}, ago(a.last_tick)), el("td", {}, a.restarts))));
    const metrics = await fetch("/metrics").then((r) => r.text());
    const read = (name, label) => {
      const out = {};
      const re = new RegExp("^" + name + "\\{" + label + "=\"([^\"]+)\"\\} ([0-9.e+]+)", "gm");
      for (const m of metrics.matchAll(re)) out[m[1]] = Number(m[2]);
      return out;
    };
    const active = read("ringmaster_queue_items", "status");
    const ended = read("ringmaster_deliveries_total", "outcome");
    dl("#queue-counts", [["queued", active.queued ?? "?"], ["dispatched", active.dispatched ?? "?"],
      ...Object.entries(ended)]);
    dl("#fire-counts", Object.entries(read("ringmaster_schedule_fires_total", "status")));
    dl("#delegation-counts", Object.entries(read("ringmaster_delegation_transitions_total", "to")));
    drawThroughput();
  },

  async workspaces() {
    const page = await api("/v1/workspaces?limit=1000");
    fill("#workspaces", page.workspaces.map((w) =>
      el("tr", { "data-id": w.id },
        el("td", {}, w.id, el("div", { class: "hint" }, w.url || "no URL")),
        el("td", {}, chip(w.status === "online" ? "ok" : "error", w.status)),
        el("td", {}, el("meter", { min: 0, max: Math.max(1, w.max_concurrent), value: w.active_tasks }),
          " " + w.active_tasks + " / " + w.max_concurrent),
        el("td", { class: "depth" }, w.depth),
        el("td", {}, ago(w.last_heartbeat)))));
  },

  async schedules() {
    const page = await api("/v1/schedules?limit=200");
    const rows = await Promise.all(page.schedules.map(async (s) => {
      const runs = await api("/v1/schedules/" + s.id + "/runs?limit=10").catch(() => ({ runs: [] }));
      const next = s.next_run_at
        ? [new Date(s.next_run_at).toLocaleString(undefined, { timeZone: s.timezone || "UTC" }) + " (" + (s.timezone || "UTC") + ")",
           el("div", { class: "hint" }, s.next_run_at + " UTC")]
        : ["—"];
      return el("tr", { "data-id": s.id },
        el("td", {}, s.name, el("div", { class: "hint" }, s.workspace_id + (s.enabled ? "" : " · paused"))),
        el("td", {}, el("code", {}, s.cron)),
        el("td", {}, ...next),
        el("td", { class: "chips" }, (runs.runs || []).length
          ? runs.runs.map((r) => chip(r.status, r.error || r.status + " " + r.slot))
          : el("span", { class: "hint" }, "no runs yet")),
        el("td", {},
          action("run now", () => api("/v1/schedules/" + s.id + "/run", { method: "POST" })),
          s.enabled
            ? action("pause", () => api("/v1/schedules/" + s.id, { method: "PATCH", body: JSON.stringify({ enabled: false }) }))
            : action("resume", () => api("/v1/schedules/" + s.id, { method: "PATCH", body: JSON.stringify({ enabled: true }) }))));
    }));
    fill("#schedules", rows);
  },

  async queue() {
    const q = new URLSearchParams({ limit: "200" });
    if ($("#queue-status").value) q.set("status", $("#queue-status").value);
    if ($("#queue-workspace").value.trim()) q.set("workspace_id", $("#queue-workspace").value.trim());
    const page = await api("/v1/queue?" + q);
    fill("#queue", page.items.map((i) =>
      el("tr", { "data-id": i.id },
        el("td", {}, i.id), el("td", {}, i.workspace),
        el("td", {}, chip(i.status)), el("td", {}, i.attempts + " / " + i.max_attempts),
        el("td", { class: "error-text" }, i.last_error || ""),
        el("td", {}, ago(i.enqueued_at)),
        el("td", {},
          ["failed", "expired"].includes(i.status) ? action("retry", () => api("/v1/queue/" + i.id + "/retry", { method: "POST" })) : "",
          i.status === "queued" ? action("cancel", () => api("/v1/queue/" + i.id + "/cancel", { method: "POST" })) : ""))));
  },

  async delegations() {
    const q = new URLSearchParams({ limit: "200" });
    if ($("#delegation-status").value) q.set("status", $("#delegation-status").value);
    const page = await api("/v1/delegations?" + q);
    fill("#delegations", page.delegations.map((d) =>
      el("tr", { "data-id": d.id },
        el("td", {}, d.id), el("td", {}, d.workspace_id), el("td", {}, chip(d.status)),
        el("td", { class: "error-text" }, d.error_detail || ""),
        el("td", {}, ago(d.created_at)),
        el("td", {}, d.status === "stuck" ? action("retry", () => api("/v1/delegations/" + encodeURIComponent(d.id) + "/retry", { method: "POST" })) : ""))));
  },
};

$("#queue-filter").addEventListener("submit", (e) => { e.preventDefault(); show(); });
$("#delegation-filter").addEventListener("submit", (e) => { e.preventDefault(); show(); });

function current() {
  const name = location.hash.slice(1);
  return pages[name] ? name : "overview";
}

let showing = null;
async function show() {
  const name = current();
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== "page-" + name;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("here", a.dataset.page === name);
  const run = (showing = pages[name]().catch(showError));
  await run;
  document.body.dataset.shown = name;
}
window.addEventListener("hashchange", show);

// --- live events -------------------------------------------------------------
const deliveries = []; // timestamps (ms) of queue.delivered events
let lastEventId = null;
let refreshTimer = null;
let streaming = false;

function drawThroughput() {
  const svg = $("#throughput");
  const now = Date.now();
  const buckets = new Array(30).fill(0);
  for (const t of deliveries) {
    const i = 29 - Math.floor((now - t) / 10000);
    if (i >= 0 && i < 30) buckets[i] += 1;
  }
  const max = Math.max(1, ...buckets);
  const points = buckets.map((n, i) => (i * 10 + 5) + "," + (58 - (n / max) * 54)).join(" ");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points);
  line.setAttribute("class", "spark");
  svg.replaceChildren(line);
}

function onEvent(event) {
  if (event.type === "queue.delivered") {
    deliveries.push(Date.now());
    while (deliveries.length && Date.now() - deliveries[0] > 300000) deliveries.shift();
  }
  const list = $("#events");
  list.prepend(el("li", {}, el("span", { class: "hint" }, new Date(event.at || Date.now()).toLocaleTimeString()), " ",
    chip(event.type.split(".").pop(), event.type), " " + event.type + " ",
    el("span", { class: "hint" }, event.queue_id ?? event.delegation_id ?? event.schedule_id ?? event.workspace_id ?? event.actor ?? "")));
  while (list.children.length > 50) list.lastChild.remove();
  // Refresh what is shown, at most every half second.
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(show, 500);
}

async function startEvents() {
  if (streaming) return;
  streaming = true;
  const live = $("#live");
  for (;;) {
    try {
      const res = await fetch("/v1/events", {
        headers: { ...headers(), ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}) },
      });
      if (res.status === 401) { askToken(); streaming = false; live.className = "live off"; return; }
      if (!res.ok || !res.body) throw new Error("events: " + res.status);
      live.className = "live on";
      live.textContent = "live";
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("id:")) lastEventId = line.slice(3).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (data) { try { onEvent(JSON.parse(data)); } catch (err) { showError(err); } }
        }
      }
    } catch (err) {
      // The server went away or restarted: try again shortly.
    }
    live.className = "live off";
    live.textContent = "reconnecting";
    await new Promise((r) => setTimeout(r, 2000));
  }
}

setInterval(() => { if (current() === "overview") drawThroughput(); }, 10000);
startEvents();
show();
