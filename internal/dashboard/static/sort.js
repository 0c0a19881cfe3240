// Progressive enhancement: sort a table in place when its column header is
// clicked, without a round trip. Without JavaScript the header links sort on
// the server (?sort=), so every order is also a permalink; this keeps the
// address bar on that permalink too.
"use strict";
(function () {
  function key(td, numeric) {
    var v = td.getAttribute("data-sort");
    if (v === null) v = td.textContent.trim();
    if (numeric) {
      var n = parseFloat(v);
      return isNaN(n) ? null : n;
    }
    return v.toLowerCase();
  }
  function compare(a, b) {
    if (a === b) return 0;
    if (a === null) return 1;
    if (b === null) return -1;
    return a < b ? -1 : 1;
  }
  function sortBy(table, th) {
    var ths = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var col = ths.indexOf(th);
    var numeric = th.hasAttribute("data-numeric");
    var desc = th.getAttribute("aria-sort") === "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var c = compare(key(r1.cells[col], numeric), key(r2.cells[col], numeric));
      return desc ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    ths.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", desc ? "descending" : "ascending");
    var u = new URL(window.location.href);
    u.searchParams.set("sort", (desc ? "-" : "") + th.getAttribute("data-key"));
    if (table.id) u.searchParams.set("table", table.id);
    window.history.replaceState(null, "", u.toString());
  }
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest("table[data-sortable] thead th a");
    if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    ev.preventDefault();
    var th = a.closest("th");
    sortBy(th.closest("table"), th);
  });
})();
