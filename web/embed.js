/*
 * The clinic chat as a widget for any page, with one tag:
 *
 *   <script src="https://chat.example-clinic.org/assets/embed.js" defer
 *           data-server="https://chat.example-clinic.org"
 *           data-clinic-name="Riverside Pain Clinic"
 *           data-colour="#0b5394"></script>
 *
 * It adds a launcher button and, on first use, the chat panel (chat.js) inside a shadow
 * root, so the site's styles and the chat's styles leave each other alone. The chat talks
 * to the server across origins, which the server allows only for the origins listed in its
 * ALLOWED_ORIGINS setting.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__clinicChatWidget) return;
  window.__clinicChatWidget = true;

  var data = script.dataset;
  var server = (data.server || new URL(script.src, window.location.href).origin).replace(/\/+$/, "");
  var clinicName = data.clinicName || "";
  var colour = data.colour || data.color || "";

  /** Load a script of the chat server once; resolve when it has run. */
  function load(src, ready) {
    return new Promise(function (resolve, reject) {
      if (ready()) return resolve();
      var tag = document.createElement("script");
      tag.src = server + src;
      tag.async = true;
      tag.onload = function () { resolve(); };
      tag.onerror = function () { reject(new Error("could not load " + src)); };
      document.head.appendChild(tag);
    });
  }

  function build() {
    var host = document.createElement("div");
    host.id = "clinic-chat-widget";
    var shadow = host.attachShadow({ mode: "open" });
    var sheet = document.createElement("link");
    sheet.rel = "stylesheet";
    sheet.href = server + "/assets/chat.css";
    shadow.appendChild(sheet);

    var launcher = document.createElement("button");
    launcher.type = "button";
    launcher.className = "cc-launcher";
    launcher.textContent = clinicName ? "Chat with " + clinicName : "Chat with us";
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-controls", "cc-panel");

    var panel = document.createElement("div");
    panel.className = "cc-panel";
    panel.id = "cc-panel";
    panel.hidden = true;
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", clinicName ? "Chat with " + clinicName : "Chat with the clinic");

    shadow.append(launcher, panel);
    document.body.appendChild(host);

    var chat = null;

    function open() {
      panel.hidden = false;
      launcher.setAttribute("aria-expanded", "true");
      if (!chat) {
        chat = window.ClinicChat.mount(panel, {
          server: server,
          clinicName: clinicName,
          colour: colour,
          heading: "h2",
          onClose: close
        });
      }
      chat.focus();
    }

    function close() {
      panel.hidden = true;
      launcher.setAttribute("aria-expanded", "false");
      launcher.focus();
    }

    launcher.addEventListener("click", function () {
      if (panel.hidden) open();
      else close();
    });
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") close();
    });

    if (colour) window.ClinicChat.applyAccent(launcher, colour);
  }

  function start() {
    load("/assets/socket.io.min.js", function () { return typeof window.io === "function"; })
      .then(function () {
        return load("/assets/chat.js", function () { return !!window.ClinicChat; });
      })
      .then(build)
      .catch(function (error) {
        // The site stays as it is; the chat server is unreachable or blocked.
        if (window.console) console.warn("clinic chat:", error.message);
      });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
