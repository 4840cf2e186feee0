"use strict";
// The goldjobs dashboard. Everything it shows comes from the server's own HTTP API and /ws;
// prices are shown from the decimal strings the server sends, never from floats (numbers are
// made from them only to place points on a chart).
const $ = (id) => document.getElementById(id);
const text = (s) => document.createTextNode(s == null ? "" : String(s));
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v != null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c != null && c !== "") e.append(typeof c === "object" ? c : text(c));
  return e;
}
const time = (t) => t ? new Date(t).toLocaleTimeString() : "–";
const dateTime = (t) => t ? new Date(t).toLocaleString() : "–";
const sign = (s) => (s && String(s).startsWith("-")) ? "down" : "up";
const dash = (v) => v == null || v === "" ? "–" : String(v);
const FALLBACK_SYMBOLS = ["XAUUSD", "XAGUSD", "EURUSD", "GBPUSD", "USDJPY", "BTCUSD"];
const INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600};
/** At most this many candles kept per series (the endpoint answers the last 100). */
const MAX_CANDLES = 1000;

// Exact comparison of two decimal strings ("-12.5" < "3"), for a candle's high and low.
function cmpDec(a, b) {
  const neg = (s) => s.startsWith("-");
  if (neg(a) !== neg(b)) return neg(a) ? -1 : 1;
  const flip = neg(a) ? -1 : 1;
  const parts = (s) => {
    const [i, f = ""] = s.replace(/^[-+]/, "").split(".");
    return [i.replace(/^0+(?=\d)/, ""), f.replace(/0+$/, "")];
  };
  const [ai, af] = parts(a), [bi, bf] = parts(b);
  if (ai.length !== bi.length) return (ai.length < bi.length ? -1 : 1) * flip;
  if (ai !== bi) return (ai < bi ? -1 : 1) * flip;
  const n = Math.max(af.length, bf.length);
  const fa = af.padEnd(n, "0"), fb = bf.padEnd(n, "0");
  return fa === fb ? 0 : (fa < fb ? -1 : 1) * flip;
}

// ---- candle series: from GET /quotes/{symbol}/candles, then moved by live ticks ----

const series = new Map(); // "XAUUSD|1m" → {t, open, high, low, close, loaded, queue, live}
function seriesOf(symbol, interval) {
  const key = symbol + "|" + interval;
  let s = series.get(key);
  if (!s) {
    s = {symbol, interval, t: [], open: [], high: [], low: [], close: [], loaded: false, queue: [], live: 0};
    series.set(key, s);
    loadSeries(s);
  }
  return s;
}
async function loadSeries(s) {
  try {
    const r = await fetch(`/quotes/${encodeURIComponent(s.symbol)}/candles?interval=${s.interval}`);
    if (r.ok) {
      for (const c of (await r.json()).candles) {
        s.t.push(Math.floor(Date.parse(c.t) / 1000));
        s.open.push(c.open); s.high.push(c.high); s.low.push(c.low); s.close.push(c.close);
      }
    }
  } catch (e) { /* live ticks still fill it */ }
  s.loaded = true;
  for (const [ts, price] of s.queue) addTick(s, ts, price);
  s.queue = [];
  redraw(s);
}
// A tick into its UTC-aligned candle: extends the last one or opens the next.
function addTick(s, ts, price) {
  if (!s.loaded) { s.queue.push([ts, price]); return; }
  const step = INTERVALS[s.interval];
  const b = Math.floor(ts / step) * step;
  const last = s.t.length - 1;
  if (last >= 0 && s.t[last] === b) {
    if (cmpDec(price, s.high[last]) > 0) s.high[last] = price;
    if (cmpDec(price, s.low[last]) < 0) s.low[last] = price;
    s.close[last] = price;
  } else if (last < 0 || b > s.t[last]) {
    s.t.push(b); s.open.push(price); s.high.push(price); s.low.push(price); s.close.push(price);
    if (s.t.length > MAX_CANDLES) for (const a of [s.t, s.open, s.high, s.low, s.close]) a.shift();
  } else {
    return; // older than the last candle: already counted by the endpoint
  }
  s.live++;
}
const nums = (a) => a.map(Number);

