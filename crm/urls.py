from django.urls import include, path

from crm.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("", include("crm.api.urls")),
    path("", include("crm.web.urls")),
]

# JSON error bodies under the API prefixes; Django's own pages elsewhere.
handler404 = "crm.api.errors.page_not_found"
handler500 = "crm.api.errors.server_error"
