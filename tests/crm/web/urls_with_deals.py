"""The platform's own pages plus one "deals" page and nothing else of the item apps: for the
test that a navigation entry appears exactly when its URL exists."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def deals(request: HttpRequest) -> HttpResponse:
    return HttpResponse("deals")


urlpatterns = [path("deals", deals, name="deals"), path("", include("crm.web.urls"))]
