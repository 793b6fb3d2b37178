"""The inbox's pages and fragments; crm.urls mounts them at the site root (no trailing slash,
like the rest of the site).

- `mailbox`: the Sales Inbox (folders, list, reader, labels, saved views, search).
- `emails`: the Email tab of person, organization, deal, lead and project pages (C4), a
  conversation opened in place, and its linking and sharing controls (C3, D3).
- `media`: a message's body frame (and what it loads).
- `compose`: the composer (new mail, replies, forwards; drafts, files, templates).
- `blocklist`: Settings → Blocked addresses (C5).
- `templates_pages`: Sales Inbox → Templates and Signatures (B6).
- `outbox`: the Scheduled folder and the Outbox (messages that need the user)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

from inbox.web import blocklist, compose, emails, mailbox, media, outbox, templates_pages

urlpatterns: list[URLPattern | URLResolver] = [
    *mailbox.urlpatterns,
    *compose.urlpatterns,
    *emails.urlpatterns,
    *media.urlpatterns,
    *blocklist.urlpatterns,
    *templates_pages.urlpatterns,
    *outbox.urlpatterns,
]
