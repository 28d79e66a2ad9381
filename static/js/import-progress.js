// Live progress for an import page: poll the status JSON until the import finishes, then
// reload once so the server renders the final counts and the rejection report.
(function () {
  "use strict";
  var box = document.getElementById("import-progress");
  if (!box) return;
  var url = box.getAttribute("data-status-url");
  var delay = 500;

  function set(field, value) {
    var el = box.querySelector('[data-field="' + field + '"]');
    if (!el) return;
    if (field === "progress") { el.value = value; el.textContent = value + "%"; }
    else { el.textContent = value; }
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (d) {
        set("status", d.status.charAt(0).toUpperCase() + d.status.slice(1));
        set("progress", d.progress_percent);
        set("progress_percent", d.progress_percent);
        ["lines", "added", "known", "rejected", "duplicates", "summary"].forEach(function (k) {
          set(k, d[k]);
        });
        if (d.error) {
          var err = box.querySelector('[data-field="error"]');
          err.textContent = d.error; err.hidden = false;
        }
        if (d.finished) { window.location.reload(); return; }
        delay = Math.min(delay * 1.5, 3000);
        window.setTimeout(poll, delay);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, delay);
})();
