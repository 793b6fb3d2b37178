"""The site's URLs plus a "deals" page, as the deals issue will add it: for the navigation test."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from crm.urls import urlpatterns as site_urlpatterns


def deals(request: HttpRequest) -> HttpResponse:
    return HttpResponse("deals")


urlpatterns = [*site_urlpatterns, path("deals", deals, name="deals")]
