"""The site's URLs plus the fragments other apps will provide (deals of a person or an
organization, the inbox's Email tab), to check the detail pages load them when they exist."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from crm.urls import urlpatterns as site_urlpatterns


def fragment(request: HttpRequest, **kwargs: object) -> HttpResponse:
    return HttpResponse("fragment")


urlpatterns = [
    *site_urlpatterns,
    path("test/persons/<int:person_id>/deals", fragment, name="person_deals_fragment"),
    path(
        "test/organizations/<int:organization_id>/deals",
        fragment,
        name="organization_deals_fragment",
    ),
    path("test/emails/<str:kind>/<int:item_id>", fragment, name="inbox_item_emails"),
]
