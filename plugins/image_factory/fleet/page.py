"""The Image Factory page: one self-contained HTML document (no build step) that draws ``/api/fleet``.

The UI embeds it (an external view in the nav bar); it runs in the browser with the UI's ``_token`` cookie, the
same login as the rest of Airflow. Everything it shows is set as text (``textContent``), never as HTML.
"""

from __future__ import annotations

import json

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 16px; color: #1a202c; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
.meta { color: #4a5568; font-size: 13px; margin-bottom: 12px; }
table { border-collapse: collapse; font-size: 13px; } th, td { border: 1px solid #cbd5e0; padding: 4px 6px; }
th { background: #edf2f7; text-align: left; } td.cell { text-align: center; min-width: 90px; }
td.current { background: #c6f6d5; } td.behind { background: #fefcbf; } td.stale { background: #fbd38d; }
td.missing { background: #fed7d7; } td.failed { background: #fc8181; } td.not_subscribed { color: #a0aec0; }
.legend span { display: inline-block; padding: 2px 8px; margin-right: 4px; border: 1px solid #cbd5e0; }
.outcome-failed { color: #c53030; font-weight: bold; } .outcome-succeeded { color: #276749; }
button { font-size: 12px; } #catch-up { margin-top: 12px; padding: 8px; border: 1px solid #cbd5e0; display: none; }
#error { color: #c53030; }
"""

_SCRIPT = """
const BASE = JSON.parse(document.getElementById("base").textContent);
const LABELS = {current: "current", behind: "behind", missing: "missing", failed: "failed",
                not_subscribed: "not subscribed", stale: "stale"};
function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}
function link(text, href) { return el("a", text, {href: href, target: "_top"}); }
function size(bytes) {
  if (bytes === null || bytes === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; let n = bytes;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}
async function call(path, options) {
  const response = await fetch(BASE + path, Object.assign({credentials: "same-origin"}, options || {}));
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || ("HTTP " + response.status));
  return body;
}
function cellText(cell) {
  if (cell.state === "not_subscribed") return cell.version ? "· " + cell.version : "·";
  if (!cell.version) return LABELS[cell.state];
  let text = cell.version + " (" + cell.age_days + "d)";
  if (cell.behind) text += " −" + cell.behind;
  return text;
}
function drawMatrix(fleet) {
  const table = document.getElementById("matrix"); table.replaceChildren();
  const head = el("tr"); head.append(el("th", "Lab"), el("th", "Last run"));
  for (const path of fleet.image_paths) head.append(el("th", path));
  head.append(el("th", "")); table.append(head);
  for (const lab of fleet.labs) {
    const row = el("tr", null, {"data-lab": lab.name, "data-worst": lab.worst});
    row.append(el("th", lab.name));
    const run = el("td");
    if (lab.last_run) {
      run.append(el("span", lab.last_run.outcome.replace(/_/g, " "), {class: "outcome-" + lab.last_run.outcome}),
                 document.createTextNode(" "), link(lab.last_run.run_id, lab.last_run.url));
      for (const pair of lab.last_run.pairs) {
        run.append(el("br"), link(pair.label + ": " + (pair.state || "?"), pair.url));
      }
    } else { run.textContent = lab.message || "-"; }
    row.append(run);
    for (const path of fleet.image_paths) {
      const cell = lab.cells[path];
      const title = LABELS[cell.state] + (cell.detail ? ": " + cell.detail : "");
      row.append(el("td", cellText(cell), {class: "cell " + cell.state, "data-lab": lab.name,
        "data-path": path, "data-state": cell.state, title: title}));
    }
    const action = el("td"); const button = el("button", "Catch up this lab", {"data-catch-up": lab.name});
    button.onclick = () => dryRun(lab.name); action.append(button); row.append(action); table.append(row);
  }
}
function drawCatalogue(fleet) {
  const table = document.getElementById("catalogue"); table.replaceChildren();
  const head = el("tr");
  for (const h of ["ImagePath", "Version", "Size", "Captured", "Source VM", "Source disk"]) head.append(el("th", h));
  table.append(head);
  for (const [path, versions] of Object.entries(fleet.catalogue)) {
    for (const v of versions) {
      const row = el("tr", null, {"data-path": path, "data-version": v.version});
      const source = v.source_vm || (v.by_powershell ? "PowerShell factory" : "-");
      row.append(el("td", path), el("td", v.version), el("td", size(v.size_bytes)), el("td", v.captured || "-"),
                 el("td", source), el("td", v.source_disk || "-"));
      table.append(row);
    }
  }
}
async function load() {
  try {
    const fleet = await call("/api/fleet");
    const counts = Object.entries(fleet.counts).map(([k, n]) => n + " " + LABELS[k]).join(", ");
    document.getElementById("meta").textContent = fleet.as_of
      ? "As verify saw it at " + fleet.as_of + " (run " + fleet.run_id + ")"
        + (fleet.freshness_days ? "; FreshnessDays " + fleet.freshness_days : "") + ". " + counts
      : "No verify has run yet.";
    drawMatrix(fleet); drawCatalogue(fleet);
    document.body.setAttribute("data-loaded", "true");
  } catch (error) { document.getElementById("error").textContent = error.message; }
}
async function wait(runId, done) {
  for (;;) {
    const run = await call("/api/runs/" + encodeURIComponent(runId));
    if (done(run)) return run;
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
}
const FINISHED = ["success", "failed"];
async function dryRun(lab) {
  const box = document.getElementById("catch-up"); box.style.display = "block"; box.replaceChildren();
  box.append(el("b", "Catch up " + lab + ": "), el("span", "dry run starting…", {id: "catch-up-status"}));
  const status = document.getElementById("catch-up-status");
  try {
    const started = await call("/api/labs/" + encodeURIComponent(lab) + "/catch-up",
      {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({dry_run: true})});
    status.replaceChildren(document.createTextNode("dry run "), link(started.run_id, started.url),
                           document.createTextNode(" running…"));
    const run = await wait(started.run_id, (r) => FINISHED.includes(r.state));
    if (run.state !== "success") { status.textContent = "the dry run " + run.state + ": see its log"; return; }
    await load();  // the dry run's verify has just read the lab again
    const planned = run.planned || [];
    status.textContent = planned.length ? "it would distribute: " + planned.join(", ") : "nothing to distribute";
    if (!planned.length) return;
    const go = el("button", "Run it", {id: "catch-up-run"});
    go.onclick = async () => {
      go.disabled = true;
      try {
        const body = JSON.stringify({dry_run: false, dry_run_id: run.run_id});
        const real = await call("/api/labs/" + encodeURIComponent(lab) + "/catch-up", {method: "POST",
          headers: {"Content-Type": "application/json"}, body: body});
        box.append(el("br"), document.createTextNode("started "), link(real.run_id, real.url));
      } catch (error) { box.append(el("br"), el("span", error.message, {class: "outcome-failed"})); }
    };
    box.append(document.createTextNode(" "), go);
  } catch (error) { status.textContent = error.message; }
}
load();
"""


def page_html(base: str) -> str:
    """Return the page; ``base`` is the URL prefix the plugin's app is mounted at (its API is under it)."""
    states = ("current", "behind", "stale", "missing", "failed", "not_subscribed")
    legend = " ".join(
        f'<table style="display:inline-table"><tr><td class="cell {s}">{s.replace("_", " ")}</td></tr></table>'
        for s in states
    )
    base_json = json.dumps(base).replace("</", "<\\/")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Image Factory</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Image Factory — the fleet</h1><div class='meta' id='meta'>Loading…</div>"
        f"<div class='legend'>{legend}</div><div id='error'></div>"
        "<h2>Labs × ImagePaths</h2><table id='matrix'></table><div id='catch-up'></div>"
        "<h2>Catalogue</h2><table id='catalogue'></table>"
        f"<script type='application/json' id='base'>{base_json}</script>"
        f"<script>{_SCRIPT}</script></body></html>"
    )
