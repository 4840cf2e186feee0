"use strict";
const $ = (id) => document.getElementById(id);
const text = (s) => document.createTextNode(s == null ? "" : String(s));
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(typeof c === "string" ? text(c) : c);
  return e;
}
const time = (t) => t ? new Date(t).toLocaleTimeString() : "–";
const sign = (s) => (s && s.startsWith("-")) ? "down" : "up";

// Live prices over the WebSocket.
const rows = new Map();
const seen = [];
function showPrice(p) {
  let row = rows.get(p.symbol_code);
  if (!row) {
    row = el("tr");
    rows.set(p.symbol_code, row);
    const body = $("prices");
    const after = [...rows.keys()].sort().indexOf(p.symbol_code);
    body.insertBefore(row, body.children[after] || null);
  }
  row.replaceChildren(
    el("td", {}, p.symbol_code),
    el("td", {class: "num"}, p.price),
    el("td", {class: "num " + sign(p.change)}, p.change),
    el("td", {class: "num " + sign(p.change_percent)}, p.change_percent),
    el("td", {class: "num"}, p.seq),
    el("td", {}, time(p.timestamp)));
  row.classList.remove("flash"); void row.offsetWidth; row.classList.add("flash");
}
function showVerified(v) {
  const list = $("verified");
  // The outbox delivers at least once: show each prediction once.
  if (seen.some(s => s.prediction_id === v.prediction_id)) return;
  if (!seen.length) list.replaceChildren();
  seen.unshift(v);
  if (seen.length > 50) seen.length = 50;
  list.prepend(el("li", {},
    el("b", {}, v.symbol_code + " → " + v.correct_option), " ",
    el("small", {}, `${v.prediction_id} · ${v.price_change_percent}% at ${v.price_at_verify} (${v.price_source}, ${time(v.price_at_verify_ts)})`)));
  while (list.children.length > 20) list.lastChild.remove();
}
let backoff = 500;
function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onopen = async () => {
    backoff = 500;
    $("ws").textContent = "live"; $("ws").className = "badge ok";
    try {
      const q = await (await fetch("/quotes")).json();
      const symbols = q.quotes.map((x) => x.symbol_code);
      ws.send(JSON.stringify({action: "subscribe", symbols: symbols.length ? symbols : ["XAUUSD", "XAGUSD", "EURUSD", "GBPUSD", "USDJPY", "BTCUSD"]}));
    } catch (e) {
      ws.send(JSON.stringify({action: "subscribe", symbols: ["XAUUSD", "XAGUSD", "EURUSD", "GBPUSD", "USDJPY", "BTCUSD"]}));
    }
  };
  ws.onmessage = (m) => {
    let msg; try { msg = JSON.parse(m.data); } catch (e) { return; }
    if (msg.type === "price_update") showPrice(msg.payload);
    else if (msg.type === "prediction_verified") showVerified(msg.payload);
  };
  ws.onclose = (e) => {
    $("ws").textContent = "disconnected (" + e.code + "), retrying…"; $("ws").className = "badge bad";
    setTimeout(connect, backoff); backoff = Math.min(backoff * 2, 15000);
  };
}
connect();

// Jobs, health and news by polling.
async function pollJobs() {
  try {
    const s = await (await fetch("/jobs/status")).json();
    $("jobs").replaceChildren(...s.jobs.map((j) => el("tr", {},
      el("td", {}, j.name, j.last_error ? el("div", {class: "err"}, j.last_error) : ""),
      el("td", {class: j.paused ? "down" : ""},
        j.busy ? "running" : (j.paused ? "paused" : (j.running ? "scheduled" : "stopped"))),
      el("td", {class: "num"}, j.runs),
      el("td", {class: "num " + (j.failures ? "down" : "")}, j.failures),
      el("td", {}, time(j.last_run_at)),
      el("td", {class: "num"}, j.last_duration_ms == null ? "–" : j.last_duration_ms))));
  } catch (e) { /* next poll */ }
}
async function pollHealth() {
  try {
    const r = await fetch("/health"); const h = await r.json();
    $("health").textContent = r.ok ? "healthy" : `database ${h.database}, cache ${h.cache}`;
    $("health").className = "badge " + (r.ok ? "ok" : "bad");
    $("feed").textContent = h.market_data === "demo" ? "DEMO DATA (random walk)" : "market data: " + h.market_data;
    $("feed").className = "badge" + (h.market_data === "demo" ? " demo" : "");
  } catch (e) { $("health").textContent = "unreachable"; $("health").className = "badge bad"; }
}
async function pollNews() {
  try {
    const n = await (await fetch("/news?limit=10")).json();
    $("news").replaceChildren(...(n.articles.length ? n.articles.map((a) => el("li", {},
      el("a", {href: a.url, target: "_blank", rel: "noopener noreferrer"}, a.title), el("br"),
      el("small", {}, `${a.source} · ${a.category} · ${time(a.published_at)}` + (a.related_symbols.length ? " · " + a.related_symbols.join(", ") : ""))))
      : [el("li", {}, el("small", {}, "no news yet"))]));
  } catch (e) { /* next poll */ }
}
// Unhealthy feeds first: what failed, since how many attempts, and when it is asked again.
async function pollFeeds() {
  try {
    const f = (await (await fetch("/news/feeds")).json()).feeds;
    const bad = f.filter((x) => x.consecutive_failures > 0);
    $("feeds").replaceChildren(...(bad.length ? bad.map((x) => el("li", {class: "down"},
      el("strong", {}, x.name), ` (${x.category}) · ${x.last_status} · ${x.consecutive_failures} failure(s) in a row · next ${time(x.next_fetch_at)}`,
      x.last_error ? el("div", {class: "err"}, x.last_error) : ""))
      : [el("li", {}, el("small", {}, f.length ? `all ${f.length} feeds healthy` : "no feeds configured"))]));
  } catch (e) { /* next poll */ }
}
pollJobs(); pollHealth(); pollNews(); pollFeeds();
setInterval(pollJobs, 2000); setInterval(pollHealth, 10000); setInterval(pollNews, 60000);
setInterval(pollFeeds, 30000);
