"""The contacts pages and the shell's pages only: no deals app and no inbox, as before those
apps exist, to check the detail pages show their empty states then."""

from django.urls import include, path

urlpatterns = [
    path("", include("contacts.web.urls")),
    path("", include("crm.web.urls")),
]
