"""The project's URLs: the API (with the resources of every app), the pages, /healthz.

This is the top of the layers: the one module that may import every app's routes."""

from django.urls import include, path

from contacts.api import urls as contacts_api
from crm.api.urls import api_urlpatterns
from crm.health import healthz
from crm.sales import exports as sales_exports
from crm.sales.api import urls as sales_api
from inbox import api as inbox_api
from inbox import api_send as inbox_api_send
from inbox import api_templates as inbox_api_templates
from mailsync import api as mailsync_api

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    *api_urlpatterns(
        v1=[
            *contacts_api.v1_patterns,
            *sales_api.v1_patterns,
            *inbox_api_send.v1_patterns,
            *inbox_api_templates.v1_patterns,
            *inbox_api.v1_patterns,
            *mailsync_api.v1_patterns,
        ],
        v2=[*contacts_api.v2_patterns, *sales_api.v2_patterns],
    ),
    path("", include("contacts.imports.urls")),
    path("", include(sales_exports.urlpatterns)),
    path("", include("contacts.web.urls")),
    path("", include("crm.sales.web.urls")),
    path("", include("mailsync.web.urls")),
    path("", include("inbox.web.urls")),
    path("", include("crm.web.urls")),
]

# JSON error bodies under the API prefixes; Django's own pages elsewhere.
handler404 = "crm.api.errors.page_not_found"
handler500 = "crm.api.errors.server_error"
