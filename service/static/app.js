// Optional enhancements only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Fill the time zone from the browser when the form still shows the server's default.
  var tz = document.getElementById("f-tz");
  if (tz && tz.getAttribute("data-default-tz") === "yes" && window.Intl) {
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone) { tz.value = zone; }
    } catch (e) { /* keep UTC */ }
  }
  // The print view's button (hidden without this script, which is what makes it work).
  var printer = document.getElementById("print-button");
  if (printer) {
    printer.hidden = false;
    printer.addEventListener("click", function () { window.print(); });
  }
  // A preset dose fills the dose field, so what is shown is what is saved.
  document.querySelectorAll("input[name='dose_preset']").forEach(function (r) {
    r.addEventListener("change", function () {
      var dose = document.getElementById("f-dose_mg");
      if (dose && r.checked && /^[0-9]+$/.test(r.value)) { dose.value = r.value; }
    });
  });
  // Bring the error summary into view and focus, so keyboard and screen-reader users start there.
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
  // Flag esketamine monitoring under the REMS minimum while typing (the server warns again).
  var minutes = document.getElementById("f-monitoring_minutes");
  if (minutes) {
    var check = function () {
      var eske = document.querySelector("input[name='product'][value='esketamine']");
      var n = parseInt(minutes.value, 10);
      var least = parseInt(minutes.getAttribute("data-rems-minutes"), 10);
      var short = eske && eske.checked && !isNaN(n) && n < least;
      minutes.parentNode.classList.toggle("rems-short", !!short);
    };
    minutes.addEventListener("input", check);
    document.querySelectorAll("input[name='product']").forEach(function (r) {
      r.addEventListener("change", check);
    });
    check();
  }
});
