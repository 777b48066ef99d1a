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
  // Autosave: what the nurse types is kept on the server (never in the browser) a moment after
  // each change, so an ended EHR authorization loses nothing. The form works without it: a
  // failed submit keeps a draft too.
  var form = document.getElementById("session-form");
  var status = document.getElementById("draft-status");
  if (form && status && window.fetch && window.URLSearchParams && window.FormData) {
    var url = form.getAttribute("data-draft-url");
    var timer = null;
    var dirty = false;
    var show = function (text) { status.hidden = false; status.textContent = text; };
    var save = function (keepalive) {
      timer = null;
      if (!dirty) { return; }
      dirty = false;
      fetch(url, {method: "POST", credentials: "same-origin", keepalive: !!keepalive,
                  body: new URLSearchParams(new FormData(form))})
        .then(function (answer) {
          return answer.json().then(function (body) {
            if (answer.ok && body.saved) {
              show("Draft saved on this server at " + body.at + "; not yet in the chart.");
            } else {
              show("The draft could not be saved; what you typed is still in the form.");
            }
          });
        })
        .catch(function () {
          dirty = true;
          show("The draft could not be saved; what you typed is still in the form.");
        });
    };
    var changed = function () {
      dirty = true;
      if (timer) { clearTimeout(timer); }
      timer = setTimeout(save, 1000);
    };
    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
    form.addEventListener("submit", function () { if (timer) { clearTimeout(timer); } });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden" && timer) { clearTimeout(timer); save(true); }
    });
  }
});
