"""The site's URLs plus the import pages and the exports, until crm.urls includes them."""

from django.urls import include, path

from crm.sales import exports as sales_exports
from crm.urls import urlpatterns as site_urlpatterns

urlpatterns = [
    path("", include("contacts.imports.urls")),
    path("", include(sales_exports.urlpatterns)),
    *site_urlpatterns,
]
