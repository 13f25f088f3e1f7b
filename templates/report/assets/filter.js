// Filters the incident list by severity, status and service. Plain DOM, no framework, no network:
// the page works the same from file:// and from GitHub Pages. Without JavaScript every incident is listed.
// The choice is kept in the address (index.html#severity=SEV-1&service=api-worker), so it can be shared.
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

  var names = ["severity", "status", "service"];

  function fromAddress() {
    var params = new URLSearchParams(window.location.hash.slice(1));
    names.forEach(function (name) {
      var select = form.elements[name];
      var wanted = params.get(name) || "";
      var known = Array.prototype.some.call(select.options, function (option) {
        return option.value === wanted;
      });
      select.value = known ? wanted : "";
    });
    apply();
  }

  function toAddress() {
    var params = new URLSearchParams();
    names.forEach(function (name) {
      if (form.elements[name].value) {
        params.set(name, form.elements[name].value);
      }
    });
    // Only the fragment changes: no reload, no request, and it works from file:// too.
    window.location.replace("#" + params.toString());
  }

  form.addEventListener("change", function () {
    apply();
    toAddress();
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
  });
  window.addEventListener("hashchange", fromAddress);
  form.hidden = false;
  fromAddress();
})();
