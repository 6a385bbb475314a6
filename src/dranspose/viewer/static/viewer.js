// dranspose live viewer: polls /viewer/api/poll (<= 1 s), redraws only what changed.
// The DOM is built with textContent/createElement only (no HTML from the server).
"use strict";

const params = new URLSearchParams(location.search);
const INTERVAL = Math.min(Math.max(Number(params.get("interval")) || 1000, 200), 1000);

const state = {
  treeEtag: null, tree: null, byPath: {},
  selected: params.getAll("select"),     // dataset paths (several 1D: overlay), or one group
  cache: {},                             // path -> last payload
  polls: 0, draws: 0, lastError: null, lastKey: null,
};
window.viewerState = state;              // read by the browser tests

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = String(text);
  return e;
}

const TYPED = { f4: Float32Array, f8: Float64Array, u1: Uint8Array, i1: Int8Array, u2: Uint16Array, i2: Int16Array };

function decode(b) {
  const bin = atob(b.b64);
  const buf = new ArrayBuffer(bin.length);
  const u8 = new Uint8Array(buf);
  for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
  const Typed = TYPED[b.dtype];
  if (!Typed) throw new Error(`unknown dtype ${b.dtype}`);
  return new Typed(buf);
}

function fmtShape(n) { return n.shape && n.shape.length ? n.shape.join("×") : "scalar"; }

// ---- tree
function index(node) {
  state.byPath[node.path] = node;
  (node.children || []).forEach(index);
}

function renderTree() {
  const root = document.getElementById("tree");
  root.replaceChildren();
  if (!state.tree || !(state.tree.children || []).length) {
    root.append(el("div", "empty", "nothing published yet"));
    return;
  }
  root.append(renderChildren(state.tree));
}

function renderChildren(group) {
  const box = el("div");
  for (const n of group.children || []) {
    const row = el("div", "node");
    row.dataset.path = n.path;
    if (state.selected.includes(n.path)) row.classList.add("selected");
    const icon = el("span", "icon", n.kind === "group" ? (n.nxdata ? "◆" : "▸") : "•");
    row.append(icon);
    if (n.kind === "dataset" && n.numeric && n.shape.length === 1) {
      const box1 = el("input");
      box1.type = "checkbox";
      box1.title = "overlay this curve";
      box1.checked = state.selected.includes(n.path);
      box1.addEventListener("click", (ev) => { ev.stopPropagation(); toggleOverlay(n.path, box1.checked); });
      row.append(box1);
    }
    row.append(el("span", "name", n.name));
    row.append(el("span", "meta", n.kind === "group" ? (n.nxdata ? "NXdata" : "") : `${fmtShape(n)} ${n.dtype}`));
    row.addEventListener("click", () => select([n.path]));
    box.append(row);
    if (n.kind === "group" && (n.children || []).length) {
      const sub = renderChildren(n);
      sub.className = "children";
      box.append(sub);
    }
  }
  return box;
}

function select(paths) {
  state.selected = paths;
  const q = new URLSearchParams();
  if (params.get("interval")) q.set("interval", params.get("interval"));
  paths.forEach((p) => q.append("select", p));
  history.replaceState(null, "", "?" + q.toString());
  state.lastKey = null;
  renderTree();
  redraw();
  poll(true);
}

function toggleOverlay(path, on) {
  const curves = state.selected.filter((p) => isCurve(p) && p !== path);
  select(on ? [...curves, path] : curves);
}

function isCurve(path) {
  const n = state.byPath[path];
  return n && n.kind === "dataset" && n.numeric && n.shape.length === 1;
}

// which datasets the current selection needs
function needed() {
  const out = [];
  for (const p of state.selected) {
    const n = state.byPath[p];
    if (n && n.kind === "group" && n.nxdata) {
      out.push(n.nxdata.signal);
      n.nxdata.axes.forEach((a) => { if (a) out.push(a); });
    } else if (!n || n.kind === "dataset") {
      out.push(p);
    }
  }
  return [...new Set(out)];
}