// ---- the main chart (uPlot) ----

const view = {symbol: null, interval: "1m", chart: null, spark: new Map(), frame: 0, dirty: new Set()};
function chartWidth() { return Math.max(200, $("chart").clientWidth); }
function legendFor(s, i) {
  if (i == null || i < 0 || i >= s.t.length) i = s.t.length - 1;
  if (i < 0) return "no ticks recorded yet in this range";
  return `${s.symbol} ${s.interval} ${dateTime(s.t[i] * 1000)} · open ${s.open[i]} · high ${s.high[i]} · low ${s.low[i]} · close ${s.close[i]}`;
}
function buildChart() {
  if (view.chart) { view.chart.destroy(); view.chart = null; }
  const s = seriesOf(view.symbol, view.interval);
  const box = $("chart");
  box.replaceChildren();
  const fmt = (name) => (u, v, si, i) => (i == null ? "–" : dash(s[name][i]));
  view.chart = new uPlot({
    width: chartWidth(), height: 260,
    cursor: {drag: {x: false, y: false}},
    legend: {show: false},
    scales: {x: {time: true}},
    series: [
      {},
      {label: "high", stroke: "rgba(212,167,44,0.35)", width: 1, value: fmt("high")},
      {label: "low", stroke: "rgba(212,167,44,0.35)", width: 1, value: fmt("low")},
      {label: "close", stroke: "#d4a72c", width: 2, value: fmt("close"), points: {show: true, size: 4}},
    ],
    bands: [{series: [1, 2], fill: "rgba(212,167,44,0.12)"}],
    axes: [
      {stroke: "#9aa0a9", grid: {stroke: "#262a33"}, ticks: {stroke: "#262a33"}},
      {stroke: "#9aa0a9", grid: {stroke: "#262a33"}, ticks: {stroke: "#262a33"}, size: 70},
    ],
    hooks: {setCursor: [(u) => { $("chart-legend").textContent = legendFor(s, u.cursor.idx); }]},
  }, [[], [], [], []], box);
  redraw(s);
}
function redraw(s) { view.dirty.add(s); if (!view.frame) view.frame = requestAnimationFrame(flush); }
function flush() {
  view.frame = 0;
  for (const s of view.dirty) {
    if (s.symbol === view.symbol && s.interval === view.interval && view.chart) {
      view.chart.setData([s.t, nums(s.high), nums(s.low), nums(s.close)]);
      const box = $("chart"), n = s.t.length;
      box.dataset.symbol = s.symbol; box.dataset.interval = s.interval;
      box.dataset.points = String(n);
      box.dataset.liveTicks = String(s.live);
      box.dataset.lastT = n ? new Date(s.t[n - 1] * 1000).toISOString() : "";
      box.dataset.lastClose = n ? s.close[n - 1] : "";
      box.setAttribute("aria-label", `${s.symbol} price, ${s.interval} candles: ${legendFor(s, null)}`);
      $("chart-legend").textContent = legendFor(s, view.chart.cursor.idx);
    }
    if (s.interval === "1m") {
      const sp = view.spark.get(s.symbol);
      if (sp) sp.setData([s.t.slice(-60), nums(s.close.slice(-60))]);
    }
  }
  view.dirty.clear();
}
function select(symbol, interval) {
  if (symbol === view.symbol && interval === view.interval) return;
  view.symbol = symbol; view.interval = interval;
  $("chart-title").textContent = `Chart · ${symbol} · ${interval}`;
  $("chart-symbol").value = symbol;
  for (const b of document.querySelectorAll("#intervals button")) {
    b.setAttribute("aria-pressed", String(b.dataset.interval === interval));
  }
  for (const b of document.querySelectorAll("button.sym")) {
    b.setAttribute("aria-pressed", String(b.dataset.symbol === symbol));
  }
  buildChart();
}
for (const b of document.querySelectorAll("#intervals button")) {
  b.addEventListener("click", () => select(view.symbol, b.dataset.interval));
}
$("chart-symbol").addEventListener("change", (e) => select(e.target.value, view.interval));
new ResizeObserver(() => { if (view.chart) view.chart.setSize({width: chartWidth(), height: 260}); }).observe($("chart"));

