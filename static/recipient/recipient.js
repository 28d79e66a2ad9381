// Re-test progress on the recipient page: poll the run's JSON until it is finished, then
// reload once so the server renders the result. No inline script: the page's CSP forbids it.
(function () {
  "use strict";
  var box = document.getElementById("retest-progress");
  if (!box) return;
  var url = box.getAttribute("data-status-url");
  var bar = box.querySelector("progress");
  var done = box.querySelector("[data-done]");
  var delay = 700;

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) return;
        if (bar) { bar.value = data.percent; bar.textContent = data.percent + "%"; }
        if (done) done.textContent = data.done;
        if (data.finished) {
          window.location.reload();
        } else {
          delay = Math.min(delay * 1.5, 5000);
          window.setTimeout(poll, delay);
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, delay);
})();
