from django.urls import include, path

from crm.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("", include("crm.api.urls")),
    path("", include("crm.web.urls")),
]