// ---- live prices over the WebSocket ----

const rows = new Map();
function priceRow(symbol) {
  let row = rows.get(symbol);
  if (row) return row;
  const cells = {
    price: el("td", {class: "num"}), change: el("td", {class: "num opt"}), pct: el("td", {class: "num"}),
    spark: el("td", {}), seq: el("td", {class: "num opt"}), time: el("td", {class: "opt"}),
  };
  const button = el("button", {type: "button", class: "sym", "data-symbol": symbol, "aria-pressed": String(symbol === view.symbol), title: `show ${symbol} on the chart`}, symbol);
  button.addEventListener("click", () => { select(symbol, view.interval); $("chart").scrollIntoView({block: "nearest"}); });
  row = el("tr", {"data-symbol": symbol}, el("th", {scope: "row"}, button), cells.price, cells.change, cells.pct, cells.spark, cells.seq, cells.time);
  row.cells_ = cells;
  rows.set(symbol, row);
  const body = $("prices");
  const at = [...rows.keys()].sort().indexOf(symbol);
  body.insertBefore(row, body.children[at] || null);
  const box = el("div", {class: "spark", "aria-hidden": "true"});
  cells.spark.append(box);
  view.spark.set(symbol, new uPlot({
    width: box.clientWidth || 120, height: 30, legend: {show: false}, cursor: {show: false},
    axes: [{show: false}, {show: false}], scales: {x: {time: false}},
    series: [{}, {stroke: "#d4a72c", width: 1.5}],
  }, [[], []], box));
  redraw(seriesOf(symbol, "1m"));
  return row;
}
function showPrice(p) {
  const row = priceRow(p.symbol_code), c = row.cells_;
  c.price.textContent = p.price;
  c.change.textContent = dash(p.change); c.change.className = "num opt " + sign(p.change);
  c.pct.textContent = dash(p.change_percent); c.pct.className = "num " + sign(p.change_percent);
  c.seq.textContent = dash(p.seq);
  c.time.textContent = time(p.timestamp);
  row.classList.remove("flash"); void row.offsetWidth; row.classList.add("flash");
  const ts = Math.floor(Date.parse(p.timestamp) / 1000);
  if (Number.isFinite(ts) && typeof p.price === "string") {
    for (const s of series.values()) {
      if (s.symbol === p.symbol_code) { addTick(s, ts, p.price); redraw(s); }
    }
  }
}
function setSymbols(symbols) {
  const sel = $("chart-symbol");
  if (sel.options.length !== symbols.length) {
    sel.replaceChildren(...symbols.map((s) => el("option", {value: s}, s)));
  }
  if (!view.symbol && symbols.length) select(symbols.includes("XAUUSD") ? "XAUUSD" : symbols[0], view.interval);
}
const live = {connected: false, since: Date.now()};
let backoff = 500;
function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onopen = async () => {
    backoff = 500; live.connected = true; banner();
    $("ws").textContent = "live"; $("ws").className = "badge ok";
    let symbols = FALLBACK_SYMBOLS;
    try {
      const q = await (await fetch("/quotes")).json();
      if (q.quotes.length) symbols = q.quotes.map((x) => x.symbol_code).sort();
    } catch (e) { /* the defaults */ }
    setSymbols(symbols);
    ws.send(JSON.stringify({action: "subscribe", symbols}));
  };
  ws.onmessage = (m) => {
    let msg; try { msg = JSON.parse(m.data); } catch (e) { return; }
    if (msg.type === "price_update" && msg.payload) showPrice(msg.payload);
    else if (msg.type === "prediction_verified") schedulePredictions();
  };
  ws.onclose = (e) => {
    if (live.connected) live.since = Date.now();
    live.connected = false; banner();
    $("ws").textContent = "disconnected (" + e.code + "), retrying…"; $("ws").className = "badge bad";
    setTimeout(connect, backoff); backoff = Math.min(backoff * 2, 15000);
  };
}

