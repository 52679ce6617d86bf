// cryokit catalogue site: filters and the citation copy button. No request leaves the page's
// own host. (c) cryokit authors, MIT licence.
(function () {
  "use strict";
  function byId(id) { return document.getElementById(id); }

  function overlaps(d, b) {
    var w = b[0], s = b[1], e = b[2], n = b[3];
    if (d.south > n || d.north < s) { return false; }
    if (w <= e) {
      if (d.west <= d.east) { return d.west <= e && d.east >= w; }
      return d.west <= e || d.east >= w;
    }
    return d.west > d.east || d.west <= e || d.east >= w;
  }

  function applyFilters() {
    var data = JSON.parse(byId("catalog-data").textContent);
    var kw = byId("f-keyword").value.trim().toLowerCase();
    var start = byId("f-start").value, end = byId("f-end").value;
    var btext = byId("f-bbox").value.trim(), bbox = null;
    if (btext) {
      bbox = btext.split(",").map(Number);
      if (bbox.length !== 4 || bbox.some(isNaN)) { bbox = null; }
    }
    var shown = 0;
    data.forEach(function (d) {
      var ok = true;
      if (kw) { ok = d.keywords.toLowerCase().split("|").indexOf(kw) >= 0; }
      if (ok && start) { ok = d.time_end >= start; }
      if (ok && end) { ok = d.time_start <= end; }
      if (ok && bbox) { ok = overlaps(d, bbox); }
      var li = document.querySelector('li.card[data-id="' + d.id + '"]');
      if (li) { li.classList.toggle("hidden", !ok); }
      if (ok) { shown += 1; }
    });
    byId("f-count").textContent = shown + " datasets";
  }

  function clearFilters() {
    ["f-keyword", "f-start", "f-end", "f-bbox"].forEach(function (id) { byId(id).value = ""; });
    applyFilters();
  }

  function copyCitation() {
    var b = byId("copy-citation"), text = b.getAttribute("data-citation");
    window.cryokitCopied = text;
    function done(ok) { byId("copy-status").textContent = ok ? "copied" : "select and copy the text above"; }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
    } else { done(false); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (byId("f-apply")) {
      byId("f-apply").addEventListener("click", applyFilters);
      byId("f-clear").addEventListener("click", clearFilters);
    }
    if (byId("copy-citation")) { byId("copy-citation").addEventListener("click", copyCitation); }
  });
}());
