// The composer (templates/inbox/compose.html; inbox/web/compose.py): a rich-text editor that
// saves as the user types, recipients with suggestions from the CRM's persons, files checked
// against the mailbox's limit before they upload, templates, smart fields with a preview, right
// to left text laid out as typed, send later, and undo send (a toast that survives the page
// change). Loaded on every page (boosted navigation swaps the body only): it starts on the page
// that has a composer, and shows a pending undo wherever the user lands.
(function () {
  "use strict";

  var UNDO_KEY = "crm-undo-send";
  var SAVE_DELAY = 1500;
  // Letters of right-to-left scripts: Hebrew, Arabic (Persian, Urdu), Syriac, Thaana, N'Ko.
  var RTL = /[\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF]/;
  var LTR = /[A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF]/;
  var ADDRESS = /^[^@\s<>(),;:"]+@[^@\s<>(),;:"]+\.[^@\s<>(),;:"]+$/;
  var BLOCKS = "P,DIV,LI,BLOCKQUOTE,H1,H2,H3,H4,PRE,TD";

  function csrf() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function post(url, data) {
    return fetch(url, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf(), "X-Requested-With": "fetch" },
    }).then(function (response) {
      return response.json().then(
        function (json) { return { ok: response.ok, status: response.status, json: json }; },
        function () { return { ok: false, status: response.status, json: {} }; }
      );
    });
  }

  function megabytes(size) {
    if (size < 1024) return size + " bytes";
    if (size < 1024 * 1024) return Math.ceil(size / 1024) + " KB";
    var value = size / (1024 * 1024);
    return (value >= 10 ? Math.round(value) : Math.round(value * 10) / 10) + " MB";
  }

  // --- Direction -------------------------------------------------------------------------------

  // The direction of a text: that of its first letter with a strong direction (as Unicode's
  // bidi algorithm decides a paragraph's), or "" when it has none yet.
  function direction(text) {
    for (var i = 0; i < text.length; i++) {
      var char = text.charAt(i);
      if (RTL.test(char)) return "rtl";
      if (LTR.test(char)) return "ltr";
    }
    return "";
  }

  function blockOf(node, editor) {
    while (node && node !== editor) {
      if (node.nodeType === 1 && BLOCKS.indexOf(node.nodeName) >= 0) return node;
      node = node.parentNode;
    }
    return null;
  }

  function markDirection(editor) {
    // Each paragraph gets the direction of its own text, so a Persian line and an English
    // line sit each on their side, in the editor and in the sent mail (`dir` attributes).
    var blocks = editor.querySelectorAll("p,div,li,blockquote,h1,h2,h3,h4");
    Array.prototype.forEach.call(blocks, function (block) {
      if (block.querySelector("p,div,li,blockquote")) return; // a container: its children decide
      var dir = direction(block.textContent || "");
      if (dir === "rtl") block.setAttribute("dir", "rtl");
      else if (block.getAttribute("dir") === "rtl") block.removeAttribute("dir");
    });
    var loose = direction(editor.textContent || "");
    editor.setAttribute("dir", loose === "rtl" ? "rtl" : "auto");
  }

  // --- The composer ----------------------------------------------------------------------------

  function Composer(root) {
    this.root = root;
    this.form = root.querySelector("[data-composer-form]");
    this.editor = root.querySelector("[data-composer-editor]");
    this.status = root.querySelector("[data-composer-status]");
    this.state = JSON.parse(document.getElementById("composer-state").textContent);
    this.files = this.state.files || [];
    this.dirty = false;
    this.saving = null;
    this.timer = null;
    this.closed = false;
    this.start();
  }

  Composer.prototype.field = function (name) { return this.form.elements[name]; };
  Composer.prototype.account = function () { return this.field("account").value; };

  Composer.prototype.start = function () {
    var self = this;
    if (!this.state.draft) this.putSignature();
    document.execCommand("defaultParagraphSeparator", false, "p");
    markDirection(this.editor);
    this.showLimit();
    this.drawFiles();
    this.form.addEventListener("input", function (event) {
      if (event.target.matches("[data-recipients]")) self.suggest(event.target);
      if (event.target === self.editor) markDirection(self.editor);
      self.changed();
    });
    this.form.addEventListener("change", function (event) {
      if (event.target.matches("[data-composer-account]")) {
        self.swapSignature();
        self.showLimit();
      }
      if (event.target.matches("[data-composer-files]")) self.attach(event.target);
      if (event.target.matches("[data-composer-image]")) self.image(event.target);
      if (event.target.matches("select[data-command]")) self.fontSize(event.target);
      self.changed();
    });
    this.form.addEventListener("focusout", function (event) {
      if (event.target.matches("[data-recipients]")) {
        self.checkRecipients(event.target);
        window.setTimeout(function () { self.hideSuggestions(); }, 200);
      }
    });
    this.form.addEventListener("keydown", function (event) { self.keydown(event); });
    this.form.addEventListener("click", function (event) { self.click(event); });
    this.form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.send();
    });
    this.editor.addEventListener("paste", function (event) { self.paste(event); });
    window.addEventListener("beforeunload", function () { self.flush(); });
    document.body.addEventListener("htmx:beforeRequest", function () { self.flush(); }, { once: true });
    if (this.state.autostart) this.save();
  };

  // --- Signature ---

  Composer.prototype.putSignature = function () {
    var slot = this.editor.querySelector("[data-signature]");
    var html = this.state.signatures[this.account()] || "";
    if (!slot) return;
    slot.innerHTML = html ? "<p>--&nbsp;</p>" + html : "";
  };

  Composer.prototype.swapSignature = function () {
    var slot = this.editor.querySelector("[data-signature]");
    if (!slot) {
      var html = this.state.signatures[this.account()] || "";
      if (!html) return;
      slot = document.createElement("div");
      slot.className = "crm-signature";
      slot.setAttribute("data-signature", "");
      var quote = this.editor.querySelector(".crm-quote, blockquote");
      this.editor.insertBefore(slot, quote && quote.parentNode === this.editor ? quote : null);
    }
    this.putSignature();
  };

  // --- Saving ---

  Composer.prototype.changed = function () {
    var self = this;
    this.dirty = true;
    this.say("");
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(function () { self.save(); }, SAVE_DELAY);
  };

  Composer.prototype.bodyHtml = function () {
    // Inline images are our URLs in the editor and cid: references in the message.
    var copy = this.editor.cloneNode(true);
    Array.prototype.forEach.call(copy.querySelectorAll("img[data-cid]"), function (img) {
      img.setAttribute("src", "cid:" + img.getAttribute("data-cid"));
      img.removeAttribute("data-cid");
    });
    Array.prototype.forEach.call(copy.querySelectorAll("[data-signature]"), function (slot) {
      slot.removeAttribute("data-signature");
    });
    var html = copy.innerHTML;
    if (copy.getAttribute("dir") === "rtl") html = '<div dir="rtl">' + html + "</div>";
    return html;
  };

  Composer.prototype.data = function () {
    this.field("body_html").value = this.bodyHtml();
    this.field("draft").value = this.state.draft || "";
    this.field("version").value = this.state.version || "";
    return new FormData(this.form);
  };

  Composer.prototype.save = function () {
    var self = this;
    window.clearTimeout(this.timer);
    if (this.closed) return Promise.resolve(false);
    if (this.saving) {
      // One save at a time: the next one carries whatever changed meanwhile.
      return this.saving.then(function () { return self.dirty ? self.save() : true; });
    }
    this.dirty = false;
    this.say(this.state.draft ? "Saving…" : "");
    this.saving = post(this.root.getAttribute("data-save-url"), this.data()).then(function (answer) {
      self.saving = null;
      if (!answer.ok) {
        self.showErrors(answer.json.errors || {});
        self.say("Not saved");
        return false;
      }
      self.state.draft = answer.json.draft;
      self.state.version = answer.json.version;
      if (answer.json.files) {
        self.files = answer.json.files;
        self.drawFiles();
      }
      self.say("Draft saved " + answer.json.saved_at);
      return true;
    }, function () {
      self.saving = null;
      self.dirty = true;
      self.say("Offline: not saved yet");
      return false;
    });
    return this.saving;
  };

  Composer.prototype.flush = function () {
    if (!this.dirty || this.closed || !this.state.draft) return;
    var data = this.data();
    fetch(this.root.getAttribute("data-save-url"), {
      method: "POST",
      body: data,
      credentials: "same-origin",
      keepalive: true,
      headers: { "X-CSRFToken": csrf() },
    });
    this.dirty = false;
  };

  Composer.prototype.ensureDraft = function () {
    if (this.state.draft) return Promise.resolve(true);
    return this.save();
  };

  Composer.prototype.say = function (text) {
    if (this.status) this.status.textContent = text;
  };

  // --- Errors ---

  Composer.prototype.showErrors = function (errors) {
    var self = this;
    Array.prototype.forEach.call(this.root.querySelectorAll("[data-error-for]"), function (slot) {
      var name = slot.getAttribute("data-error-for");
      var alias = { account_id: "account", reply_to_message_id: "__all__", forward_of_message_id: "__all__", template_id: "__all__", deal_id: "__all__", lead_id: "__all__", project_id: "__all__", person_id: "__all__", version: "__all__", id: "__all__" };
      var found = [];
      Object.keys(errors).forEach(function (key) {
        if (key === name || alias[key] === name) found = found.concat(errors[key]);
      });
      slot.textContent = found.join(" ");
      slot.hidden = !found.length;
      var input = self.field(name);
      if (input && input.setAttribute) input.setAttribute("aria-invalid", found.length ? "true" : "false");
    });
  };

  Composer.prototype.clearError = function (name) {
    var slot = this.root.querySelector('[data-error-for="' + name + '"]');
    if (slot) {
      slot.hidden = true;
      slot.textContent = "";
    }
  };

  // --- Recipients ---

  function splitAddresses(value) {
    var parts = [];
    var current = "";
    var quoted = false;
    var angle = false;
    for (var i = 0; i < value.length; i++) {
      var char = value.charAt(i);
      if (char === '"' && value.charAt(i - 1) !== "\\") quoted = !quoted;
      if (!quoted && char === "<") angle = true;
      if (!quoted && char === ">") angle = false;
      if (!quoted && !angle && (char === "," || char === ";")) {
        parts.push(current);
        current = "";
      } else {
        current += char;
      }
    }
    parts.push(current);
    return parts.map(function (part) { return part.trim(); }).filter(Boolean);
  }

  function addressOf(part) {
    var match = /<([^>]*)>\s*$/.exec(part);
    return (match ? match[1] : part).trim();
  }

  Composer.prototype.checkRecipients = function (input) {
    var bad = splitAddresses(input.value).filter(function (part) {
      return !ADDRESS.test(addressOf(part));
    });
    var slot = this.root.querySelector('[data-error-for="' + input.name + '"]');
    if (slot) {
      slot.textContent = bad.length ? "Not an email address: " + bad.join(", ") : "";
      slot.hidden = !bad.length;
    }
    input.setAttribute("aria-invalid", bad.length ? "true" : "false");
    return !bad.length;
  };

  Composer.prototype.suggest = function (input) {
    var self = this;
    var parts = input.value.split(/[,;]/);
    var term = parts[parts.length - 1].trim();
    this.suggestFor = input;
    if (term.length < 1 || term.indexOf("<") >= 0) return this.hideSuggestions();
    var url = this.root.getAttribute("data-recipients-url") + "?q=" + encodeURIComponent(term);
    var asked = input.value;
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (json) {
      if (input.value !== asked) return; // typed on: a newer answer follows
      self.showSuggestions(input, json.results || []);
    });
  };

  Composer.prototype.showSuggestions = function (input, results) {
    var list = this.root.querySelector("[data-composer-suggestions]");
    list.innerHTML = "";
    if (!results.length) return this.hideSuggestions();
    results.forEach(function (item, index) {
      var option = document.createElement("li");
      option.setAttribute("role", "option");
      option.setAttribute("data-text", item.text);
      option.id = "composer-suggestion-" + index;
      var name = document.createElement("strong");
      name.textContent = item.name;
      var address = document.createElement("span");
      address.textContent = " " + item.address + (item.organization ? " · " + item.organization : "");
      option.appendChild(name);
      option.appendChild(address);
      if (index === 0) option.setAttribute("aria-selected", "true");
      list.appendChild(option);
    });
    var box = input.getBoundingClientRect();
    var form = this.form.getBoundingClientRect();
    list.style.top = box.bottom - form.top + "px";
    list.style.left = box.left - form.left + "px";
    list.style.minWidth = box.width + "px";
    list.hidden = false;
    input.setAttribute("aria-activedescendant", "composer-suggestion-0");
  };

  Composer.prototype.hideSuggestions = function () {
    var list = this.root.querySelector("[data-composer-suggestions]");
    if (list) list.hidden = true;
  };

  Composer.prototype.pick = function (option) {
    var input = this.suggestFor;
    if (!input || !option) return;
    var parts = splitAddresses(input.value);
    var typed = input.value.trim();
    if (typed && !/[,;]\s*$/.test(typed)) parts.pop();
    parts.push(option.getAttribute("data-text"));
    input.value = parts.join(", ") + ", ";
    this.hideSuggestions();
    input.focus();
    this.clearError(input.name);
    this.changed();
  };

  // --- Keys and clicks ---

  Composer.prototype.keydown = function (event) {
    var list = this.root.querySelector("[data-composer-suggestions]");
    if (event.target.matches("[data-recipients]") && list && !list.hidden) {
      var options = Array.prototype.slice.call(list.children);
      var current = list.querySelector('[aria-selected="true"]');
      var index = options.indexOf(current);
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        var next = options[(index + (event.key === "ArrowDown" ? 1 : -1) + options.length) % options.length];
        if (current) current.removeAttribute("aria-selected");
        next.setAttribute("aria-selected", "true");
        event.target.setAttribute("aria-activedescendant", next.id);
        return;
      }
      if (event.key === "Enter" || event.key === "Tab") {
        if (current) {
          event.preventDefault();
          this.pick(current);
        }
        return;
      }
      if (event.key === "Escape") return this.hideSuggestions();
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      this.send();
      return;
    }
    if (event.key === "Enter" && event.target.matches("input")) event.preventDefault();
  };

  Composer.prototype.click = function (event) {
    var option = event.target.closest("[data-composer-suggestions] [role=option]");
    if (option) return this.pick(option);
    var command = event.target.closest("button[data-command]");
    if (command) return this.command(command.getAttribute("data-command"));
    var show = event.target.closest("[data-composer-show]");
    if (show) {
      Array.prototype.forEach.call(this.root.querySelectorAll("[data-composer-extra]"), function (row) { row.hidden = false; });
      show.hidden = true;
      return;
    }
    var menu = event.target.closest("[data-composer-menu]");
    if (menu) return this.toggleMenu(menu);
    var template = event.target.closest("[data-template-id]");
    if (template) return this.insertTemplate(template.getAttribute("data-template-id"));
    var smart = event.target.closest("[data-field]");
    if (smart) return this.insertField(smart.getAttribute("data-field"));
    if (event.target.closest("[data-composer-preview]")) return this.preview();
    var remove = event.target.closest("[data-remove-file]");
    if (remove) return this.removeFile(remove.getAttribute("data-remove-file"));
    if (event.target.closest("[data-composer-discard]")) return this.discard();
  };

  // --- Formatting ---

  Composer.prototype.command = function (name) {
    this.editor.focus();
    if (name === "blockquote") {
      document.execCommand("formatBlock", false, "blockquote");
    } else if (name === "createLink") {
      var url = window.prompt("Link address (https://…)", "https://");
      if (!url) return;
      url = url.trim();
      if (!/^(https?:\/\/|mailto:)/i.test(url)) url = "https://" + url;
      var selection = window.getSelection();
      if (selection && selection.isCollapsed) {
        document.execCommand("insertHTML", false, '<a href="' + url.replace(/"/g, "%22") + '">' + url.replace(/</g, "&lt;") + "</a>");
      } else {
        document.execCommand("createLink", false, url);
      }
    } else {
      document.execCommand(name, false, null);
    }
    this.changed();
  };

  var SIZES = { small: "13px", normal: "", large: "18px", huge: "24px" };

  Composer.prototype.fontSize = function (select) {
    var size = select.value;
    select.value = "";
    if (!size) return;
    this.editor.focus();
    // execCommand's fontSize writes <font size>, which mail clients read unevenly: a span
    // with a CSS size is what they all show.
    document.execCommand("fontSize", false, "7");
    Array.prototype.forEach.call(this.editor.querySelectorAll('font[size="7"]'), function (font) {
      var span = document.createElement("span");
      if (SIZES[size]) span.style.fontSize = SIZES[size];
      while (font.firstChild) span.appendChild(font.firstChild);
      font.parentNode.replaceChild(span, font);
    });
  };

  Composer.prototype.insertHtml = function (html) {
    this.editor.focus();
    var selection = window.getSelection();
    if (!selection || !selection.rangeCount || !this.editor.contains(selection.anchorNode)) {
      // No caret in the editor: at the top, above the signature and the quote.
      var range = document.createRange();
      range.setStart(this.editor, 0);
      range.collapse(true);
      selection.removeAllRanges();
      selection.addRange(range);
    }
    document.execCommand("insertHTML", false, html);
    markDirection(this.editor);
    this.changed();
  };

  // --- Menus: templates and smart fields ---

  Composer.prototype.toggleMenu = function (button) {
    var name = button.getAttribute("data-composer-menu");
    var panel = this.root.querySelector('[data-composer-panel="' + name + '"]');
    var open = panel.hidden;
    Array.prototype.forEach.call(this.root.querySelectorAll("[data-composer-panel]"), function (other) { other.hidden = true; });
    Array.prototype.forEach.call(this.root.querySelectorAll("[data-composer-menu]"), function (other) { other.setAttribute("aria-expanded", "false"); });
    if (!open) return;
    // Keep the caret where it was: the menu inserts there.
    var selection = window.getSelection();
    this.caret = selection && selection.rangeCount && this.editor.contains(selection.anchorNode) ? selection.getRangeAt(0).cloneRange() : null;
    panel.hidden = false;
    button.setAttribute("aria-expanded", "true");
    if (name === "templates") this.loadTemplates(panel);
    if (name === "fields") this.drawFields(panel);
  };

  Composer.prototype.restoreCaret = function () {
    if (!this.caret) return;
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(this.caret);
  };

  Composer.prototype.loadTemplates = function (panel) {
    var list = panel.querySelector("[data-templates-list]");
    var empty = panel.querySelector("[data-templates-empty]");
    fetch(this.root.getAttribute("data-templates-url"), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (json) {
        list.innerHTML = "";
        var folder = null;
        (json.results || []).forEach(function (item) {
          if (item.folder !== folder) {
            folder = item.folder;
            if (folder) {
              var heading = document.createElement("li");
              heading.className = "composer-menu-heading";
              heading.textContent = folder;
              list.appendChild(heading);
            }
          }
          var entry = document.createElement("li");
          var button = document.createElement("button");
          button.type = "button";
          button.setAttribute("data-template-id", item.id);
          button.textContent = item.name + (item.shared ? " (shared)" : "");
          entry.appendChild(button);
          list.appendChild(entry);
        });
        empty.hidden = !!(json.results || []).length;
      });
  };

  Composer.prototype.insertTemplate = function (id) {
    var self = this;
    var panel = this.root.querySelector('[data-composer-panel="templates"]');
    panel.hidden = true;
    fetch(this.root.getAttribute("data-templates-url") + "/" + encodeURIComponent(id), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (json) {
        if (!json.id) return;
        var subject = self.field("subject");
        if (!subject.value.trim() && json.subject) subject.value = json.subject;
        self.field("template").value = json.id;
        self.restoreCaret();
        self.insertHtml(json.body_html);
      });
  };

  Composer.prototype.drawFields = function (panel) {
    var list = panel.querySelector("[data-fields-list]");
    if (list.children.length) return;
    var fields = this.state.fields || {};
    Object.keys(fields).forEach(function (item) {
      var heading = document.createElement("li");
      heading.className = "composer-menu-heading";
      heading.textContent = item.charAt(0).toUpperCase() + item.slice(1);
      list.appendChild(heading);
      Object.keys(fields[item]).forEach(function (name) {
        var entry = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.setAttribute("data-field", item + "." + name);
        button.textContent = fields[item][name];
        entry.appendChild(button);
        list.appendChild(entry);
      });
    });
  };

  Composer.prototype.insertField = function (name) {
    this.root.querySelector('[data-composer-panel="fields"]').hidden = true;
    this.restoreCaret();
    this.editor.focus();
    document.execCommand("insertText", false, "{{" + name + "}}");
    this.changed();
  };

  Composer.prototype.preview = function () {
    var self = this;
    var panel = this.root.querySelector("[data-composer-preview-panel]");
    return post(this.root.getAttribute("data-preview-url"), this.data()).then(function (answer) {
      if (!answer.ok) return self.showErrors(answer.json.errors || {});
      panel.querySelector("[data-preview-subject]").textContent = answer.json.subject;
      panel.querySelector("[data-preview-body]").innerHTML = answer.json.body_html;
      var warnings = panel.querySelector("[data-preview-warnings]");
      warnings.innerHTML = "";
      (answer.json.missing || []).forEach(function (name) {
        var item = document.createElement("li");
        item.className = "composer-warning";
        item.textContent = "{{" + name + "}} has no value here: it will be left empty.";
        warnings.appendChild(item);
      });
      (answer.json.unknown || []).forEach(function (name) {
        var item = document.createElement("li");
        item.className = "composer-warning";
        item.textContent = "{{" + name + "}} is not a field we know: it will be sent as written.";
        warnings.appendChild(item);
      });
      panel.hidden = false;
      return answer.json;
    });
  };

  // --- Files ---

  Composer.prototype.limit = function () {
    return (this.state.limits || {})[this.account()] || 25 * 1024 * 1024;
  };

  Composer.prototype.showLimit = function () {
    var slot = this.root.querySelector("[data-composer-limit]");
    if (slot) slot.textContent = "Up to " + megabytes(this.limit()) + " in all for this mailbox.";
  };

  Composer.prototype.used = function () {
    return this.files.reduce(function (sum, item) { return sum + item.size; }, 0);
  };

  // Refused here, before a byte goes up: the mailbox's provider would refuse it anyway.
  Composer.prototype.fits = function (files) {
    var total = this.used();
    for (var i = 0; i < files.length; i++) total += files[i].size;
    if (total <= this.limit()) return true;
    var slot = this.root.querySelector('[data-error-for="attachments"]');
    slot.textContent = "The files add up to " + megabytes(total) + ", more than this mailbox accepts in one message (" + megabytes(this.limit()) + "). Remove some, or share a link instead.";
    slot.hidden = false;
    return false;
  };

  Composer.prototype.upload = function (file, inline) {
    var self = this;
    return this.ensureDraft().then(function (ok) {
      if (!ok) return null;
      var data = new FormData();
      data.append("draft", self.state.draft);
      data.append("file", file, file.name || "image.png");
      if (inline) data.append("inline", "1");
      self.say("Uploading " + (file.name || "image") + "…");
      return post(self.root.getAttribute("data-files-url"), data).then(function (answer) {
        if (!answer.ok) {
          self.showErrors(answer.json.errors || {});
          self.say("");
          return null;
        }
        self.clearError("attachments");
        self.files.push(answer.json);
        self.drawFiles();
        self.say("Attached " + answer.json.name);
        return answer.json;
      });
    });
  };

  Composer.prototype.attach = function (input) {
    var self = this;
    var files = Array.prototype.slice.call(input.files || []);
    input.value = "";
    if (!files.length || !this.fits(files)) return;
    files.reduce(function (chain, file) {
      return chain.then(function () { return self.upload(file, false); });
    }, Promise.resolve());
  };

  Composer.prototype.image = function (input) {
    var file = input.files && input.files[0];
    input.value = "";
    if (file && this.fits([file])) this.inlineImage(file);
  };

  Composer.prototype.inlineImage = function (file) {
    var self = this;
    this.editor.focus();
    var selection = window.getSelection();
    var caret = selection && selection.rangeCount ? selection.getRangeAt(0).cloneRange() : null;
    return this.upload(file, true).then(function (item) {
      if (!item) return;
      if (caret) {
        selection.removeAllRanges();
        selection.addRange(caret);
      }
      var img = '<img src="' + item.url + '" data-cid="' + item.content_id + '" alt="' + (item.name || "").replace(/"/g, "&quot;") + '" style="max-width:100%">';
      self.insertHtml(img);
    });
  };

  Composer.prototype.paste = function (event) {
    var items = (event.clipboardData && event.clipboardData.files) || [];
    var images = Array.prototype.filter.call(items, function (file) { return /^image\//.test(file.type); });
    if (!images.length) return;
    event.preventDefault();
    if (!this.fits(images)) return;
    var self = this;
    images.forEach(function (file) { self.inlineImage(file); });
  };

  Composer.prototype.drawFiles = function () {
    var list = this.root.querySelector("[data-composer-file-list]");
    if (!list) return;
    list.innerHTML = "";
    this.files.filter(function (item) { return !item.inline; }).forEach(function (item) {
      var entry = document.createElement("li");
      var link = document.createElement("a");
      link.href = item.url;
      link.textContent = item.name;
      link.setAttribute("download", "");
      link.setAttribute("hx-boost", "false");
      var size = document.createElement("span");
      size.className = "muted";
      size.textContent = " " + megabytes(item.size) + " ";
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "button-link";
      remove.setAttribute("data-remove-file", item.id);
      remove.setAttribute("aria-label", "Remove " + item.name);
      remove.textContent = "Remove";
      entry.appendChild(link);
      entry.appendChild(size);
      entry.appendChild(remove);
      list.appendChild(entry);
    });
  };

  Composer.prototype.removeFile = function (id) {
    var self = this;
    var data = new FormData();
    data.append("draft", this.state.draft);
    var url = this.root.getAttribute("data-files-url") + "/" + encodeURIComponent(id) + "/delete";
    post(url, data).then(function (answer) {
      if (!answer.ok) return self.showErrors(answer.json.errors || {});
      self.files = self.files.filter(function (item) { return String(item.id) !== String(id); });
      self.drawFiles();
      self.clearError("attachments");
    });
  };

  // --- Sending ---

  Composer.prototype.send = function () {
    var self = this;
    var fine = true;
    Array.prototype.forEach.call(this.form.querySelectorAll("[data-recipients]"), function (input) {
      if (!self.checkRecipients(input)) fine = false;
    });
    if (!this.field("to").value.trim() && !this.field("cc").value.trim() && !this.field("bcc").value.trim()) {
      this.showErrors({ to: ["Add at least one recipient."] });
      fine = false;
    }
    if (!fine) return Promise.resolve(false);
    var button = this.root.querySelector("[data-composer-send]");
    button.disabled = true;
    window.clearTimeout(this.timer);
    var waiting = this.saving || Promise.resolve();
    return waiting.then(function () {
      return post(self.root.getAttribute("data-send-url"), self.data());
    }).then(function (answer) {
      button.disabled = false;
      if (!answer.ok) {
        self.showErrors(answer.json.errors || {});
        return false;
      }
      self.closed = true;
      self.dirty = false;
      var pending = {
        message: answer.json.message,
        draft: answer.json.draft,
        until: answer.json.undo_until,
        url: answer.json.undo_url,
        scheduled: answer.json.scheduled,
      };
      try {
        window.sessionStorage.setItem(UNDO_KEY, JSON.stringify(pending));
      } catch (error) { /* private mode: the toast shows on this page only */ }
      window.location.assign(answer.json.next);
      return true;
    });
  };

  Composer.prototype.discard = function () {
    var self = this;
    var data = new FormData();
    data.append("draft", this.state.draft || "");
    data.append("next", this.field("next").value);
    this.closed = true;
    window.clearTimeout(this.timer);
    post(this.root.getAttribute("data-discard-url"), data).then(function (answer) {
      window.location.assign(answer.json.next || self.field("next").value);
    });
  };

  // --- Undo send: a toast on whatever page the user lands on ---------------------------------

  function showUndo() {
    var raw;
    try {
      raw = window.sessionStorage.getItem(UNDO_KEY);
    } catch (error) {
      return;
    }
    if (!raw || document.querySelector("[data-undo-send]")) return;
    var pending = JSON.parse(raw);
    var left = pending.until ? new Date(pending.until).getTime() - Date.now() : 10000;
    if (left <= 0 && !pending.scheduled) {
      window.sessionStorage.removeItem(UNDO_KEY);
      return;
    }
    var toast = document.createElement("div");
    toast.className = "toast composer-toast";
    toast.setAttribute("role", "status");
    toast.setAttribute("data-undo-send", "");
    var text = document.createElement("span");
    text.textContent = pending.scheduled || "Sending…";
    var undo = document.createElement("button");
    undo.type = "button";
    undo.className = "button button-small";
    undo.textContent = "Undo";
    toast.appendChild(text);
    toast.appendChild(undo);
    document.body.appendChild(toast);
    function close() {
      window.sessionStorage.removeItem(UNDO_KEY);
      if (toast.parentNode) toast.parentNode.removeChild(toast);
    }
    var timer = window.setTimeout(function () {
      text.textContent = pending.scheduled || "Sent.";
      undo.hidden = true;
      window.setTimeout(close, 2500);
    }, Math.max(left, pending.scheduled ? 10000 : 0));
    undo.addEventListener("click", function () {
      window.clearTimeout(timer);
      undo.disabled = true;
      var data = new FormData();
      data.append("message", pending.message);
      data.append("draft", pending.draft);
      post(pending.url, data).then(function (answer) {
        close();
        if (answer.ok && answer.json.redirect) {
          window.location.assign(answer.json.redirect);
        } else {
          var errors = (answer.json && answer.json.errors) || {};
          var first = Object.keys(errors)[0];
          window.alert(first ? errors[first].join(" ") : "It could not be undone.");
        }
      });
    });
  }

  function start() {
    var root = document.querySelector("[data-composer]");
    if (root && !root.composer) root.composer = new Composer(root);
    showUndo();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  document.addEventListener("htmx:load", start);
})();
