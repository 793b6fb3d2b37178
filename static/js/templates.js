// The rich-text editor of email templates and signatures (templates/inbox/templates_editor.html):
// a contenteditable region, a toolbar (bold, italic, underline, lists, link, quote, clear) and an
// "Insert field" menu that puts a smart field ({{person.first_name}}) where the caret is. The
// HTML goes to the form in a hidden input; the server cleans it when it saves. Delegated from
// document, so pages swapped in by htmx need no set-up.
(function () {
  "use strict";

  // Where the caret last was in an editor: the field menu takes focus away from the text.
  var last = null;

  function editorOf(node) {
    return node && node.closest ? node.closest("[data-html-editor]") : null;
  }

  function areaOf(editor) {
    return editor.querySelector("[data-editor-area][contenteditable]");
  }

  function sync(editor) {
    var input = editor.querySelector("[data-editor-value]");
    var area = areaOf(editor);
    if (!input || !area) return;
    // An editor the user emptied keeps a stray <br>: that is no text.
    input.value = (area.textContent.trim() || area.querySelector("img")) ? area.innerHTML : "";
  }

  document.addEventListener("selectionchange", function () {
    var selection = document.getSelection();
    if (!selection || !selection.rangeCount) return;
    var range = selection.getRangeAt(0);
    var node = range.commonAncestorContainer;
    var element = node.nodeType === 1 ? node : node.parentElement;
    var area = element && element.closest("[data-editor-area][contenteditable]");
    if (area) last = { area: area, range: range.cloneRange() };
  });

  // Focus the text again, with the caret (or selection) where the user left it. Only when
  // focus went elsewhere (the field menu): setting the selection again would drop the style
  // a toolbar button just chose for the next letters typed.
  function resume(editor) {
    var area = areaOf(editor);
    if (document.activeElement === area) return area;
    area.focus();
    var selection = document.getSelection();
    if (last && last.area === area && selection) {
      selection.removeAllRanges();
      selection.addRange(last.range);
    }
    return area;
  }

  function inQuote(area) {
    var selection = document.getSelection();
    if (!selection || !selection.rangeCount) return false;
    var node = selection.getRangeAt(0).startContainer;
    var element = node.nodeType === 1 ? node : node.parentElement;
    var quote = element && element.closest("blockquote");
    return Boolean(quote && area.contains(quote));
  }

  function linkTarget(text) {
    var url = (text || "").trim();
    if (!url) return "";
    if (/^(https?:|mailto:)/i.test(url)) return url;
    if (/^[^\s@/]+@[^\s@/]+$/.test(url)) return "mailto:" + url;
    return "https://" + url;
  }

  function run(editor, command, value) {
    var area = resume(editor);
    if (command === "blockquote") {
      // The same button takes the text out of the quote again.
      document.execCommand("formatBlock", false, inQuote(area) ? "div" : "blockquote");
    } else {
      document.execCommand(command, false, value);
    }
    sync(editor);
  }

  // Toolbar buttons must not take the selection away from the text.
  document.addEventListener("mousedown", function (event) {
    if (event.target.closest && event.target.closest("[data-editor-command]")) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-editor-command]");
    var editor = editorOf(button);
    if (!editor) return;
    var command = button.getAttribute("data-editor-command");
    if (command === "createLink") {
      var url = linkTarget(window.prompt(button.getAttribute("data-editor-prompt") || "URL", "https://"));
      if (!url || url === "https://") return;
      run(editor, "createLink", url);
    } else {
      run(editor, command);
    }
  });

  document.addEventListener("change", function (event) {
    var menu = event.target.closest && event.target.closest("[data-editor-field]");
    var editor = editorOf(menu);
    if (!editor || !menu.value) return;
    var token = menu.value;
    menu.value = "";
    run(editor, "insertText", token);
  });

  document.addEventListener("input", function (event) {
    var editor = editorOf(event.target);
    if (editor && event.target.matches("[data-editor-area]")) sync(editor);
  });

  // Before any other handler (htmx's boosted submit among them) reads the form.
  document.addEventListener("submit", function (event) {
    Array.prototype.forEach.call(event.target.querySelectorAll("[data-html-editor]"), sync);
  }, true);
})();
