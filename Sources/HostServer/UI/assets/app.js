// nova-host dashboard: the only script the pages load (the CSP allows no other).
// Live runs list: the table with data-events subscribes to its Server-Sent Events stream and
// inserts or updates one row per run it is told about. Everything is built with DOM calls and
// textContent: nothing from the server is parsed as HTML.
"use strict";

(function () {
  function cell(row, node) {
    var td = document.createElement("td");
    td.appendChild(node);
    row.appendChild(td);
  }

  function text(s) {
    return document.createTextNode(s == null ? "" : String(s));
  }

  function badge(status) {
    var span = document.createElement("span");
    var safe = /^[a-z_]+$/.test(status) ? status : "unknown";
    span.className = "badge status-" + safe;
    span.textContent = status;
    return span;
  }

  function fillRow(row, run) {
    while (row.firstChild) row.removeChild(row.firstChild);
    var link = document.createElement("a");
    link.href = "/ui/runs/" + encodeURIComponent(run.run_id);
    link.textContent = run.run_id;
    cell(row, link);
    cell(row, badge(run.status));
    cell(row, text(run.plan_name));
    cell(row, text(run.principal));
    cell(row, text(run.started_at));
    cell(row, text(typeof run.duration_ms === "number" ? run.duration_ms.toFixed(1) + " ms" : ""));
  }

  function liveRuns(table) {
    var url = table.getAttribute("data-events");
    if (!url || typeof EventSource === "undefined") return;
    var body = table.tBodies[0];
    var status = document.getElementById("live-status");
    var source = new EventSource(url);
    var added = 0;
    source.addEventListener("run", function (event) {
      var run;
      try { run = JSON.parse(event.data); } catch (e) { return; }
      if (!run || typeof run.run_id !== "string") return;
      var id = "run-" + run.run_id;
      var row = document.getElementById(id);
      if (!row) {
        row = document.createElement("tr");
        row.id = id;
        body.insertBefore(row, body.firstChild);
        added += 1;
        if (status) status.textContent = added + " new run" + (added === 1 ? "" : "s") + " since this page loaded";
        var empty = document.getElementById("runs-empty");
        if (empty) empty.hidden = true;
      }
      fillRow(row, run);
    });
    source.addEventListener("end", function () { source.close(); });
    table.setAttribute("data-live", "connected");
  }

  document.addEventListener("DOMContentLoaded", function () {
    var table = document.querySelector("table[data-events]");
    if (table) liveRuns(table);
  });
})();