// ---- polling
let timer = null;
let inFlight = false;

async function poll(now) {
  if (inFlight) return;
  clearTimeout(timer);
  inFlight = true;
  const q = new URLSearchParams();
  if (state.treeEtag) q.set("tree", state.treeEtag);
  for (const p of needed()) {
    q.append("path", p);
    q.append("etag", (state.cache[p] && state.cache[p].etag) || "");
  }
  const frame = document.getElementById("frame").value;
  if (frame !== "") q.set("frame", frame);
  const status = document.getElementById("status");
  try {
    const r = await fetch("viewer/api/poll?" + q.toString(), { cache: "no-store" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const body = await r.json();
    state.polls += 1;
    let changed = false;
    if (body.tree) {
      state.tree = body.tree;
      state.treeEtag = body.tree_etag;
      state.byPath = {};
      index(body.tree);
      renderTree();
      changed = true;
    }
    for (const [p, d] of Object.entries(body.datasets || {})) {
      if (d.unchanged) continue;
      state.cache[p] = d;
      changed = true;
    }
    if (changed) redraw();
    state.lastError = null;
    status.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    status.classList.remove("bad");
  } catch (e) {
    state.lastError = String(e);
    status.textContent = `no connection to the results (${e.message}); retrying`;
    status.classList.add("bad");
  } finally {
    inFlight = false;
    timer = setTimeout(poll, INTERVAL);
  }
}

// ---- drawing
const PLOT_CONFIG = { displaylogo: false, responsive: true };

function showControls(image, frames) {
  document.getElementById("log-label").hidden = !image;
  document.getElementById("cmap-label").hidden = !image;
  document.getElementById("frame-label").hidden = !frames;
}

function axisValues(path, n, step) {
  const d = path && state.cache[path];
  if (!d || d.kind !== "line") return null;
  const v = decode(d.y);
  if (d.step === step && v.length === n) return v;
  return null;
}

function clearPlot() {
  const plot = document.getElementById("plot");
  if (plot.data) Plotly.purge(plot);
  plot.hidden = true;
}

function redraw() {
  const title = document.getElementById("title");
  const text = document.getElementById("text");
  const attrs = document.getElementById("attrs");
  text.replaceChildren();
  attrs.replaceChildren();
  const sel = state.selected;
  if (!sel.length) {
    title.textContent = "select a dataset on the left";
    showControls(false, false);
    clearPlot();
    if (state.tree) renderAttrs(attrs, state.tree);  // the root's attributes
    return;
  }
  title.textContent = sel.join(", ");
  const first = state.byPath[sel[0]];
  if (first) renderAttrs(attrs, first);
  if (first && first.kind === "group" && first.nxdata) return drawNxdata(first);
  if (first && first.kind === "group") { showControls(false, false); clearPlot(); text.append(el("div", "empty", "a group: its attributes are listed below")); return; }
  const payloads = sel.map((p) => state.cache[p]).filter(Boolean);
  if (!payloads.length) { clearPlot(); return; }
  const p0 = payloads[0];
  if (p0.error) { clearPlot(); text.append(el("div", "empty", p0.error)); return; }
  if (p0.kind === "text") { showControls(false, false); clearPlot(); drawText(text, p0); return; }
  if (p0.kind === "image") return drawImage(p0, null, null, sel[0]);
  drawLines(payloads.filter((p) => p.kind === "line"), null, sel.join(","));
}

function drawText(box, d) {
  const v = d.value;
  if (d.shape.length === 0) box.append(el("div", "scalar", typeof v === "object" ? JSON.stringify(v) : v));
  else box.append(el("pre", null, JSON.stringify(v, null, 1) + (d.truncated ? "\n…" : "")));
}

function renderAttrs(box, node) {
  const entries = Object.entries(node.attrs || {});
  if (!entries.length) return;
  const t = el("table");
  const head = el("tr");
  head.append(el("th", null, "attribute"), el("th", null, "value"));
  t.append(head);
  for (const [k, v] of entries) {
    const tr = el("tr");
    tr.append(el("td", null, k), el("td", null, typeof v === "object" ? JSON.stringify(v) : v));
    t.append(tr);
  }
  box.append(t);
}

function drawLines(payloads, xs, key) {
  showControls(false, false);
  const traces = payloads.map((d, i) => {
    const y = decode(d.y);
    let x = xs && xs[i];
    if (!x) { x = new Float64Array(y.length); for (let j = 0; j < y.length; j++) x[j] = j * d.step; }
    return { x, y, type: "scattergl", mode: y.length > 200 ? "lines" : "lines+markers", name: d.path };
  });
  const layout = {
    margin: { l: 60, r: 20, t: 20, b: 45 }, uirevision: key, showlegend: traces.length > 1,
    xaxis: { title: { text: xs && xs.title ? xs.title : "index" } }, legend: { orientation: "h" },
  };
  plotInto(traces, layout);
}

function drawImage(d, xAxis, yAxis, key) {
  showControls(true, d.shape.length > 2);
  const z = decode(d.z);
  const [h, w] = d.z.shape;
  const log = document.getElementById("log").checked;
  const rows = [];
  for (let r = 0; r < h; r++) {
    let row = z.subarray(r * w, (r + 1) * w);
    if (log) row = Float32Array.from(row, (v) => (v > 0 ? Math.log10(v) : NaN));
    rows.push(row);
  }
  const x = new Float64Array(w), y = new Float64Array(h);
  for (let i = 0; i < w; i++) x[i] = xAxis ? xAxis[Math.min(i * d.step[1], xAxis.length - 1)] : i * d.step[1];
  for (let i = 0; i < h; i++) y[i] = yAxis ? yAxis[Math.min(i * d.step[0], yAxis.length - 1)] : i * d.step[0];
  const trace = {
    type: "heatmap", z: rows, x, y, colorscale: document.getElementById("cmap").value,
    colorbar: { title: { text: log ? "log10" : "" } }, hoverongaps: false,
  };
  const frame = d.frame === null || d.frame === undefined ? "" : ` · frame ${d.frame}`;
  const layout = {
    margin: { l: 60, r: 20, t: 30, b: 45 }, uirevision: key,
    title: { text: `${d.shape.join("×")}${frame}${d.step[0] > 1 || d.step[1] > 1 ? ` · shown 1:${Math.max(...d.step)}` : ""}`, font: { size: 12 } },
    xaxis: { constrain: "domain" },
    yaxis: { autorange: "reversed", scaleanchor: xAxis || yAxis ? undefined : "x", constrain: "domain" },
  };
  plotInto([trace], layout);
}

function drawNxdata(group) {
  const nx = group.nxdata;
  const sig = state.cache[nx.signal];
  if (!sig) return;
  if (sig.kind === "line") {
    const ax = axisValues(nx.axes[nx.axes.length - 1], decode(sig.y).length, sig.step);
    const xs = ax ? [ax] : null;
    if (xs) xs.title = nx.axes[nx.axes.length - 1];
    return drawLines([sig], xs, group.path);
  }
  if (sig.kind === "image") {
    const full = (p) => { const d = p && state.cache[p]; return d && d.kind === "line" && d.step === 1 ? decode(d.y) : null; };
    return drawImage(sig, full(nx.axes[nx.axes.length - 1]), full(nx.axes[nx.axes.length - 2]), group.path);
  }
  showControls(false, false);
  clearPlot();
  drawText(document.getElementById("text"), sig);
}

function plotInto(traces, layout) {
  const plot = document.getElementById("plot");
  plot.hidden = false;
  Plotly.react(plot, traces, layout, PLOT_CONFIG);
  state.draws += 1;
}

document.getElementById("log").addEventListener("change", redraw);
document.getElementById("cmap").addEventListener("change", redraw);
document.getElementById("frame").addEventListener("change", () => { state.cache = {}; poll(true); });
renderTree();
poll(true);