// ---- predictions and their evidence ----

const predictions = new Map(); // id → <details>
let predictionTimer = 0;
function schedulePredictions() {
  if (!predictionTimer) predictionTimer = setTimeout(() => { predictionTimer = 0; pollPredictions(); }, 300);
}
function verdictText(p) {
  if (p.status === "ended") return `→ ${p.correct_option}`;
  if (p.status === "needs_review") return "needs review";
  if (p.status === "void") return "void";
  return `due ${dateTime(p.verify_time)}`;
}
function summaryOf(p) {
  return el("summary", {},
    el("span", {class: "status " + p.status}, p.status.replace("_", " ")),
    el("b", {}, p.symbol_code), " ", el("span", {class: "q"}, p.question), " ",
    el("b", {class: p.status === "ended" ? "up" : ""}, verdictText(p)), " ",
    el("small", {}, p.verified_at ? "· " + dateTime(p.verified_at) : ""));
}
async function pollPredictions() {
  try {
    const list = (await (await fetch("/predictions?limit=20")).json()).predictions;
    const box = $("predictions");
    if (!list.length) { box.replaceChildren(el("p", {class: "note"}, "no predictions yet")); predictions.clear(); return; }
    const keep = new Set(list.map((p) => p.id));
    for (const id of [...predictions.keys()]) if (!keep.has(id)) predictions.delete(id);
    const items = list.map((p) => {
      let d = predictions.get(p.id);
      const sig = [p.status, p.correct_option, p.verified_at, p.review_reason].join("|");
      if (!d) {
        d = el("details", {"data-id": p.id});
        d.addEventListener("toggle", () => { if (d.open) loadEvidence(d); });
        predictions.set(p.id, d);
      }
      if (d.dataset.sig !== sig) {
        d.dataset.sig = sig;
        const open = d.open;
        d.replaceChildren(summaryOf(p));
        if (open) loadEvidence(d);
      }
      return d;
    });
    box.replaceChildren(...items);
  } catch (e) { /* next poll */ }
}
async function loadEvidence(d) {
  const id = d.dataset.id;
  let body = d.querySelector(".evidence");
  if (!body) { body = el("div", {class: "evidence"}, el("p", {class: "note"}, "loading the evidence…")); d.append(body); }
  try {
    const r = await fetch("/predictions/" + encodeURIComponent(id));
    if (!r.ok) { body.replaceChildren(el("p", {class: "err"}, `could not load the evidence (${r.status})`)); return; }
    body.replaceChildren(...evidence(await r.json()));
  } catch (e) { body.replaceChildren(el("p", {class: "err"}, "could not load the evidence")); }
}
function evidence(e) {
  const out = [];
  if (e.review_reason) {
    out.push(el("p", {class: "reason"}, (e.status === "void" ? "Void: " : e.status === "needs_review" ? "Needs review: " : "Note: ") + e.review_reason));
  }
  const source = [e.price_source, e.price_provider].filter(Boolean).join(", ");
  const pairs = [
    ["Price at create", e.price_at_create],
    ["Price at verify", e.price_at_verify == null ? null : `${e.price_at_verify}${source ? " (" + source + ")" : ""}`],
    ["Price instant", e.price_at_verify_ts ? dateTime(e.price_at_verify_ts) : null],
    ["Change", e.price_change == null ? null : `${e.price_change} (${dash(e.price_change_percent)} %)`],
    ["Deadline", dateTime(e.verify_time)],
    ["Rule", e.verify_rule],
    ["Verified", e.verified_at ? dateTime(e.verified_at) : null],
    ["Correct option", e.correct_option],
  ];
  out.push(el("dl", {}, ...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, dash(v))])));
  if (e.options && e.options.length) {
    out.push(el("div", {class: "scroll"}, el("table", {},
      el("thead", {}, el("tr", {}, el("th", {scope: "col"}, "Option"), el("th", {scope: "col"}, "Condition"), el("th", {scope: "col"}, "Result"), el("th", {scope: "col", class: "num"}, "Votes"))),
      el("tbody", {}, ...e.options.map((o) => el("tr", {class: o.option === e.correct_option ? "winner" : ""},
        el("td", {}, o.option), el("td", {}, el("code", {}, dash(o.condition))),
        el("td", {class: o.result === true ? "up" : ""}, o.result == null ? "–" : String(o.result)),
        el("td", {class: "num"}, String(o.votes))))))));
  }
  return out;
}

