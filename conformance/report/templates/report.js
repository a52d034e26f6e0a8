/* Filters and search over the scenarios. Reads everything from the DOM: no data is
   interpolated into this script. Multi-valued data-* attributes separate values with "|". */
(function () {
  "use strict";
  var filters = [["filter-rfc", "rfc"], ["filter-verdict", "verdict"], ["filter-level", "level"], ["filter-role", "role"]];

  function value(id) {
    var element = document.getElementById(id);
    return element ? element.value : "";
  }

  function matches(element, key, wanted) {
    if (!wanted) {
      return true;
    }
    return (element.getAttribute("data-" + key) || "").split("|").indexOf(wanted) >= 0;
  }

  function apply() {
    var wanted = filters.map(function (f) { return value(f[0]); });
    var query = value("search").trim().toLowerCase();
    var differ = document.getElementById("filter-differ");
    var onlyDiffering = differ !== null && differ.checked;
    var shown = 0;
    document.querySelectorAll(".scenario").forEach(function (element) {
      var ok = filters.every(function (f, i) { return matches(element, f[1], wanted[i]); });
      if (ok && onlyDiffering) {
        ok = element.getAttribute("data-differs") === "true";
      }
      if (ok && query) {
        ok = element.textContent.toLowerCase().indexOf(query) >= 0;
        if (ok) {
          element.querySelectorAll("details").forEach(function (details) {
            if (details.textContent.toLowerCase().indexOf(query) >= 0) {
              details.open = true;
            }
          });
        }
      }
      element.hidden = !ok;
      if (ok) {
        shown += 1;
      }
    });
    var count = document.getElementById("visible-count");
    if (count !== null) {
      count.textContent = String(shown);
    }
    document.querySelectorAll(".requirement").forEach(function (element) {
      element.hidden = !(matches(element, "rfc", wanted[0]) && matches(element, "level", wanted[2]));
    });
  }

  function reveal() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    var target = id ? document.getElementById(id) : null;
    for (var node = target; node !== null; node = node.parentElement) {
      if (node.tagName === "DETAILS") {
        node.open = true;
      }
      if (node.hidden) {
        node.hidden = false;
      }
    }
  }

  filters.forEach(function (f) {
    var element = document.getElementById(f[0]);
    if (element !== null) {
      element.addEventListener("change", apply);
    }
  });
  ["search", "filter-differ"].forEach(function (id) {
    var element = document.getElementById(id);
    if (element !== null) {
      element.addEventListener("input", apply);
      element.addEventListener("change", apply);
    }
  });
  window.addEventListener("hashchange", reveal);
  apply();
  reveal();
})();
