// The contacts pages' small behaviours: dialogs, tabs, "select all", Escape to cancel an edit.
// Delegated listeners, so content swapped in by htmx needs no re-initialising.
(function () {
  "use strict";

  // A <dialog> swapped in by htmx opens as a modal; closing it removes it, so the next
  // "+ Person" starts fresh. Focus returns to the button that opened it.
  var opener = null;
  function openDialogs(root) {
    (root || document).querySelectorAll("dialog[data-dialog]:not([open])").forEach(function (dialog) {
      dialog.addEventListener("close", function () {
        dialog.remove();
        if (opener && document.contains(opener)) opener.focus();
      });
      dialog.showModal();
      var first = dialog.querySelector("input:not([type=hidden]), select, textarea");
      if (first) first.focus();
    });
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt && event.detail.elt.matches("a[hx-get], button[hx-get]")) opener = event.detail.elt;
  });
  document.addEventListener("htmx:afterSettle", function () { openDialogs(document); });

  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-dialog-close]");
    if (close) {
      var dialog = close.closest("dialog");
      if (dialog) dialog.close();
      return;
    }
    var tab = event.target.closest("[role=tab]");
    if (tab) selectTab(tab);
  });

  function selectTab(tab) {
    var list = tab.closest("[role=tablist]");
    list.querySelectorAll("[role=tab]").forEach(function (other) {
      var selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      other.tabIndex = selected ? 0 : -1;
      var panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) panel.hidden = !selected;
    });
    tab.focus();
  }

  document.addEventListener("keydown", function (event) {
    var tab = event.target.closest && event.target.closest("[role=tab]");
    if (tab && (event.key === "ArrowRight" || event.key === "ArrowLeft")) {
      var tabs = Array.prototype.slice.call(tab.closest("[role=tablist]").querySelectorAll("[role=tab]"));
      var next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
      selectTab(next);
      event.preventDefault();
      return;
    }
    // Escape inside an in-place editor cancels it (a dialog closes on its own).
    if (event.key === "Escape" && !event.target.closest("dialog")) {
      var editor = event.target.closest(".inline-edit, .points form, #item-labels form");
      var cancel = editor && editor.querySelector("[data-inline-cancel]");
      if (cancel) { cancel.click(); event.preventDefault(); }
    }
  });

  // "Select all" ticks the row checkboxes of the same name.
  document.addEventListener("change", function (event) {
    var all = event.target.closest("[data-select-all]");
    if (!all) return;
    var name = all.getAttribute("data-select-all");
    document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (box) {
      box.checked = all.checked;
    });
  });

  document.addEventListener("DOMContentLoaded", function () { openDialogs(document); });
})();
