// The coding page's keyboard and timer. Served as a file (the Content-Security-Policy forbids inline script).
// Keys: 1-9 a label, u the uncertain label, s skip, z undo, f the "codebook unclear" flag; Enter saves a
// multi-label code. Keys typed into the memo are text, not commands.
(function () {
  "use strict";
  var started = Date.now();
  function form() { return document.getElementById("code-form"); }
  function setSeconds() {
    var field = document.getElementById("seconds");
    if (field) { field.value = ((Date.now() - started) / 1000).toFixed(1); }
  }
  document.addEventListener("submit", function (event) {
    if (event.target === form()) { setSeconds(); }
  });
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" && target.type === "text")) { return; }
    var key = event.key;
    if (key === "z") { var undo = document.getElementById("undo"); if (undo) { event.preventDefault(); undo.click(); } return; }
    var f = form();
    if (!f) { return; }
    if (key === "s") { event.preventDefault(); document.getElementById("skip").click(); return; }
    if (key === "f") { event.preventDefault(); var box = document.getElementById("unclear"); box.checked = !box.checked; return; }
    var control = f.querySelector('[data-key="' + (key === "U" ? "u" : key) + '"]');
    if (!control) { return; }
    event.preventDefault();
    if (control.tagName === "INPUT") { control.checked = !control.checked; } else { control.click(); }
  });
})();
