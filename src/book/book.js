// The book's script: the search box over window.BOOK_INDEX (search-index.js,
// loaded before this), and opening the exchange a link points into. No
// network, no library; works from file://.
(function () {
  "use strict";
  var root = document.body.dataset.root || "";
  var index = window.BOOK_INDEX || [];
  var box = document.getElementById("search");
  var results = document.getElementById("results");
  var LIMIT = 40;

  function words(s) {
    return s.toLowerCase().split(/\s+/).filter(function (w) { return w.length > 0; });
  }

  // Every word must appear in the entry; a hit in the title ranks first,
  // an exact title before a partial one.
  function search(query) {
    var ws = words(query);
    if (ws.length === 0) { return []; }
    var hits = [];
    index.forEach(function (e) {
      var title = e[1].toLowerCase(), all = (e[0] + " " + e[1] + " " + e[2]).toLowerCase();
      var score = 0;
      for (var i = 0; i < ws.length; i++) {
        if (all.indexOf(ws[i]) < 0) { return; }
        if (title === ws[i]) { score += 4; } else if (title.indexOf(ws[i]) >= 0) { score += 2; }
      }
      hits.push([score, e]);
    });
    hits.sort(function (a, b) { return b[0] - a[0]; });
    return hits.map(function (h) { return h[1]; });
  }

  function show(query) {
    var hits = search(query);
    results.textContent = "";
    if (words(query).length === 0) { results.hidden = true; return; }
    var count = document.createElement("p");
    count.id = "result-count";
    count.textContent = hits.length === 0 ? "No match." :
      hits.length + (hits.length === 1 ? " match" : " matches") +
      (hits.length > LIMIT ? " (the first " + LIMIT + " shown)" : "");
    results.appendChild(count);
    var list = document.createElement("ul");
    hits.slice(0, LIMIT).forEach(function (e) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = root + e[3];
      var kind = document.createElement("small");
      kind.textContent = e[0];
      var title = document.createElement("b");
      title.textContent = e[1];
      var text = document.createElement("span");
      text.textContent = e[2];
      a.appendChild(title); a.appendChild(kind); a.appendChild(text);
      li.appendChild(a);
      list.appendChild(li);
    });
    results.appendChild(list);
    results.hidden = false;
  }

  if (box && results) {
    box.addEventListener("input", function () { show(box.value); });
    box.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") {
        var first = results.querySelector("a");
        if (first) { location.href = first.href; }
      } else if (ev.key === "Escape") {
        box.value = ""; show("");
      }
    });
    // A search can be linked: index.html?q=pingreq.
    var q = /[?&]q=([^&#]*)/.exec(location.search);
    if (q) { box.value = decodeURIComponent(q[1].replace(/\+/g, " ")); show(box.value); }
  }

  // A link into an exchange (#case-5.0, #case-5.0-3) opens it.
  function reveal() {
    var id = decodeURIComponent(location.hash.slice(1));
    var target = id ? document.getElementById(id) : null;
    var opened = false;
    for (var el = target; el; el = el.parentElement) {
      if (el.tagName === "DETAILS" && !el.open) { el.open = true; opened = true; }
    }
    var inner = target ? target.querySelector("details.exchange") : null;
    if (inner && !inner.open) { inner.open = true; opened = true; }
    // The browser scrolled to the target while it was folded away.
    if (opened) { target.scrollIntoView(); }
  }
  window.addEventListener("hashchange", reveal);
  reveal();
})();
