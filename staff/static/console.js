// Reloads a console list every N seconds (data-refresh on <body>), so new urgent
// conversations appear by themselves. Staff can pause it with the checkbox (kept for the
// browser tab in sessionStorage); it waits while someone is typing in a form.
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  var box = document.getElementById("auto-refresh");
  if (!seconds || !box) {
    return;
  }
  var key = "staff-auto-refresh";
  box.checked = window.sessionStorage.getItem(key) !== "off";
  box.addEventListener("change", function () {
    window.sessionStorage.setItem(key, box.checked ? "on" : "off");
  });
  window.setInterval(function () {
    var active = document.activeElement;
    var typing = active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName) && active !== box;
    if (box.checked && !typing && document.visibilityState === "visible") {
      window.location.reload();
    }
  }, seconds * 1000);
})();
