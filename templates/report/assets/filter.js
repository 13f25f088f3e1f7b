// Filters the incident list by severity, status and service. Plain DOM, no framework, no network:
// the page works the same from file:// and from GitHub Pages. Without JavaScript every incident is listed.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var table = document.getElementById("incidents");
  if (!form || !table) {
    return;
  }
  var shown = document.getElementById("shown");
  var rows = Array.prototype.map.call(table.tBodies[0].rows, function (row) {
    var services = [];
    try {
      services = JSON.parse(row.getAttribute("data-services") || "[]");
    } catch (e) {
      services = [];
    }
    return {
      row: row,
      severity: row.getAttribute("data-severity"),
      status: row.getAttribute("data-status"),
      services: services
    };
  });

  function apply() {
    var severity = form.elements.severity.value;
    var status = form.elements.status.value;
    var service = form.elements.service.value;
    var count = 0;
    rows.forEach(function (item) {
      var match =
        (!severity || item.severity === severity) &&
        (!status || item.status === status) &&
        (!service || item.services.indexOf(service) !== -1);
      item.row.hidden = !match;
      if (match) {
        count += 1;
      }
    });
    shown.textContent = String(count);
  }

  form.addEventListener("change", apply);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
  });
  form.hidden = false;
  apply();
})();
