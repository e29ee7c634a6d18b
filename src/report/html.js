// Filters of the report page: #filter=fail (or fail,flaky…) shows only the
// cases and statements with those marks; the buttons set the fragment, so a
// filtered view can be linked. No network, no library.
(function () {
  "use strict";
  var groups = {
    fail: ["fail", "fixed"], error: ["error"], known: ["known"],
    flaky: ["flaky"], skip: ["skip"], pass: ["pass"]
  };
  function wanted() {
    var m = /^#filter=([a-z,]+)$/.exec(location.hash);
    if (!m) { return null; }
    var names = m[1].split(",").filter(function (n) { return groups[n]; });
    return names.length ? names : null;
  }
  function apply() {
    var names = wanted();
    var marks = names === null ? null : names.reduce(function (all, n) { return all.concat(groups[n]); }, []);
    var rows = document.querySelectorAll("tr[data-mark]");
    var total = 0, shown = 0;
    rows.forEach(function (row) {
      var hide = marks !== null && marks.indexOf(row.dataset.mark) < 0;
      row.hidden = hide;
      if (row.dataset.case !== undefined) { total += 1; if (!hide) { shown += 1; } }
    });
    document.querySelectorAll("[data-group]").forEach(function (group) {
      group.hidden = group.querySelector("tr[data-mark]:not([hidden])") === null;
    });
    document.querySelectorAll("nav.filters a").forEach(function (a) {
      var f = a.getAttribute("href").replace("#filter=", "").replace("#", "");
      a.setAttribute("aria-pressed", String(names === null ? f === "" : names.join(",") === f));
    });
    var showing = document.getElementById("showing");
    showing.textContent = names === null
      ? "Showing all " + total + " cases."
      : "Showing " + shown + " of " + total + " cases: " + names.join(", ") + ".";
    document.body.dataset.filter = names === null ? "all" : names.join(",");
  }
  window.addEventListener("hashchange", apply);
  apply();
})();
