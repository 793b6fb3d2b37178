// The Sales Inbox's keyboard and reader. Everything works without it (links and forms); this
// adds: j / k to move through the conversations, Enter (or o) to open one, e to archive, # to
// delete, u to mark unread, / to search, Escape to close the reader. Delegated from document,
// so the list can be swapped by htmx freely.
(function () {
  "use strict";

  function mailbox() { return document.querySelector("[data-mailbox]"); }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll(".mailbox-row")); }
  function selected() { return document.querySelector(".mailbox-row.is-selected"); }

  // The selected conversation's id survives its row being redrawn by an action.
  var selectedId = null;

  function select(row) {
    selectedId = row ? row.getAttribute("data-thread-id") : null;
    rows().forEach(function (other) {
      other.classList.remove("is-selected");
      other.removeAttribute("aria-current");
    });
    if (!row) return;
    row.classList.add("is-selected");
    row.setAttribute("aria-current", "true");
    var link = row.querySelector("[data-mailbox-open]");
    if (link) link.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var index = all.indexOf(selected());
    var next = index < 0 ? 0 : Math.min(Math.max(index + step, 0), all.length - 1);
    select(all[next]);
  }

  // The conversation a key acts on: the open one in the reader, else the selected row.
  function target() {
    var reader = document.querySelector("#mailbox-reader .mailbox-reader-inner");
    if (reader) return reader;
    return selected();
  }

  function press(op) {
    var scope = target();
    if (!scope) return;
    var button = scope.querySelector('[data-mailbox-op="' + op + '"]');
    if (!button) return;
    // A key can come before htmx has set up a conversation it just swapped in (it does so
    // after settling): without that the form would be posted as a page, leaving the inbox.
    if (window.htmx && button.form) window.htmx.process(button.form);
    button.click();
  }

  function typing(element) {
    if (!element) return false;
    var tag = element.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || element.isContentEditable;
  }

  document.addEventListener("keydown", function (event) {
    if (!mailbox() || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "Enter":
      case "o": {
        var row = selected();
        if (!row || event.target.closest("button, form")) return;
        var link = row.querySelector("[data-mailbox-open]");
        if (link) link.click();
        break;
      }
      case "e": press("archive"); break;
      case "#": press("delete"); break;
      case "u": press("unread"); break;
      case "/": {
        var box = document.querySelector("[data-mailbox-search]");
        if (box) box.focus();
        break;
      }
      case "Escape": {
        var close = document.querySelector("[data-mailbox-close]");
        if (close) close.click();
        break;
      }
      default: return;
    }
    event.preventDefault();
  });

  // Opening a conversation selects its row, and drops its unread mark at once.
  document.addEventListener("click", function (event) {
    var open = event.target.closest("[data-mailbox-open]");
    if (open) {
      var row = open.closest(".mailbox-row");
      select(row);
      if (row) row.classList.remove("is-unread");
      return;
    }
    var close = event.target.closest("[data-mailbox-close]");
    if (close && mailbox()) {
      event.preventDefault();
      var reader = document.getElementById("mailbox-reader");
      if (reader) reader.innerHTML = "";
      var current = selected();
      if (current) select(current);
    }
  });

  document.addEventListener("htmx:afterSettle", function () {
    if (!selectedId || selected()) return;
    var row = document.getElementById("mailbox-row-" + selectedId);
    if (row) {
      row.classList.add("is-selected");
      row.setAttribute("aria-current", "true");
    }
  });

  // A <select data-autosubmit> (the account switcher) applies itself when changed.
  document.addEventListener("change", function (event) {
    var field = event.target.closest("[data-autosubmit]");
    if (field && field.form) field.form.requestSubmit();
  });

  // After an action: the reader closes when its conversation left the list; the notice goes
  // after a while (its Undo with it; the server keeps the token valid longer).
  var toastTimer = null;
  document.addEventListener("htmx:afterSwap", function (event) {
    var toast = event.detail.target;
    if (!toast || toast.id !== "mailbox-toast") return;
    var message = toast.querySelector("[data-removed]");
    var removed = message ? message.getAttribute("data-removed").split(",") : [];
    var reader = document.querySelector("#mailbox-reader .mailbox-reader-inner");
    if (reader && removed.indexOf(reader.getAttribute("data-thread-id")) >= 0) {
      document.getElementById("mailbox-reader").innerHTML = "";
    }
    if (toastTimer) clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { toast.innerHTML = ""; }, 12000);
  });
})();
