// Live progress of a job (an import, a probe run, a contact run; a letter batch's sending too)
// for any box marked `data-live-progress`: poll its `data-status-url` JSON and
// copy values into the elements named by `data-field` ("done", "by_verdict.open", …) until the
// JSON says `finished`, then reload once so the server renders the final page.
// A <progress> gets the value; the `status_label` element also gets a `status-<status>` class;
// the `error` element is shown only when there is an error. Elements elsewhere on the page
// marked `data-progress-of="<box id>"` get the same values, so no text there goes stale.
(function () {
  "use strict";

  function lookup(data, path) {
    return path.split(".").reduce(function (v, key) {
      return v === null || v === undefined ? undefined : v[key];
    }, data);
  }

  function render(box, data) {
    box.querySelectorAll("[data-field]").forEach(function (el) {
      var name = el.getAttribute("data-field");
      var value = lookup(data, name);
      if (value === undefined || value === null) return;
      if (el.tagName === "PROGRESS") {
        el.value = value;
        el.textContent = value + "%";
      } else if (name === "error") {
        el.textContent = value;
        el.hidden = !value;
      } else {
        el.textContent = value;
      }
      if (name === "status_label" && data.status) {
        el.className = el.className.replace(/\bstatus-\S+/g, "").trim() + " status-" + data.status;
      }
    });
  }

  function follow(box) {
    var url = box.getAttribute("data-status-url");
    var delay = 500;
    var outside = box.id
      ? document.querySelectorAll('[data-progress-of="' + box.id + '"]') : [];

    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (data) {
          render(box, data);
          outside.forEach(function (el) { render(el, data); });
          if (data.finished) { window.location.reload(); return; }
          // Back off gently: a long run should not cost a request every half second.
          delay = Math.min(delay * 1.5, 3000);
          window.setTimeout(poll, delay);
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, delay);
  }

  document.querySelectorAll("[data-live-progress][data-status-url]").forEach(follow);
})();