// ---- jobs, with pause and resume for an admin ----

const TOKEN_KEY = "goldjobs.adminToken";
const token = () => sessionStorage.getItem(TOKEN_KEY) || "";
function adminMessage(msg, bad) { $("admin-msg").textContent = msg; $("admin-msg").className = "note" + (bad ? " down" : ""); }
$("token").value = token();
$("token-save").addEventListener("click", () => {
  const t = $("token").value.trim();
  if (t) { sessionStorage.setItem(TOKEN_KEY, t); adminMessage("token kept for this tab"); } else { sessionStorage.removeItem(TOKEN_KEY); adminMessage(""); }
  pollJobs();
});
$("token-clear").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); $("token").value = ""; adminMessage("token forgotten"); pollJobs(); });
$("token").addEventListener("keydown", (e) => { if (e.key === "Enter") $("token-save").click(); });

const jobRows = new Map();
function jobRow(name) {
  let row = jobRows.get(name);
  if (row) return row;
  const c = {
    name: el("th", {scope: "row"}), state: el("td", {}), runs: el("td", {class: "num opt"}), failures: el("td", {class: "num opt"}),
    history: el("td", {}), last: el("td", {class: "opt"}), ms: el("td", {class: "num opt"}), action: el("td", {}),
  };
  const button = el("button", {type: "button", "data-job": name});
  button.addEventListener("click", () => toggleJob(name, button));
  c.action.append(button);
  row = el("tr", {"data-job": name}, c.name, c.state, c.runs, c.failures, c.history, c.last, c.ms, c.action);
  row.cells_ = c; row.button_ = button;
  jobRows.set(name, row);
  $("jobs").append(row);
  return row;
}
function showJob(j) {
  const row = jobRow(j.name), c = row.cells_;
  c.name.replaceChildren(text(j.name), j.last_error ? el("div", {class: "err", title: j.last_error}, j.last_error) : "");
  c.state.textContent = j.busy ? "running" : (j.paused ? "paused" : (j.running ? "scheduled" : "stopped"));
  c.state.className = j.paused ? "down" : "";
  c.runs.textContent = j.runs;
  c.failures.textContent = j.failures; c.failures.className = "num opt" + (j.failures ? " down" : "");
  c.last.textContent = time(j.last_run_at);
  c.ms.textContent = j.last_duration_ms == null ? "–" : j.last_duration_ms;
  const b = row.button_;
  b.textContent = j.paused ? "Resume" : "Pause";
  b.dataset.action = j.paused ? "resume" : "pause";
  b.setAttribute("aria-label", `${b.textContent} ${j.name}`);
  b.disabled = !token();
  b.title = token() ? "" : "enter the admin token above to pause or resume";
}
async function toggleJob(name, button) {
  const action = button.dataset.action;
  button.disabled = true;
  try {
    const r = await fetch(`/jobs/${encodeURIComponent(name)}/${action}`, {method: "POST", headers: {Authorization: "Bearer " + token()}});
    if (r.ok) { showJob(await r.json()); adminMessage(`${name} ${action === "pause" ? "paused" : "resumed"}`); }
    else if (r.status === 401) adminMessage("the admin token was refused", true);
    else if (r.status === 403) adminMessage("admin endpoints are off on this server (GOLDJOBS_ADMIN_TOKEN is unset)", true);
    else adminMessage(`${action} failed (${r.status})`, true);
  } catch (e) { adminMessage(`${action} failed: server unreachable`, true); }
  button.disabled = !token();
}
let jobsSeen = [];
async function pollJobs() {
  try {
    const s = await (await fetch("/jobs/status")).json();
    jobsSeen = s.jobs;
    for (const j of s.jobs) showJob(j);
    banner();
  } catch (e) { /* next poll */ }
}
async function pollRuns() {
  for (const name of jobRows.keys()) {
    try {
      const runs = (await (await fetch(`/jobs/${encodeURIComponent(name)}/runs?limit=12`)).json()).runs;
      const chips = runs.slice().reverse().map((r) => el("span", {
        class: "run " + r.status,
        title: `${dateTime(r.started_at)} · ${r.status} · ${r.duration_ms} ms` + (r.error ? " · " + r.error : r.summary ? " · " + r.summary : "") + ` · ${r.instance}`,
      }));
      const failed = runs.filter((r) => r.status !== "ok").length;
      jobRows.get(name).cells_.history.replaceChildren(el("span", {class: "runs", role: "img", "aria-label": `${runs.length} last runs, ${failed} not ok`}, ...chips));
    } catch (e) { /* next poll */ }
  }
}

