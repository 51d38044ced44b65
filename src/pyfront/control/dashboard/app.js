// pyfront dashboard: polls /api/status, posts /api/action, streams /logtail/NAME.
"use strict";
const $ = (sel) => document.querySelector(sel);
let tailAbort = null;

function fmtUptime(secs) {
  if (secs < 0) secs = 0;
  const d = Math.floor(secs / 86400), h = Math.floor(secs / 3600) % 24, m = Math.floor(secs / 60) % 60, s = secs % 60;
  const hms = `${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  return d ? `${d} day${d > 1 ? "s" : ""}, ${hms}` : hms;
}

function fmtBytes(n) {
  if (!n) return "";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function namespec(p) { return p.group === p.name ? p.name : `${p.group}:${p.name}`; }

function button(label, action, name) {
  const b = document.createElement("button");
  b.textContent = label;
  b.dataset.action = action;
  b.dataset.name = name;
  b.className = `act-${action}`;
  return b;
}

function render(data) {
  $("#ident").textContent = `${data.identification} · ${data.state}`;
  const c = data.connections || {};
  $("#connections").textContent = c.active === undefined ? "" :
    `front connections: active ${c.active}, accepts ${c.accepts}, handled ${c.handled}, requests ${c.requests}, ` +
    `reading ${c.reading}, writing ${c.writing}, waiting ${c.waiting}`;
  const tbody = $("#processes tbody");
  tbody.textContent = "";
  for (const p of data.processes) {
    const tr = document.createElement("tr");
    const spec = namespec(p);
    tr.className = p.statename + (p.read_only ? " readonly" : "");
    tr.dataset.name = spec;
    const cells = [p.statename, spec, p.pid || "", p.statename === "RUNNING" ? fmtUptime(p.now - p.start) : "",
                   fmtBytes(p.rss), p.read_only ? String(p.requests || 0) : "", p.description];
    const classes = ["state", "name", "pid", "uptime", "rss", "requests", "desc"];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.className = classes[i];
      td.textContent = text;
      tr.appendChild(td);
    });
    const acts = document.createElement("td");
    acts.className = "actions";
    if (!p.read_only) {
      const running = ["RUNNING", "STARTING", "BACKOFF"].includes(p.statename);
      acts.appendChild(running ? button("Stop", "stop", spec) : button("Start", "start", spec));
      acts.appendChild(button("Restart", "restart", spec));
      acts.appendChild(button("Clear log", "clear", spec));
      acts.appendChild(button("Tail", "tail", spec));
    }
    tr.appendChild(acts);
    tbody.appendChild(tr);
    if (p.cause) {
      const cr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 8;
      td.className = "cause";
      td.textContent = `cause: ${p.cause}`;
      cr.appendChild(td);
      tbody.appendChild(cr);
    }
  }
  $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.loaded = "1";
}

async function refresh() {
  try {
    const r = await fetch("/api/status", {cache: "no-store"});
    if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
    render(await r.json());
  } catch (e) {
    showMessage(`status failed: ${e.message}`, true);
  }
}

function showMessage(text, error) {
  const m = $("#message");
  m.textContent = text;
  m.className = error ? "error" : "";
}

async function act(action, name) {
  if (action === "tail") return startTail(name);
  showMessage(`${action} ${name || ""}…`);
  try {
    const r = await fetch("/api/action", {method: "POST", headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify({action, name})});
    const res = await r.json();
    showMessage(res.ok ? `${action} ${name || ""}: OK` : `${action} ${name || ""}: ${res.message}`, !res.ok);
  } catch (e) {
    showMessage(`${action} failed: ${e.message}`, true);
  }
  refresh();
}

async function startTail(name) {
  if (tailAbort) tailAbort.abort();
  tailAbort = new AbortController();
  $("#tail").hidden = false;
  $("#tailname").textContent = name;
  const out = $("#tailtext");
  out.textContent = "";
  try {
    const r = await fetch(`/logtail/${encodeURIComponent(name)}/stdout`, {signal: tailAbort.signal});
    if (!r.ok) { out.textContent = `(no log: ${r.status})`; return; }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      out.textContent += dec.decode(value, {stream: true});
      if (out.textContent.length > 200000) out.textContent = out.textContent.slice(-100000);
      out.scrollTop = out.scrollHeight;
    }
  } catch (e) {
    if (e.name !== "AbortError") out.textContent += `\n(tail stopped: ${e.message})`;
  }
}

document.addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-action]");
  if (b) act(b.dataset.action, b.dataset.name);
});
$("#tailclose").addEventListener("click", () => { if (tailAbort) tailAbort.abort(); $("#tail").hidden = true; });
refresh();
setInterval(() => { if ($("#autorefresh").checked) refresh(); }, 2000);
