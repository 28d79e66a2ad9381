// Live preview of a letter template: after typing pauses, POST the draft (with the form's
// CSRF token) to the preview endpoint and show the rendered subject, HTML (in a sandboxed
// iframe, no scripts) and text, or the template error. Without JS, saving shows both.
(function () {
  "use strict";
  var form = document.getElementById("template-form");
  if (!form || !window.fetch) return;
  var url = form.getAttribute("data-preview-url");
  var errorBox = document.getElementById("preview-error");
  var body = document.getElementById("preview-body");
  var status = document.getElementById("preview-status");
  var timer = null;
  var seq = 0;

  function show(data) {
    if (data.ok) {
      document.getElementById("preview-subject").textContent = data.subject;
      document.getElementById("preview-frame").srcdoc = data.html;
      document.getElementById("preview-text").textContent = data.text;
      errorBox.hidden = true;
      errorBox.textContent = "";
      body.hidden = false;
      status.textContent = "Preview updated.";
    } else {
      errorBox.textContent = data.error || "The template does not render.";
      errorBox.hidden = false;
      status.textContent = "";
    }
  }

  function refresh() {
    var mine = ++seq;
    status.textContent = "Rendering…";
    fetch(url, { method: "POST", body: new FormData(form), credentials: "same-origin",
                 headers: { "X-Requested-With": "fetch" } })
      .then(function (r) { return r.json(); })
      .then(function (data) { if (mine === seq) show(data); })  // only the latest draft
      .catch(function () { if (mine === seq) status.textContent = "Preview unavailable."; });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
})();
