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
