// Email links (B8): with the preference "composer" (Settings → Preferences), a click on a
// mailto: link opens the CRM's composer, prefilled from the link, instead of the computer's
// mail app; with "mail_app" the browser does what it always does. Ctrl-, Cmd-, Shift- and
// middle-clicks are left to the browser too (a person asking for a new tab or window).
//
// The preference and the composer's address ride on <body>: data-email-links and
// data-compose-url (templates/base.html). hx-boost swaps the body's content but keeps the old
// <body> element, so each boosted page's attributes are copied over as it arrives: signing in
// as someone else, or saving the preference, takes effect without a reload.
(function () {
  "use strict";

  var COMPOSE_URL = "/inbox/compose";
  var SYNCED = ["data-email-links", "data-compose-url"];

  // Percent-decoding as RFC 6068 says: UTF-8 octets, "+" is a plus (not a space). A broken
  // escape leaves the text as written rather than losing it.
  function decode(text) {
    try {
      return decodeURIComponent(text);
    } catch (error) {
      return text;
    }
  }

  function addresses(text) {
    // Raw commas separate addresses; a comma inside one is percent-encoded (RFC 6068, 2).
    return text.split(",").map(function (part) { return decode(part).trim(); })
      .filter(function (part) { return part !== ""; });
  }

  // mailto:a@x.test,b@x.test?cc=c@x.test&subject=Hi%20there&body=Line%0D%0Aline
  // → {to: [...], cc: [...], bcc: [...], subject: "...", body: "..."}. Header names are
  // case-insensitive; "to", "cc" and "bcc" may repeat and add up; the first subject and body
  // count; other headers (In-Reply-To, Keywords, …) are not the composer's business.
  function parseMailto(href) {
    var rest = href.slice(href.indexOf(":") + 1);
    var hash = rest.indexOf("#");
    if (hash >= 0) rest = rest.slice(0, hash);
    var question = rest.indexOf("?");
    var parsed = { to: [], cc: [], bcc: [], subject: null, body: null };
    parsed.to = addresses(question >= 0 ? rest.slice(0, question) : rest);
    if (question < 0) return parsed;
    rest.slice(question + 1).split("&").forEach(function (field) {
      if (!field) return;
      var equals = field.indexOf("=");
      var name = decode(equals >= 0 ? field.slice(0, equals) : field).toLowerCase();
      var value = equals >= 0 ? field.slice(equals + 1) : "";
      if (name === "to" || name === "cc" || name === "bcc") {
        parsed[name] = parsed[name].concat(addresses(value));
      } else if ((name === "subject" || name === "body") && parsed[name] === null) {
        // Line breaks are CRLF in a mailto body; the editor wants plain newlines.
        parsed[name] = decode(value).replace(/\r\n?/g, "\n");
      }
    });
    return parsed;
  }

  function composeUrl(parsed, base) {
    var query = new URLSearchParams();
    ["to", "cc", "bcc"].forEach(function (name) {
      if (parsed[name].length) query.set(name, parsed[name].join(", "));
    });
    if (parsed.subject) query.set("subject", parsed.subject);
    if (parsed.body) query.set("body", parsed.body);
    query.set("next", window.location.pathname + window.location.search);
    return base + "?" + query.toString();
  }

  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    if (document.body.getAttribute("data-email-links") !== "composer") return;
    var link = event.target.closest && event.target.closest('a[href^="mailto:" i]');
    if (!link) return;
    event.preventDefault();
    var base = document.body.getAttribute("data-compose-url") || COMPOSE_URL;
    // A full page load, not a boosted swap: the composer's page brings its own script.
    window.location.assign(composeUrl(parseMailto(link.getAttribute("href")), base));
  });
  // A middle-click fires "auxclick", not "click": it is left alone on purpose (a new tab
  // with the mail app's link, as the browser does it).

  function syncBodyAttributes(html) {
    var tag = /<body\b[^>]*>/i.exec(html);
    if (!tag) return;
    var parsed = new DOMParser().parseFromString(tag[0] + "</body>", "text/html").body;
    SYNCED.forEach(function (name) {
      if (parsed.hasAttribute(name)) {
        document.body.setAttribute(name, parsed.getAttribute(name));
      } else {
        document.body.removeAttribute(name);
      }
    });
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    if (!detail || !detail.xhr || detail.target !== document.body) return;
    syncBodyAttributes(detail.serverResponse || detail.xhr.responseText || "");
  });

  // For tests and the curious: the parser, as the click handler uses it.
  window.crmMailto = { parse: parseMailto, composeUrl: composeUrl };
})();
