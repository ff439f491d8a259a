/*
 * The clinic assistant's chat, for the page at / and for the embeddable widget (embed.js).
 *
 * Plain JavaScript, no build step. It speaks Rasa's socket.io protocol as bot/channels.py
 * serves it: `session_request` -> `session_confirm` (the server-issued id, kept in
 * localStorage so a reload or a new tab continues) -> `session_history` (the conversation
 * so far, from the server; no patient text is kept in the browser), then `user_uttered` /
 * `clinic_reply` (each reply whole: text, buttons and the reply contract; the server's
 * `bot_uttered` events carry the same in Rasa's shapes, for standard clients).
 *
 * Every text is put into the page as text (textContent, createTextNode), never as HTML:
 * the only markup made from a bot message is a link, built element by element, and only
 * for http(s) addresses and the clinic's own phone numbers.
 */
(function () {
  "use strict";

  var STORAGE_PREFIX = "clinic-chat:session:";
  var REPLY_WAIT_MS = 30000;
  var TEXTAREA_MAX_PX = 160;
  var ANNOUNCED_KEEP = 3;
  var mounted = 0;

  /** An element with an optional class and text. */
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /** A span read by screen readers only. */
  function hiddenText(text) {
    return el("span", "cc-visually-hidden", text);
  }

  /** Python's len(): code points, so the page and the server count a message alike. */
  function length(text) {
    return Array.from(text).length;
  }

  function escapeRegExp(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  /** An http(s) URL as a string, or null for anything else (javascript:, data:, ...). */
  function safeUrl(raw) {
    try {
      var url = new URL(raw);
      if ((url.protocol === "http:" || url.protocol === "https:") && !url.username && !url.password) {
        return url.href;
      }
    } catch (error) {
      /* not a URL: stays text */
    }
    return null;
  }

  function telHref(number) {
    return "tel:" + number.replace(/[^\d+]/g, "");
  }

  /**
   * A matcher for what may become a link in a bot message: markdown links and bare
   * URLs, and the clinic's configured phone numbers (exactly as configured).
   */
  function linkPattern(phones) {
    var parts = ["\\[([^\\]\\n]{1,200})\\]\\((\\S{1,2000}?)\\)", "(https?:\\/\\/[^\\s<>\"')\\]]+)"];
    var numbers = phones
      .filter(function (phone) { return phone && /\d{3}|^\d{2,3}$/.test(phone); })
      .sort(function (a, b) { return b.length - a.length; })
      .map(escapeRegExp);
    if (numbers.length) parts.push("(?<![\\d])(" + numbers.join("|") + ")(?![\\d])");
    return new RegExp(parts.join("|"), "g");
  }

  function link(href, text, external) {
    var a = el("a", "cc-link", text);
    a.href = href;
    if (external) {
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
    }
    return a;
  }

  /** Append `text` to `parent` as text nodes and safe links. */
  function appendLinkified(parent, text, pattern) {
    var last = 0;
    pattern.lastIndex = 0;
    var match;
    while ((match = pattern.exec(text)) !== null) {
      var node = null;
      if (match[1] !== undefined) {
        var target = safeUrl(match[2]);
        node = target ? link(target, match[1], true) : null;
      } else if (match[3] !== undefined) {
        // A full stop or comma after an address ends the sentence, not the address.
        var address = match[3].replace(/[.,;:!?]+$/, "");
        var bare = safeUrl(address);
        node = bare ? link(bare, address, true) : null;
        if (node) pattern.lastIndex = match.index + address.length;
      } else if (match[4] !== undefined) {
        node = link(telHref(match[4]), match[4], false);
      }
      if (node) {
        parent.appendChild(document.createTextNode(text.slice(last, match.index)));
        parent.appendChild(node);
        last = match.index + (match[3] !== undefined ? node.textContent.length : match[0].length);
      }
    }
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  /** The sections a knowledge answer cites, as one "Source: ..." line, or "". */
  function sourceLine(answer) {
    if (!answer || answer.type !== "knowledge" || !Array.isArray(answer.sections)) return "";
    var cited = answer.sections
      .filter(function (s) { return s && s.number !== undefined && s.title; })
      .map(function (s) { return "section " + s.number + " \u2014 " + s.title; });
    return cited.length ? "Source: clinic guide, " + cited.join("; ") : "";
  }

  /** The bot's text without its own "Source: ..." line when the page shows one
   * (a knowledge answer's text goes on after it with "Did this help?"). */
  function displayText(text, answer) {
    if (!sourceLine(answer)) return text;
    return text.replace(/\n?Source:[^\n]*/, "");
  }

  /** Relative luminance of an "rgb(r, g, b)" string (WCAG 2.1). */
  function luminance(rgb) {
    var channels = (rgb.match(/[\d.]+/g) || []).slice(0, 3).map(function (v) {
      var c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    if (channels.length < 3) return null;
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
  }

  function contrast(a, b) {
    var hi = Math.max(a, b);
    var lo = Math.min(a, b);
    return (hi + 0.05) / (lo + 0.05);
  }

  /**
   * The clinic's colour and a text colour readable on it, or null when neither white nor
   * near-black text reaches WCAG AA (4.5:1) on it: then the default colours stay.
   */
  function accentColours(colour) {
    if (!colour || !window.CSS || !CSS.supports("color", colour)) return null;
    var probe = el("span");
    probe.style.setProperty("color", colour);
    probe.style.setProperty("display", "none");
    document.body.appendChild(probe);
    var rgb = getComputedStyle(probe).color;
    probe.remove();
    var lum = luminance(rgb);
    if (lum === null || /rgba\(.*,\s*0(\.\d+)?\)$/.test(rgb)) return null;
    var onWhite = contrast(lum, 1);
    var onDark = contrast(lum, luminance("rgb(26, 26, 26)"));
    if (onWhite >= 4.5) return { accent: rgb, onAccent: "#ffffff" };
    if (onDark >= 4.5) return { accent: rgb, onAccent: "#1a1a1a" };
    return null;
  }

  function applyAccent(target, colour) {
    var colours = accentColours(colour);
    if (!colours) return false;
    target.style.setProperty("--cc-accent", colours.accent);
    target.style.setProperty("--cc-on-accent", colours.onAccent);
    return true;
  }

  function storage() {
    try {
      return window.localStorage;
    } catch (error) {
      return null; /* storage blocked: the conversation lasts as long as the page */
    }
  }

  /** The settings the server publishes for the page (bot/web.py, GET /chat/config). */
  function loadConfig(server) {
    return fetch(server + "/chat/config", { credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : {}; })
      .catch(function () { return {}; });
  }

  /**
   * Build the chat inside `container` and connect it.
   *
   * options: server ("" = this page's origin), clinicName, colour, heading ("h1"/"h2"),
   * onClose (a function: the widget's close button; the page has none).
   */
  function mount(container, options) {
    options = options || {};
    var server = (options.server || "").replace(/\/+$/, "");
    var n = ++mounted;
    var root = el("section", "cc-chat");
    container.appendChild(root);
    if (options.colour) applyAccent(root, options.colour);

    var state = {
      maxChars: 2000,
      phones: [],
      pattern: linkPattern([]),
      sessionId: null,
      ready: false,
      everConnected: false,
      queue: [],
      titles: {}, // quick-reply payload -> title, to show a payload as what was clicked
      waiting: 0,
      waitTimer: null,
      storeKey: STORAGE_PREFIX + (server || window.location.origin),
      socket: null
    };

    // --- the page's parts -------------------------------------------------------
    var header = el("header", "cc-header");
    var title = el(options.heading || "h1", "cc-title", "Ask our assistant");
    title.id = "cc-title-" + n;
    root.setAttribute("aria-labelledby", title.id);
    header.appendChild(title);
    var subtitle = el("p", "cc-subtitle");
    header.appendChild(subtitle);
    if (typeof options.onClose === "function") {
      var close = el("button", "cc-close");
      close.type = "button";
      close.appendChild(el("span", "cc-close__icon", "\u00d7")).setAttribute("aria-hidden", "true");
      close.appendChild(hiddenText("Close the chat"));
      close.addEventListener("click", options.onClose);
      header.appendChild(close);
    }
    root.appendChild(header);

    var disclaimer = el("p", "cc-disclaimer");
    root.appendChild(disclaimer);

    var status = el("p", "cc-status");
    status.setAttribute("role", "status");
    root.appendChild(status);

    var log = el("ol", "cc-log");
    log.setAttribute("aria-label", "Conversation");
    log.tabIndex = 0; // a scrolling region must be reachable by keyboard
    root.appendChild(log);

    var typing = el("p", "cc-typing");
    typing.hidden = true;
    var dots = el("span", "cc-typing__dots");
    dots.setAttribute("aria-hidden", "true");
    dots.append(el("span"), el("span"), el("span"));
    typing.append(dots, el("span", "cc-typing__text", "The assistant is typing\u2026"));
    root.appendChild(typing);

    var announcer = el("div", "cc-visually-hidden");
    announcer.setAttribute("aria-live", "polite");
    announcer.setAttribute("aria-relevant", "additions");
    root.appendChild(announcer);

    var form = el("form", "cc-form");
    form.noValidate = true;
    var label = el("label", "cc-label", "Your question");
    var input = el("textarea", "cc-input");
    input.id = "cc-input-" + n;
    input.name = "message";
    input.rows = 1;
    input.autocomplete = "off";
    label.htmlFor = input.id;
    var note = el("p", "cc-note");
    note.id = "cc-note-" + n;
    note.setAttribute("aria-live", "polite");
    input.setAttribute("aria-describedby", note.id);
    var send = el("button", "cc-send", "Send");
    send.type = "submit";
    var row = el("div", "cc-form__row");
    row.append(input, send);
    form.append(label, row, note);
    root.appendChild(form);

    // --- settings from the server -------------------------------------------------
    function applyConfig(config) {
      var name = options.clinicName || config.clinic_name || "";
      subtitle.textContent = name ? name.charAt(0).toUpperCase() + name.slice(1) : "";
      var max = Number(config.max_message_chars);
      if (max > 0) state.maxChars = max;
      state.phones = [config.emergency_number, config.crisis_line, config.clinic_phone].filter(Boolean);
      state.pattern = linkPattern(state.phones);
      disclaimer.textContent = "";
      appendLinkified(
        disclaimer,
        "I'm an automated assistant: general information from our clinic's guide, not medical advice. " +
          (config.emergency_number
            ? "In an emergency, call " + config.emergency_number + "."
            : "In an emergency, call your local emergency number."),
        state.pattern
      );
    }
    applyConfig({});

    // --- the conversation -----------------------------------------------------------
    function scrollToEnd() {
      log.scrollTop = log.scrollHeight;
    }

    function announce(text) {
      var line = el("p", null, text);
      announcer.appendChild(line);
      while (announcer.childNodes.length > ANNOUNCED_KEEP) announcer.removeChild(announcer.firstChild);
    }

    function disableQuickReplies() {
      log.querySelectorAll(".cc-replies button").forEach(function (button) {
        button.disabled = true;
      });
    }

    function userBubble(text) {
      var item = el("li", "cc-msg cc-msg--user");
      item.appendChild(hiddenText("You: "));
      item.appendChild(el("p", "cc-msg__text", text));
      return item;
    }

    function botBubble(message) {
      var answer = (message.custom && message.custom.answer) || null;
      var emergency = answer && answer.type === "emergency";
      var item = el("li", "cc-msg cc-msg--bot" + (emergency ? " cc-msg--emergency" : ""));
      if (emergency) {
        var alert = el("p", "cc-msg__alert");
        var icon = el("span", "cc-msg__alert-icon", "!");
        icon.setAttribute("aria-hidden", "true");
        alert.append(icon, document.createTextNode("Urgent: please read"));
        item.appendChild(alert);
      } else {
        item.appendChild(hiddenText("Assistant: "));
      }
      var text = displayText(typeof message.text === "string" ? message.text : "", answer);
      text.split(/\n+/).forEach(function (paragraph) {
        if (!paragraph.trim()) return;
        var p = el("p", "cc-msg__text");
        appendLinkified(p, paragraph, state.pattern);
        item.appendChild(p);
      });
      var source = sourceLine(answer);
      if (source) item.appendChild(el("p", "cc-msg__source", source));
      var buttons = Array.isArray(message.buttons) ? message.buttons : [];
      if (buttons.length) {
        var group = el("div", "cc-replies");
        group.setAttribute("role", "group");
        group.setAttribute("aria-label", "Suggested replies");
        buttons.forEach(function (b) {
          if (!b || typeof b.title !== "string" || typeof b.payload !== "string") return;
          state.titles[b.payload] = b.title;
          var button = el("button", "cc-reply", b.title);
          button.type = "button";
          button.addEventListener("click", function () {
            if (button.disabled) return;
            if (submit(b.payload, b.title)) {
              button.classList.add("cc-reply--chosen");
              input.focus();
            }
          });
          group.appendChild(button);
        });
        item.appendChild(group);
      }
      return { item: item, spoken: (emergency ? "Urgent: " : "Assistant: ") + text };
    }

    function showHistory(turns) {
      log.textContent = "";
      (Array.isArray(turns) ? turns : []).forEach(function (turn) {
        if (!turn || typeof turn.text !== "string" && !turn.buttons) return;
        if (turn.sender === "user") {
          disableQuickReplies();
          var said = turn.text || "";
          log.appendChild(userBubble(state.titles[said] || said));
        } else {
          log.appendChild(botBubble(turn).item);
        }
      });
      state.queue.forEach(function (queued) { log.appendChild(queued.item); });
      scrollToEnd();
    }

    function setWaiting(on) {
      clearTimeout(state.waitTimer);
      typing.hidden = !on;
      log.setAttribute("aria-busy", on ? "true" : "false");
      if (on) {
        state.waitTimer = setTimeout(function () {
          typing.hidden = true;
          log.setAttribute("aria-busy", "false");
          setStatus("The assistant hasn't answered yet. You can wait, ask again, or call the clinic.", "warn");
        }, REPLY_WAIT_MS);
      }
    }

    function setStatus(text, kind) {
      status.textContent = text || "";
      status.className = "cc-status" + (kind ? " cc-status--" + kind : "");
    }

    function emit(queued) {
      state.socket.emit("user_uttered", { message: queued.message, session_id: state.sessionId });
      queued.item.classList.remove("cc-msg--pending");
      var pendingNote = queued.item.querySelector(".cc-msg__pending");
      if (pendingNote) pendingNote.remove();
      setWaiting(true);
    }

    function flush() {
      var queued = state.queue;
      state.queue = [];
      queued.forEach(emit);
    }

    /** Send `message` (shown as `shown`): false when there was nothing to send. */
    function submit(message, shown) {
      var text = message.trim();
      if (!text) return false;
      if (length(text) > state.maxChars) {
        showTooLong(length(text));
        return false;
      }
      disableQuickReplies();
      if (status.classList.contains("cc-status--ok")) setStatus("");
      var item = userBubble(shown || text);
      var queued = { message: text, item: item };
      log.appendChild(item);
      if (state.ready) {
        emit(queued);
      } else {
        item.classList.add("cc-msg--pending");
        item.appendChild(el("p", "cc-msg__pending", "Not sent yet: it will be sent when the connection is back."));
        state.queue.push(queued);
      }
      scrollToEnd();
      return true;
    }

    function showTooLong(count) {
      input.setAttribute("aria-invalid", "true");
      note.className = "cc-note cc-note--error";
      note.textContent =
        "Your message is " + count.toLocaleString("en") + " characters long; the limit is " +
        state.maxChars.toLocaleString("en") + ". Please shorten it, or call the clinic to tell us more.";
    }

    function clearNote() {
      input.removeAttribute("aria-invalid");
      note.className = "cc-note";
      note.textContent = "";
    }

    function grow() {
      input.style.setProperty("height", "auto");
      input.style.setProperty("height", Math.min(input.scrollHeight + 2, TEXTAREA_MAX_PX) + "px");
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (submit(input.value)) {
        input.value = "";
        clearNote();
        grow();
      }
      input.focus();
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
      }
    });
    input.addEventListener("input", function () {
      grow();
      var count = length(input.value);
      if (count > state.maxChars) showTooLong(count);
      else if (input.hasAttribute("aria-invalid")) clearNote();
    });

    // --- the connection -------------------------------------------------------------
    function connect() {
      if (typeof window.io !== "function") {
        setStatus("The chat could not load. Please call the clinic.", "error");
        return;
      }
      var socket = window.io(server || undefined, {
        path: "/socket.io",
        reconnectionDelay: 1000,
        reconnectionDelayMax: 4000,
        withCredentials: false
      });
      state.socket = socket;
      socket.on("connect", function () {
        var store = storage();
        var stored = store ? store.getItem(state.storeKey) : null;
        socket.emit("session_request", { session_id: stored || null });
      });
      socket.on("session_confirm", function (id) {
        if (typeof id !== "string") return;
        state.sessionId = id;
        var store = storage();
        if (store) {
          try {
            store.setItem(state.storeKey, id);
          } catch (error) {
            /* full or blocked: this page still works */
          }
        }
      });
      socket.on("session_history", function (turns) {
        showHistory(turns);
        if (state.everConnected) setStatus("Connected again.", "ok");
        else setStatus("");
        state.everConnected = true;
        state.ready = true;
        flush();
      });
      socket.on("clinic_reply", function (message) {
        if (!message || typeof message !== "object") return;
        setWaiting(false);
        if (status.classList.contains("cc-status--warn")) setStatus("");
        var bubble = botBubble(message);
        log.appendChild(bubble.item);
        announce(bubble.spoken);
        scrollToEnd();
      });
      socket.on("user_echo", function (echo) {
        // Sent from another tab of this conversation.
        if (!echo || typeof echo.text !== "string" || !echo.text.trim()) return;
        disableQuickReplies();
        log.appendChild(userBubble(state.titles[echo.text] || echo.text));
        setWaiting(true);
        scrollToEnd();
      });
      socket.on("session_error", function () {
        setStatus("Something went wrong with this conversation. Please reload the page.", "error");
      });
      socket.on("disconnect", function () {
        state.ready = false;
        setWaiting(false);
        setStatus("Connection lost. Trying again\u2026 Anything you type will be sent when it's back.", "error");
      });
      socket.on("connect_error", function () {
        state.ready = false;
        setStatus("Can't reach the clinic's assistant right now. Trying again\u2026 Anything you type will be sent when it's back.", "error");
      });
    }

    loadConfig(server).then(function (config) {
      applyConfig(config);
      connect();
    });

    return {
      root: root,
      focus: function () { input.focus(); }
    };
  }

  /** Bot text as the page shows it (also what the tests check links against). */
  function renderText(parent, text, phones) {
    appendLinkified(parent, text, linkPattern(phones || []));
    return parent;
  }

  window.ClinicChat = { mount: mount, applyAccent: applyAccent, renderText: renderText };

  function autostart() {
    var page = document.querySelector('[data-clinic-chat="page"]');
    if (page) mount(page, { heading: "h1" });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", autostart);
  else autostart();
})();
