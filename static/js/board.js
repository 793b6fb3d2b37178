// Deals, leads and projects: the boards' drag and drop, the pickers' autocomplete, and the
// dialogs. No library besides htmx; every action also works by keyboard (the "Move" select on
// each card, the autocomplete's option buttons) and without this file (plain forms).
(function () {
  "use strict";

  // --- Dialogs ---------------------------------------------------------------------------------
  // A form loaded into #sales-dialog-body (Add deal, Add lead, Add project) opens the dialog.
  document.addEventListener("htmx:afterSwap", function (event) {
    var dialog = document.getElementById("sales-dialog");
    if (!dialog || !dialog.contains(event.detail.target)) return;
    if (!dialog.open) dialog.showModal();
    var first = dialog.querySelector("input:not([type=hidden]), select, textarea");
    if (first && event.detail.target.id === "sales-dialog-body") first.focus();
  });
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-dialog-open]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-dialog-open"));
      if (dialog) dialog.showModal();
      return;
    }
    var closer = event.target.closest("[data-dialog-close]");
    if (closer) {
      var open = closer.closest("dialog");
      if (open) open.close();
    }
  });

  // --- Pickers -----------------------------------------------------------------------------------
  // Choosing an option links that contact (its id goes into the hidden field); typing again
  // forgets the id, so a name that matches nothing is sent as a new contact.
  function options(picker) { return picker.querySelector(".picker-options"); }

  document.addEventListener("click", function (event) {
    var option = event.target.closest("[data-pick-id]");
    if (!option) return;
    var picker = option.closest("[data-picker]");
    if (!picker) return;
    picker.querySelector("[data-picker-id]").value = option.getAttribute("data-pick-id");
    var text = picker.querySelector("input[type=text]");
    text.value = option.getAttribute("data-pick-name");
    text.setAttribute("aria-expanded", "false");
    options(picker).innerHTML = "";
    text.focus();
  });
  document.addEventListener("input", function (event) {
    var picker = event.target.closest("[data-picker]");
    if (!picker || event.target.type !== "text") return;
    picker.querySelector("[data-picker-id]").value = "";
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var list = event.detail.target;
    if (!list.classList || !list.classList.contains("picker-options")) return;
    var text = list.closest("[data-picker]").querySelector("input[type=text]");
    text.setAttribute("aria-expanded", list.children.length ? "true" : "false");
  });
  document.addEventListener("keydown", function (event) {
    var picker = event.target.closest && event.target.closest("[data-picker]");
    if (!picker) return;
    var buttons = Array.prototype.slice.call(picker.querySelectorAll("[data-pick-id]"));
    if (event.key === "ArrowDown" && buttons.length) {
      event.preventDefault();
      var at = buttons.indexOf(document.activeElement);
      buttons[Math.min(at + 1, buttons.length - 1)].focus();
    } else if (event.key === "ArrowUp" && buttons.length) {
      event.preventDefault();
      var index = buttons.indexOf(document.activeElement);
      if (index <= 0) picker.querySelector("input[type=text]").focus();
      else buttons[index - 1].focus();
    } else if (event.key === "Escape" && options(picker).children.length) {
      event.preventDefault();
      options(picker).innerHTML = "";
      picker.querySelector("input[type=text]").focus();
    }
  });

  // --- Boards --------------------------------------------------------------------------------------
  // A dropped card moves at once; the server answers with the board re-read (totals included).
  // A refusal (4xx) comes back as the board as it was plus the error, so the card snaps back.
  var dragged = null;

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest(".board-card[data-move-url]");
    if (!card) return;
    dragged = card;
    card.classList.add("is-dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-card-id"));
  });
  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("is-dragging");
    document.querySelectorAll(".board-column.is-over").forEach(function (column) {
      column.classList.remove("is-over");
    });
    dragged = null;
  });
  document.addEventListener("dragover", function (event) {
    var column = dragged && event.target.closest && event.target.closest("[data-drop-stage]");
    if (!column) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    column.classList.add("is-over");
  });
  document.addEventListener("dragleave", function (event) {
    var column = event.target.closest && event.target.closest("[data-drop-stage]");
    if (column && !column.contains(event.relatedTarget)) column.classList.remove("is-over");
  });
  document.addEventListener("drop", function (event) {
    var column = dragged && event.target.closest && event.target.closest("[data-drop-stage]");
    if (!column) return;
    event.preventDefault();
    var card = dragged;
    var board = card.closest("[data-board]");
    var stage = column.getAttribute("data-drop-stage");
    var select = card.querySelector("select");
    if (select && select.value === stage) return;
    // Shown in the new column at once; the server's answer replaces the whole board.
    column.querySelector(".board-cards").appendChild(card);
    var values = {};
    values[card.getAttribute("data-move-field")] = stage;
    var token = board.querySelector("input[name=csrfmiddlewaretoken]");
    htmx.ajax("POST", card.getAttribute("data-move-url"), {
      target: "#board",
      swap: "outerHTML",
      values: values,
      headers: token ? { "X-CSRFToken": token.value } : {}
    });
  });
})();
