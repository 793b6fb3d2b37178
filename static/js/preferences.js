// Settings → Preferences: a "Use this computer's time zone: Europe/Berlin" button beside the
// time-zone select, shown when the browser knows its zone, the list has it, and it is not the
// one chosen. The select works without it.
(function () {
  "use strict";

  function browserZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      return "";
    }
  }

  function offer(root) {
    var wrap = root.querySelector && root.querySelector("[data-timezone-detect]");
    if (!wrap) return;
    var button = wrap.querySelector("button");
    var select = wrap.closest(".field").querySelector("select");
    var zone = browserZone();
    var known = select && zone && Array.prototype.some.call(select.options, function (option) {
      return option.value === zone;
    });
    if (!known || select.value === zone) {
      wrap.hidden = true;
      return;
    }
    button.textContent = button.getAttribute("data-label").replace("%(zone)s", zone);
    button.setAttribute("data-zone", zone);
    wrap.hidden = false;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-timezone-detect] button");
    if (!button) return;
    var select = button.closest(".field").querySelector("select");
    select.value = button.getAttribute("data-zone");
    select.dispatchEvent(new Event("change", { bubbles: true }));
    select.focus();
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches(".preferences select")) offer(document);
  });
  document.addEventListener("DOMContentLoaded", function () { offer(document); });
  document.addEventListener("htmx:afterSettle", function () { offer(document); });
})();
