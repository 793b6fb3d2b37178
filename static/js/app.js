// Small enhancements that need no library. Everything works without them.
// Delegated listeners, so pages swapped in by htmx need no re-initialising.
(function () {
  "use strict";

  // "Copy" buttons: <button data-copy-from="element-id" hidden>. Shown only where the
  // clipboard API exists (secure contexts), so a button never appears that cannot work.
  function revealCopyButtons(root) {
    if (!navigator.clipboard) return;
    root.querySelectorAll("[data-copy-from]").forEach(function (button) {
      button.hidden = false;
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-from]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-from"));
    if (!source) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.setAttribute("data-copied", "true");
      button.setAttribute("aria-live", "polite");
      button.textContent = button.getAttribute("data-copied-label") || "\u2713";
    });
  });

  // A <details> menu closes on Escape and when focus or a click goes elsewhere.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      menu.open = false;
      menu.querySelector("summary").focus();
    });
  });
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });

  document.addEventListener("DOMContentLoaded", function () { revealCopyButtons(document); });
  document.addEventListener("htmx:afterSettle", function (event) { revealCopyButtons(event.target); });
})();

// The Email tab (inbox): a conversation opens in place under its row; its "Close" folds it
// again and gives the focus back to the row's subject.
(function () {
  "use strict";

  function opener(slot) {
    return document.querySelector('[aria-controls="' + slot.id + '"]');
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    var slot = event.detail.target;
    if (!slot.classList || !slot.classList.contains("email-thread-slot")) return;
    var button = opener(slot);
    if (button) button.setAttribute("aria-expanded", slot.children.length ? "true" : "false");
  });
  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-email-close]");
    if (!close) return;
    var slot = close.closest(".email-thread-slot");
    if (!slot) return;
    slot.innerHTML = "";
    var button = opener(slot);
    if (button) {
      button.setAttribute("aria-expanded", "false");
      button.focus();
    }
  });
})();