// ---- health, the banner, feeds and news ----

let healthSeen = null;
async function pollHealth() {
  try {
    const r = await fetch("/health"); const h = await r.json();
    healthSeen = {ok: r.ok, ...h};
    $("health").textContent = r.ok ? "healthy" : `database ${h.database}, cache ${h.cache}`;
    $("health").className = "badge " + (r.ok ? "ok" : "bad");
    const ms = h.market_stream;
    $("feed").textContent = (h.market_data ? "market data: " + h.market_data : "") +
      (ms ? ` · stream: ${ms.provider} ${ms.state}` : "");
    $("feed").className = "badge" + (h.market_data === "demo" ? " demo" : "");
  } catch (e) {
    healthSeen = {ok: false, unreachable: true};
    $("health").textContent = "unreachable"; $("health").className = "badge bad";
  }
  banner();
}
// One banner with whatever a person watching should know first.
function banner() {
  const warn = [], bad = [];
  if (healthSeen && healthSeen.unreachable) bad.push("The server does not answer.");
  else if (healthSeen && !healthSeen.ok) bad.push(`The server is unhealthy: database ${healthSeen.database}, cache ${healthSeen.cache}.`);
  if (!live.connected && Date.now() - live.since > 3000) bad.push("Live prices are down: the WebSocket is disconnected, reconnecting.");
  const price = jobsSeen.find((j) => j.name === "PriceFetcherJob");
  if (price && price.last_error) bad.push("Market data is failing: " + price.last_error);
  if (price && price.paused) warn.push("Prices are paused (PriceFetcherJob).");
  const ms = healthSeen && healthSeen.market_stream;
  if (ms && ms.state === "down") warn.push(`The ${ms.provider} price stream is down: prices are polled every price interval until it is back.`);
  if (healthSeen && healthSeen.market_data === "demo") warn.push("Demo market data: prices are a random walk, not real quotes.");
  const b = $("banner");
  const all = [...bad, ...warn];
  b.hidden = !all.length;
  b.className = "banner" + (bad.length ? " bad" : "");
  const sig = all.join("\n");
  if (b.dataset.sig !== sig) { b.dataset.sig = sig; b.replaceChildren(...all.map((m) => el("p", {}, m))); }
}
async function pollNews() {
  try {
    const n = await (await fetch("/news?limit=10")).json();
    $("news").replaceChildren(...(n.articles.length ? n.articles.map((a) => el("li", {},
      el("a", {href: a.url, target: "_blank", rel: "noopener noreferrer"}, a.title), el("br"),
      el("small", {}, `${a.source} · ${a.category} · ${time(a.published_at)}` +
        (a.sources && a.sources.length ? ` · +${a.sources.length} source(s): ${a.sources.map((s) => s.source).join(", ")}` : "") +
        (a.related_symbols.length ? " · " + a.related_symbols.join(", ") : ""))))
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

connect();
pollJobs().then(pollRuns); pollHealth(); pollNews(); pollFeeds(); pollPredictions();
setInterval(pollJobs, 2000); setInterval(pollRuns, 10000); setInterval(pollHealth, 10000);
setInterval(pollNews, 60000); setInterval(pollFeeds, 30000); setInterval(pollPredictions, 15000);
setInterval(banner, 1000);
