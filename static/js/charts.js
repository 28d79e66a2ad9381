// Dashboard charts, drawn with the vendored Chart.js (static/vendor/chartjs/) from the very
// <table> each chart sits beside: `<canvas data-chart="kind" data-source="table-id">`. The
// table is what screen readers and no-JS visitors get, so chart and numbers cannot disagree.
(function () {
  "use strict";

  // Host states in the funnel's order, coloured from "not yet known" to "done".
  var STATE_COLOURS = {
    imported: "#9aa5b5", verified_open: "#c2410c", not_open: "#cbd2dc",
    unreachable: "#e2e6ec", contact_resolved: "#d4a017", no_contact: "#7c3aed",
    notified: "#0b4f94", remediated: "#1d6b35"
  };

  function number(cell) {
    return Number((cell.textContent || "").replace(/[^0-9.-]/g, "")) || 0;
  }

  function readTable(table) {
    var head = Array.prototype.map.call(table.tHead.rows[0].cells, function (th) {
      return { label: th.textContent.trim(), state: th.getAttribute("data-state"),
               series: th.getAttribute("data-series") };
    });
    var rows = Array.prototype.map.call(table.tBodies[0].rows, function (tr) {
      return { label: tr.cells[0].textContent.trim(),
               values: Array.prototype.slice.call(tr.cells, 1).map(number) };
    });
    return { head: head, rows: rows };
  }

  function timeChart(canvas, data, colour, kind) {
    return new window.Chart(canvas, {
      type: kind,
      data: {
        labels: data.rows.map(function (r) { return r.label.slice(5); }),  // MM-DD
        datasets: [{
          label: data.head[1].label,
          data: data.rows.map(function (r) { return r.values[0]; }),
          backgroundColor: kind === "line" ? colour + "33" : colour,
          borderColor: colour, fill: kind === "line", pointRadius: 0, tension: 0.2
        }]
      },
      options: {
        animation: false, maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } },
                  x: { ticks: { maxTicksLimit: 10 } } }
      }
    });
  }

  function countryChart(canvas, data) {
    // Columns: country, total, then one per state (th data-state).
    var datasets = [];
    data.head.forEach(function (col, i) {
      if (!col.state) return;
      datasets.push({
        label: col.label,
        data: data.rows.map(function (r) { return r.values[i - 1]; }),
        backgroundColor: STATE_COLOURS[col.state] || "#888888"
      });
    });
    return new window.Chart(canvas, {
      type: "bar",
      data: { labels: data.rows.map(function (r) { return r.label; }), datasets: datasets },
      options: {
        indexAxis: "y", animation: false, maintainAspectRatio: false,
        plugins: { legend: { position: "bottom" } },
        scales: { x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
                  y: { stacked: true } }
      }
    });
  }

  // Two step curves (notified, control) over days since the letter; columns are percents.
  var SERIES_COLOURS = { notified: "#0b4f94", control: "#c2410c" };

  function effectChart(canvas, data) {
    var datasets = [];
    data.head.forEach(function (col, i) {
      if (i === 0) return;
      var colour = SERIES_COLOURS[col.series] || "#888888";
      datasets.push({
        label: col.label,
        data: data.rows.map(function (r) { return { x: Number(r.label), y: r.values[i - 1] }; }),
        borderColor: colour, backgroundColor: colour, stepped: true, pointRadius: 0, fill: false
      });
    });
    return new window.Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false, maintainAspectRatio: false,
        plugins: { legend: { position: "bottom" } },
        scales: { x: { type: "linear", beginAtZero: true, title: { display: true, text: "Days" } },
                  y: { beginAtZero: true, max: 100, ticks: { callback: function (v) { return v + "%"; } } } }
      }
    });
  }

  function draw() {
    if (!window.Chart) return;  // the tables stay: nothing lost
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var table = document.getElementById(canvas.getAttribute("data-source"));
      if (!table) return;
      var data = readTable(table);
      var kind = canvas.getAttribute("data-chart");
      var chart;
      if (kind === "sent") chart = timeChart(canvas, data, "#0b4f94", "bar");
      else if (kind === "remediated") chart = timeChart(canvas, data, "#1d6b35", "line");
      else if (kind === "countries") chart = countryChart(canvas, data);
      else if (kind === "effect") chart = effectChart(canvas, data);
      if (chart) canvas.setAttribute("data-drawn", "true");
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
