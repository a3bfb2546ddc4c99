// The privacy office console: the verification run's progress bar, polled every second
// until the run ends (then the page reloads to show the result). Without JavaScript the
// page shows the progress when it was loaded and a "Refresh" link.
(function () {
  "use strict";
  var box = document.getElementById("run-progress");
  if (!box || box.getAttribute("data-status") !== "running") { return; }
  var url = box.getAttribute("data-progress-url");
  var bar = document.getElementById("run-bar");
  var numbers = document.getElementById("run-numbers");

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_m, key) {
      var value = values[key];
      return value === null || value === undefined ? "?" : String(value);
    });
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { window.setTimeout(poll, 2000); return; }
        bar.max = Math.max(data.total, 1);
        bar.value = data.checked;
        bar.textContent = data.percent + " %";
        numbers.textContent = fill(numbers.getAttribute("data-text-running"), {
          checked: data.checked, total: data.total, percent: data.percent,
          rate: data.rate, left: data.seconds_left
        });
        if (data.status !== "running") { window.location.reload(); return; }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, 500);
})();
